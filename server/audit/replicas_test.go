package audit

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/testtools"
)

// TestSecondWriterRefused: while one Log writes a file, a second Open of
// the same path fails with ErrLocked and a message that says what to do;
// after Close the file can be opened again and the chain continues.
func TestSecondWriterRefused(t *testing.T) {
	cfg := testConfig(t)
	l := openTest(t, cfg)
	appendN(t, l, 3)
	_, err := Open(cfg)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	for _, want := range []string{cfg.Path, "process " + strconv.Itoa(os.Getpid()), "own audit.path"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, cfg)
	appendN(t, l2, 2)
	if res := mustVerifyOK(t, cfg.Path); res.Records != 5 {
		t.Fatalf("%d records, want 5", res.Records)
	}
	// The lock file is hidden from an audit.log* glob.
	matches, _ := filepath.Glob(cfg.Path + "*")
	if len(matches) != 1 {
		t.Fatalf("audit.log* matches %v, want only the audit file", matches)
	}
}

// TestLockHeldByAnotherProcess: the lock works across processes (a
// process holding it is flock(1), from util-linux; the in-process case
// above covers the same code path where it is missing).
func TestLockHeldByAnotherProcess(t *testing.T) {
	flock := testtools.Need(t, "flock", "util-linux")
	cfg := testConfig(t)
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(flock, "--exclusive", lockPath(cfg.Path), "sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(3 * time.Second)
	for {
		l, err := Open(cfg)
		if errors.Is(err, ErrLocked) {
			return
		}
		if l != nil {
			_ = l.Close() // flock(1) did not hold the lock yet
		}
		if time.Now().After(deadline) {
			t.Fatalf("Open while another process holds the lock = %v, want ErrLocked", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeReplica writes n records as replica name into dir/audit.log,
// rotating every few records, and returns its files.
func writeReplica(t *testing.T, dir, name string, n int) []string {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, name, "audit.log")
	cfg.Replica = name
	cfg.MaxBytes = 1500
	cfg.Now = newTestClock().Now
	l := openTest(t, cfg)
	appendN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestFleetVerifyAndQuery(t *testing.T) {
	dir := t.TempDir()
	a := writeReplica(t, dir, "replica-a", 7)
	b := writeReplica(t, dir, "replica-b", 5)
	if len(a) < 2 || len(b) < 2 {
		t.Fatalf("want rotated files, got %v and %v", a, b)
	}
	all := append(append([]string{}, b...), a...)

	// Read as one chain, the two replicas' records look reordered.
	if res, err := Verify(all...); err != nil || res.OK {
		t.Fatalf("Verify over two replicas as one chain = %+v, %v; want a problem", res.Problem, err)
	}

	cases := []struct {
		name        string
		mutate      func(t *testing.T)
		wantOK      bool
		wantRecords int
		wantBad     string
	}{
		{name: "intact", wantOK: true, wantRecords: 12},
		{name: "one replica edited", mutate: func(t *testing.T) {
			f := b[len(b)-1]
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, []byte(strings.Replace(string(data), `"decision":"allow"`, `"decision":"deny"`, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantBad: "replica-b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mutate != nil {
				tc.mutate(t)
			}
			res, err := VerifyFleet(VerifyOptions{}, all...)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Chains) != 2 || res.Chains[0].Replica != "replica-a" || res.Chains[1].Replica != "replica-b" {
				t.Fatalf("chains = %+v, want replica-a and replica-b", res.Chains)
			}
			if res.OK != tc.wantOK {
				t.Fatalf("OK = %v, want %v (%+v)", res.OK, tc.wantOK, res)
			}
			if tc.wantOK && (res.Records != tc.wantRecords || res.Files != len(all)) {
				t.Fatalf("records %d files %d, want %d and %d", res.Records, res.Files, tc.wantRecords, len(all))
			}
			for _, c := range res.Chains {
				if !c.OK && c.Replica != tc.wantBad {
					t.Fatalf("chain %s failed, want only %q to: %v", c.Replica, tc.wantBad, c.Problem)
				}
			}
		})
	}

	q, err := Query(all, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Records) != 12 {
		t.Fatalf("query over both replicas: %d records, want 12", len(q.Records))
	}
	for i := 1; i < len(q.Records); i++ {
		if q.Records[i].Time.Before(q.Records[i-1].Time) {
			t.Fatalf("records not merged by time at %d", i)
		}
	}
	q, err = Query(all, Filter{Replica: "replica-a"})
	if err != nil || len(q.Records) != 7 {
		t.Fatalf("query --replica replica-a: %d records, %v; want 7", len(q.Records), err)
	}
	if _, err := VerifyFleet(VerifyOptions{Anchors: []Anchor{{Seq: 1, Hash: strings.Repeat("0", 64)}}}, all...); err == nil {
		t.Fatal("an anchor over two chains was accepted")
	}
}

func TestReplicaInEveryRecord(t *testing.T) {
	cfg := testConfig(t)
	cfg.Replica = "pod-7"
	l := openTest(t, cfg)
	appendN(t, l, 3)
	q, err := Query([]string{cfg.Path}, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range q.Records {
		if r.Replica != "pod-7" {
			t.Fatalf("record %d has replica %q, want pod-7", r.Seq, r.Replica)
		}
	}
	host, _ := os.Hostname()
	if got := (Config{}).withDefaults().Replica; got != host {
		t.Fatalf("default replica = %q, want the host name %q", got, host)
	}
}
