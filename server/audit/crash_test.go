package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// crashChildEnv makes the test binary run crashChild instead of the tests;
// crashSyncEnv and crashGoroutinesEnv choose its sync policy and how many
// goroutines append at once.
const (
	crashChildEnv      = "AUDIT_TEST_CRASH_CHILD_PATH"
	crashSyncEnv       = "AUDIT_TEST_CRASH_CHILD_SYNC"
	crashGoroutinesEnv = "AUDIT_TEST_CRASH_CHILD_GOROUTINES"
	crashKeyEnv        = "AUDIT_TEST_CRASH_CHILD_KEY"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild appends records from several goroutines until it is killed,
// printing each seq to stdout only after Append returned nil.
func crashChild(path string) {
	goroutines, err := strconv.Atoi(os.Getenv(crashGoroutinesEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	cfg := Config{Path: path, MaxBytes: 64 << 10, Sync: SyncPolicy(os.Getenv(crashSyncEnv))}
	if key := os.Getenv(crashKeyEnv); key != "" {
		cfg.Checkpoint = CheckpointConfig{KeyFile: key, Every: 50}
	}
	l, err := Open(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	big := json.RawMessage(`{"q":"` + strings.Repeat("x", 3000) + `"}`)
	for g := range goroutines {
		wg.Go(func() {
			for i := 0; ; i++ {
				r := callRecord(i)
				r.Arguments = big
				r.Tool = fmt.Sprintf("g%d-%d", g, i)
				if err := l.Append(context.Background(), r); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(4)
				}
				out.Lock()
				fmt.Fprintln(os.Stdout, r.Seq) // unbuffered: one write per record
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashKeepsAcknowledgedRecords kills a process with SIGKILL in the
// middle of a burst of appends from many goroutines: every record whose
// Append returned is in the files and the chain verifies. Under "every"
// the burst goes through group commit (64 goroutines share syncs); under
// "none" each record is only written, which a process crash cannot lose
// either.
func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	for _, tc := range []struct {
		sync       SyncPolicy
		goroutines int
		signed     bool
	}{{SyncEvery, 64, false}, {SyncNone, 4, false}, {SyncEvery, 64, true}} {
		name := fmt.Sprintf("%s/c%d", tc.sync, tc.goroutines)
		if tc.signed {
			name += "/checkpoints"
		}
		t.Run(name, func(t *testing.T) {
			crashOnce(t, tc.sync, tc.goroutines, tc.signed)
		})
	}
}

func crashOnce(t *testing.T, policy SyncPolicy, goroutines int, signed bool) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashSyncEnv+"="+string(policy),
		crashGoroutinesEnv+"="+strconv.Itoa(goroutines))
	var keyFile string
	var verifyOpts VerifyOptions
	if signed {
		var pub ed25519.PublicKey
		keyFile, pub = writeKey(t, dir)
		cmd.Env = append(cmd.Env, crashKeyEnv+"="+keyFile)
		verifyOpts.Keys = []ed25519.PublicKey{pub}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]bool{}
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		seq, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[seq] = true
		if len(acked) == 500 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before it was killed: %v: %s", err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child not killed by SIGKILL: %v", cmd.ProcessState)
	}

	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("expected rotation during the run, got files %v", files)
	}
	res, err := VerifyWithOptions(verifyOpts, files...)
	if err != nil || !res.OK {
		t.Fatalf("verify after the crash: %+v, %v", res.Problem, err)
	}
	q, err := Query(files, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	inLog := map[uint64]bool{}
	for _, r := range q.Records {
		inLog[r.Seq] = true
	}
	for seq := range acked {
		if !inLog[seq] {
			t.Errorf("record seq %d was acknowledged but is not in the log", seq)
		}
	}
	t.Logf("child acknowledged %d records; log holds %d, torn lines %v", len(acked), res.Records, res.Torn)

	var lastCP uint64
	if signed {
		cps, err := Query(files, Filter{Type: TypeCheckpoint})
		if err != nil || len(cps.Records) == 0 {
			t.Fatalf("checkpoints after the crash: %v, %v", cps.Records, err)
		}
		lastCP = cps.Records[len(cps.Records)-1].Seq
	}
	if signed && (res.Checkpoints == 0 || res.Unsigned > 50) {
		t.Errorf("after the crash: %d checkpoints, %d records unsigned; want checkpoints every 50", res.Checkpoints, res.Unsigned)
	}

	// The next process resumes the chain after the crash (signing the
	// unsigned tail first when checkpoints are on).
	cfg := Config{Path: path, MaxBytes: 64 << 10}
	if signed {
		cfg.Checkpoint = CheckpointConfig{KeyFile: keyFile, Every: 50}
	}
	l := openTest(t, cfg)
	r := callRecord(1)
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	want := res.LastSeq + 1
	if signed && res.Unsigned > 0 {
		want++ // the resume checkpoint
	}
	if r.Seq != want || (!signed && r.PrevHash != res.LastHash) {
		t.Errorf("resumed at seq %d prevHash %s; want %d after %s", r.Seq, r.PrevHash, want, res.LastHash)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err = Files(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err = VerifyWithOptions(verifyOpts, files...)
	if err != nil || !res.OK || (signed && res.Unsigned != 0) {
		t.Fatalf("verify after the restart: %+v, %v", res, err)
	}
	if signed && res.Unsigned == 0 {
		// The resume checkpoint links to the child's last checkpoint: the
		// run of signatures goes on across the crash.
		cps, err := Query(files, Filter{Type: TypeCheckpoint})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cps.Records {
			if c.Checkpoint.Resume && c.Checkpoint.Prev.Seq != lastCP {
				t.Errorf("resume checkpoint seq %d links to seq %d, want the last checkpoint before the crash, seq %d", c.Seq, c.Checkpoint.Prev.Seq, lastCP)
			}
		}
	}
}
