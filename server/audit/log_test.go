package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testClock is a deterministic clock that advances one millisecond per call.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "audit", "audit.log")
	cfg.Now = newTestClock().Now
	return cfg
}

func openTest(t *testing.T, cfg Config) *Log {
	t.Helper()
	l, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func callRecord(i int) *Record {
	return &Record{
		Type:       TypeCall,
		SessionID:  "sess-1",
		Transport:  TransportHTTP,
		User:       User{Sub: fmt.Sprintf("sub-%d", i%3), Email: fmt.Sprintf("user%d@example.com", i%3)},
		Agent:      Agent{ClientID: "ide-agent", Name: "ide", Version: "1.0"},
		Tool:       fmt.Sprintf("tool-%d", i),
		Arguments:  json.RawMessage(`{"ref":"component:default/x"}`),
		Decision:   DecisionAllow,
		Entities:   Entities{Refs: []string{"component:default/x"}, Count: 1},
		DurationMs: float64(i),
	}
}

func appendN(t *testing.T, l *Log, n int) []*Record {
	t.Helper()
	var out []*Record
	for i := range n {
		r := callRecord(i)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, r)
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func mustVerifyOK(t *testing.T, files ...string) VerifyResult {
	t.Helper()
	res, err := Verify(files...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !res.OK {
		t.Fatalf("Verify not OK: %v", res.Problem)
	}
	return res
}

func TestAppendFillsFieldsAndChains(t *testing.T) {
	cfg := testConfig(t)
	l := openTest(t, cfg)
	recs := appendN(t, l, 5)

	idRe := regexp.MustCompile(`^[0-9a-f]{32}$`)
	prev := GenesisHash
	ids := map[string]bool{}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Errorf("record %d: seq %d, want %d", i, r.Seq, i+1)
		}
		if r.PrevHash != prev {
			t.Errorf("record %d: prevHash %s, want %s", i, r.PrevHash, prev)
		}
		if !idRe.MatchString(r.ID) || ids[r.ID] {
			t.Errorf("record %d: bad or duplicate id %q", i, r.ID)
		}
		ids[r.ID] = true
		if r.Time.Location() != time.UTC || r.Time.IsZero() {
			t.Errorf("record %d: time %v not set in UTC", i, r.Time)
		}
		prev = r.Hash
	}
	seq, hash := l.Head()
	if seq != 5 || hash != recs[4].Hash {
		t.Errorf("Head = %d %s, want 5 %s", seq, hash, recs[4].Hash)
	}

	lines := readLines(t, cfg.Path)
	if len(lines) != 5 {
		t.Fatalf("file has %d lines, want 5", len(lines))
	}
	if !strings.HasSuffix(lines[0], `"hash":"`+recs[0].Hash+`"}`) {
		t.Errorf("hash is not the last field: %s", lines[0])
	}
	if strings.Contains(strings.ToLower(lines[0]), "token") {
		t.Errorf("record mentions a token: %s", lines[0])
	}
	var back Record
	if err := json.Unmarshal([]byte(lines[2]), &back); err != nil {
		t.Fatal(err)
	}
	if back.Tool != "tool-2" || back.User.Email != "user2@example.com" || back.Agent.ClientID != "ide-agent" {
		t.Errorf("round trip lost fields: %+v", back)
	}
	st, err := os.Stat(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	res := mustVerifyOK(t, cfg.Path)
	if res.Records != 5 || !res.FromGenesis || res.LastHash != recs[4].Hash {
		t.Errorf("Verify = %+v", res)
	}
}

func TestAppendConcurrent(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncEvery, SyncInterval, SyncNone} {
		t.Run(string(policy), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Sync = policy
			cfg.SyncInterval = time.Millisecond
			l := openTest(t, cfg)
			const n = 100
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					errs <- l.Append(context.Background(), callRecord(i))
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if got := len(readLines(t, cfg.Path)); got != n {
				t.Fatalf("%d lines, want %d", got, n)
			}
			res := mustVerifyOK(t, cfg.Path)
			if res.Records != n || res.LastSeq != n {
				t.Errorf("Verify = %d records, last seq %d; want %d", res.Records, res.LastSeq, n)
			}
			q, err := Query([]string{cfg.Path}, Filter{})
			if err != nil {
				t.Fatal(err)
			}
			tools := map[string]bool{}
			for _, r := range q.Records {
				tools[r.Tool] = true
			}
			if len(tools) != n {
				t.Errorf("%d distinct records, want %d", len(tools), n)
			}
		})
	}
}

func TestCapFields(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxEntityRefs = 3
	cfg.MaxArgumentBytes = 32
	cfg.MaxReasonBytes = 10
	l := openTest(t, cfg)
	tests := []struct {
		name  string
		in    Record
		check func(t *testing.T, r *Record)
	}{
		{
			name: "refs capped, count kept",
			in:   Record{Type: TypeCall, Entities: Entities{Refs: []string{"a", "b", "c", "d", "e"}}},
			check: func(t *testing.T, r *Record) {
				if len(r.Entities.Refs) != 3 || r.Entities.Count != 5 {
					t.Errorf("entities = %+v, want 3 refs and count 5", r.Entities)
				}
			},
		},
		{
			name: "count raised to refs",
			in:   Record{Type: TypeCall, Entities: Entities{Refs: []string{"a", "b"}}},
			check: func(t *testing.T, r *Record) {
				if r.Entities.Count != 2 {
					t.Errorf("count = %d, want 2", r.Entities.Count)
				}
			},
		},
		{
			name: "large arguments replaced",
			in:   Record{Type: TypeCall, Arguments: json.RawMessage(`{"q":"` + strings.Repeat("x", 100) + `"}`)},
			check: func(t *testing.T, r *Record) {
				if string(r.Arguments) != `"[TRUNCATED: 108 bytes]"` {
					t.Errorf("arguments = %s", r.Arguments)
				}
			},
		},
		{
			name: "long reason cut on a rune boundary",
			in:   Record{Type: TypeCall, Reason: "ééééééééé"},
			check: func(t *testing.T, r *Record) {
				if r.Reason != "ééééé…" {
					t.Errorf("reason = %q", r.Reason)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.in
			if err := l.Append(context.Background(), &r); err != nil {
				t.Fatal(err)
			}
			tt.check(t, &r)
		})
	}
	mustVerifyOK(t, cfg.Path)
}

func TestAppendRejectsBadRecords(t *testing.T) {
	cfg := testConfig(t)
	l := openTest(t, cfg)
	tests := []struct {
		name string
		rec  *Record
	}{
		{"nil record", nil},
		{"missing type", &Record{}},
		{"unknown type", &Record{Type: "login"}},
		{"invalid arguments JSON", &Record{Type: TypeCall, Arguments: json.RawMessage(`{"a":`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Append(context.Background(), tt.rec); err == nil {
				t.Fatal("Append accepted a bad record")
			}
			if err := l.Healthy(); err != nil {
				t.Errorf("a caller error made the log unhealthy: %v", err)
			}
		})
	}
	appendN(t, l, 2)
	res := mustVerifyOK(t, cfg.Path)
	if res.Records != 2 {
		t.Errorf("%d records, want 2", res.Records)
	}
}

func TestRotationKeepsChain(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 2000
	l := openTest(t, cfg)
	appendN(t, l, 40)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("only %d files after rotation", len(files))
	}
	if got := l.Stats().Rotations; got != uint64(len(files)-1) {
		t.Errorf("Stats.Rotations = %d, want %d", got, len(files)-1)
	}
	var total int
	var prevHash string
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > cfg.MaxBytes {
			t.Errorf("%s is %d bytes, over MaxBytes", f, st.Size())
		}
		q, err := Query([]string{f}, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && q.Records[0].PrevHash != prevHash {
			t.Errorf("%s does not chain from the previous file", f)
		}
		prevHash = q.Records[len(q.Records)-1].Hash
		total += len(q.Records)
	}
	if total != 40 {
		t.Errorf("%d records across files, want 40", total)
	}

	reversed := make([]string, len(files))
	for i, f := range files {
		reversed[len(files)-1-i] = f
	}
	res := mustVerifyOK(t, reversed...)
	if res.Records != 40 || !res.FromGenesis {
		t.Errorf("Verify = %+v", res)
	}
	if res.Files[0] != files[0] {
		t.Errorf("Verify did not order files by seq: %v", res.Files)
	}

	res = mustVerifyOK(t, files[1:]...)
	if res.FromGenesis {
		t.Error("a chain without its oldest file claims to start from genesis")
	}
}

func TestResume(t *testing.T) {
	t.Run("continues seq and chain", func(t *testing.T) {
		cfg := testConfig(t)
		l := openTest(t, cfg)
		first := appendN(t, l, 3)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l2 := openTest(t, cfg)
		r := callRecord(9)
		if err := l2.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != 4 || r.PrevHash != first[2].Hash {
			t.Errorf("resumed record seq %d prevHash %s; want 4 %s", r.Seq, r.PrevHash, first[2].Hash)
		}
		mustVerifyOK(t, cfg.Path)
	})

	t.Run("torn last line kept and reported", func(t *testing.T) {
		cfg := testConfig(t)
		l := openTest(t, cfg)
		recs := appendN(t, l, 3)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, `{"time":"2025-03-01T12:00:00Z","id":"ab`)
		f.Close()

		res := mustVerifyOK(t, cfg.Path)
		if len(res.Torn) != 1 || res.Torn[0].Line != 4 {
			t.Errorf("Torn = %v, want line 4", res.Torn)
		}

		l2 := openTest(t, cfg)
		r := callRecord(5)
		if err := l2.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != 4 || r.PrevHash != recs[2].Hash {
			t.Errorf("after torn line: seq %d prevHash %s", r.Seq, r.PrevHash)
		}
		lines := readLines(t, cfg.Path)
		if len(lines) != 5 || !strings.HasPrefix(lines[3], `{"time":"2025-03-01T12:00:00Z","id":"ab`) || !strings.HasSuffix(lines[3], `"id":"ab`) {
			t.Fatalf("torn line not kept on a line of its own: %q", lines)
		}
		res = mustVerifyOK(t, cfg.Path)
		if res.Records != 4 || len(res.Torn) != 1 || res.Torn[0].Line != 4 {
			t.Errorf("Verify = %+v", res)
		}
	})

	t.Run("active file holds only a torn line after rotation", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.MaxBytes = 1 // every record gets its own file
		l := openTest(t, cfg)
		recs := appendN(t, l, 4)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// Cut the only record of the active file in half: a crash mid-write.
		b, err := os.ReadFile(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg.Path, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
		l2 := openTest(t, cfg)
		r := callRecord(7)
		if err := l2.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != 4 || r.PrevHash != recs[2].Hash {
			t.Errorf("resumed at seq %d prevHash %s; want 4 %s", r.Seq, r.PrevHash, recs[2].Hash)
		}
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
		files, err := Files(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		res := mustVerifyOK(t, files...)
		if res.Records != 4 || len(res.Torn) != 1 {
			t.Errorf("Verify = %+v", res)
		}
	})

	t.Run("refuses to resume from tampered records only", func(t *testing.T) {
		cfg := testConfig(t)
		l := openTest(t, cfg)
		appendN(t, l, 1)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg.Path, bytes.Replace(b, []byte("tool-0"), []byte("tool-X"), 1), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(cfg); !errors.Is(err, ErrNoResumePoint) {
			t.Fatalf("Open = %v, want ErrNoResumePoint", err)
		}
	})
}

// faultWriter fails writes or syncs on demand and can write a partial line.
type faultWriter struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	failWrite bool
	partial   bool // on failWrite, write half of the buffer first
	failSync  bool
	syncs     int
}

func (w *faultWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failWrite {
		if w.partial {
			w.buf.Write(p[:len(p)/2])
			return len(p) / 2, syscall.ENOSPC
		}
		return 0, syscall.ENOSPC
	}
	return w.buf.Write(p)
}

func (w *faultWriter) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.syncs++
	if w.failSync {
		return syscall.EIO
	}
	return nil
}

func (w *faultWriter) set(fn func(w *faultWriter)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn(w)
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.log")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWriteFailuresFailClosed(t *testing.T) {
	tests := []struct {
		name     string
		fault    func(w *faultWriter)
		sticky   bool // still failing after the fault is cleared
		wantErr  error
		wantTorn int
	}{
		{name: "write fails", fault: func(w *faultWriter) { w.failWrite = true }, wantErr: syscall.ENOSPC},
		{name: "partial write", fault: func(w *faultWriter) { w.failWrite, w.partial = true, true }, wantErr: syscall.ENOSPC, wantTorn: 1},
		{name: "sync fails", fault: func(w *faultWriter) { w.failSync = true }, sticky: true, wantErr: ErrUnhealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &faultWriter{}
			l, err := OpenWriter(w, Config{Now: newTestClock().Now})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			appendN(t, l, 2)
			if err := l.Healthy(); err != nil {
				t.Fatalf("healthy log reports %v", err)
			}

			w.set(tt.fault)
			err = l.Append(context.Background(), callRecord(3))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Append = %v, want %v", err, tt.wantErr)
			}
			if l.Healthy() == nil {
				t.Fatal("Healthy() = nil after a failed append")
			}

			w.set(func(w *faultWriter) { w.failWrite, w.partial, w.failSync = false, false, false })
			err = l.Append(context.Background(), callRecord(4))
			if tt.sticky {
				if !errors.Is(err, ErrUnhealthy) || l.Healthy() == nil {
					t.Fatalf("after a failed sync: Append = %v, Healthy = %v; want both to fail", err, l.Healthy())
				}
				return
			}
			if err != nil || l.Healthy() != nil {
				t.Fatalf("after recovery: Append = %v, Healthy = %v", err, l.Healthy())
			}
			res := mustVerifyOK(t, writeTemp(t, w.buf.Bytes()))
			if res.Records != 3 || len(res.Torn) != tt.wantTorn {
				t.Errorf("Verify = %d records, torn %v; want 3 records, %d torn", res.Records, res.Torn, tt.wantTorn)
			}
		})
	}
}

func TestUnwritableFile(t *testing.T) {
	t.Run("parent is a file", func(t *testing.T) {
		dir := t.TempDir()
		blocker := filepath.Join(dir, "blocker")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(Config{Path: filepath.Join(blocker, "audit.log")})
		if err == nil {
			t.Fatal("Open succeeded under a regular file")
		}
	})
	t.Run("disk full", func(t *testing.T) {
		// /dev/full accepts the open and fails every write with ENOSPC.
		l, err := Open(Config{Path: "/dev/full", MaxBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		err = l.Append(context.Background(), callRecord(1))
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Append = %v, want ENOSPC", err)
		}
		if l.Healthy() == nil {
			t.Fatal("Healthy() = nil on a full disk")
		}
		if got := l.Stats().WriteErrors; got != 1 {
			t.Errorf("Stats.WriteErrors = %d, want 1", got)
		}
	})
}

func TestClosed(t *testing.T) {
	l := openTest(t, testConfig(t))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), callRecord(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := l.Healthy(); !errors.Is(err, ErrClosed) {
		t.Errorf("Healthy after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestStdoutSink(t *testing.T) {
	var buf bytes.Buffer
	l, err := Open(Config{Sink: SinkStdout, Stdout: &buf, Now: newTestClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res := mustVerifyOK(t, writeTemp(t, buf.Bytes()))
	if res.Records != 3 || !res.FromGenesis {
		t.Errorf("Verify = %+v", res)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"defaults", DefaultConfig(), false},
		{"zero value", Config{}, false},
		{"unknown sink", Config{Sink: "syslog"}, true},
		{"unknown sync", Config{Sync: "sometimes"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// TestProbeClearsAWriteFailure: a file-sink log whose write failed (a full
// disk) is reported unhealthy until Probe finds room again beside the
// active file; then Healthy is nil without any record written, and the
// next record goes on the same chain.
func TestProbeClearsAWriteFailure(t *testing.T) {
	cfg := testConfig(t)
	l := openTest(t, cfg)
	appendN(t, l, 2)
	full := &faultWriter{failWrite: true}
	l.out = full // only the leader touches out; no append runs now
	if err := l.Append(context.Background(), callRecord(3)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk = %v, want ENOSPC", err)
	}
	diskFull := fmt.Errorf("probe: %w", syscall.ENOSPC)
	var probed []string
	l.probe = func(dir string) error { probed = append(probed, dir); return diskFull }
	if err := l.Probe(); err == nil || l.Healthy() == nil {
		t.Fatalf("Probe with the disk still full = %v, Healthy = %v; want both failing", err, l.Healthy())
	}
	if len(probed) != 1 || probed[0] != filepath.Dir(cfg.Path) {
		t.Fatalf("probed %v, want the audit directory once", probed)
	}
	// The disk has room again: the real probe writes beside the file.
	l.probe = nil
	if err := l.Probe(); err != nil || l.Healthy() != nil {
		t.Fatalf("Probe with room again = %v, Healthy = %v; want nil", err, l.Healthy())
	}
	entries, err := os.ReadDir(filepath.Dir(cfg.Path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "probe") {
			t.Fatalf("probe file %s left behind", e.Name())
		}
	}
	l.out = l.f
	appendN(t, l, 1)
	res := mustVerifyOK(t, cfg.Path)
	if res.Records != 3 {
		t.Fatalf("Verify = %d records, want 3 (the failed one is not in the chain)", res.Records)
	}
}

// TestProbeLeavesAFailedSync: a failed fsync stays (only reopening clears
// it) and Sticky says so.
func TestProbeLeavesAFailedSync(t *testing.T) {
	w := &faultWriter{}
	l, err := OpenWriter(w, Config{Now: newTestClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, 1)
	w.set(func(w *faultWriter) { w.failSync = true })
	_ = l.Append(context.Background(), callRecord(2))
	w.set(func(w *faultWriter) { w.failSync = false })
	if l.Probe() == nil || !l.Sticky() {
		t.Fatalf("after a failed sync: Probe = %v, Sticky = %v; want failing and sticky", l.Probe(), l.Sticky())
	}
}

// blockingWriter blocks every write until release is closed.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return len(p), nil
}

// TestFlushingFor: a write in progress is timed from its start; none is 0.
func TestFlushingFor(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l, err := OpenWriter(w, Config{Now: newTestClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if d := l.FlushingFor(); d != 0 {
		t.Fatalf("FlushingFor before any write = %s", d)
	}
	done := make(chan error, 1)
	go func() { done <- l.Append(context.Background(), callRecord(1)) }()
	<-w.entered
	time.Sleep(30 * time.Millisecond)
	if d := l.FlushingFor(); d < 30*time.Millisecond {
		t.Fatalf("FlushingFor with a write stuck 30ms = %s", d)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := l.FlushingFor(); d != 0 {
		t.Fatalf("FlushingFor after the write = %s", d)
	}
}
