package ship

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

func TestShipsEveryRecordAcrossRotations(t *testing.T) {
	tr := newTrail(t, 4<<10) // rotates every few records
	tr.append(t, 40)
	sink := &memSink{}
	s := NewShipper("mem", tr.path, FormatNative, fastCfg, sink, nil, func() uint64 { q, _ := tr.log.Head(); return q })
	stop := runShipper(t, s)
	defer stop()
	// More records while it runs, across more rotations.
	tr.append(t, 60)
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.seqs()) < 100 {
		if time.Now().After(deadline) {
			files, _ := audit.Files(tr.path)
			t.Fatalf("timed out: shipped %v, stats %+v, files %v", sink.seqs(), s.Stats(), files)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	seqs := sink.seqs()
	if len(seqs) != 100 {
		t.Fatalf("sent %d records, want exactly 100 without failures", len(seqs))
	}
	checkSeqs(t, seqs, 100)
	files, _ := audit.Files(tr.path)
	if len(files) < 5 {
		t.Fatalf("only %d files: the test did not rotate", len(files))
	}
	st := s.Stats()
	if st.AckedSeq != 100 || st.Lag != 0 || st.Sent != 100 || st.Gaps != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The state file stays out of the trail's glob: verify reads the trail only.
	glob, _ := filepath.Glob(tr.path + "*")
	if res, err := audit.Verify(glob...); err != nil || !res.OK || res.Records != 100 {
		t.Fatalf("verify %v: %+v %v", glob, res, err)
	}
	if _, err := os.Stat(StatePath(tr.path, "mem")); err != nil {
		t.Fatalf("no state file: %v", err)
	}
	// The native body is the exact line of the file.
	b, _ := os.ReadFile(files[0])
	first := strings.SplitN(string(b), "\n", 2)[0]
	if string(sink.events[0].Body) != first {
		t.Fatalf("native body %q\nwant line   %q", sink.events[0].Body, first)
	}
}

func TestRetriesAndResumesAfterRestart(t *testing.T) {
	tr := newTrail(t, 4<<10)
	tr.append(t, 30)
	sink := &memSink{fail: 3}
	s := NewShipper("mem", tr.path, FormatOCSF, fastCfg, sink, nil, nil)
	stop := runShipper(t, s)
	waitFor(t, "30 records", 5*time.Second, func() bool { return len(sink.seqs()) >= 30 })
	stop()
	if st := s.Stats(); st.Failures != 3 || st.AckedSeq != 30 {
		t.Fatalf("stats %+v: want 3 failures and seq 30 acknowledged", st)
	}
	// The position survives a restart: a new shipper sends only new records.
	tr.append(t, 25)
	sink2 := &memSink{}
	s2 := NewShipper("mem", tr.path, FormatOCSF, fastCfg, sink2, nil, nil)
	stop2 := runShipper(t, s2)
	defer stop2()
	waitFor(t, "25 more", 5*time.Second, func() bool { return len(sink2.seqs()) >= 25 })
	stop2()
	seqs := sink2.seqs()
	if len(seqs) != 25 || seqs[0] != 31 || seqs[24] != 55 {
		t.Fatalf("after restart sent %v, want 31..55", seqs)
	}
}

func TestNeverLosesUnacknowledgedBatch(t *testing.T) {
	// The sink is down when the shipper stops: the records it never
	// acknowledged go out after the restart.
	tr := newTrail(t, -1)
	tr.append(t, 10)
	down := &memSink{fail: 1 << 30}
	s := NewShipper("mem", tr.path, FormatECS, fastCfg, down, nil, nil)
	stop := runShipper(t, s)
	waitFor(t, "failures", 5*time.Second, func() bool { return s.Stats().Failures >= 2 })
	stop()
	up := &memSink{}
	s2 := NewShipper("mem", tr.path, FormatECS, fastCfg, up, nil, nil)
	stop2 := runShipper(t, s2)
	defer stop2()
	waitFor(t, "10 records", 5*time.Second, func() bool { return len(up.seqs()) >= 10 })
	checkSeqs(t, up.seqs(), 10)
}

func TestGapWhenUnshippedFileDeleted(t *testing.T) {
	tr := newTrail(t, 4<<10)
	tr.append(t, 40)
	files, _ := audit.Files(tr.path)
	if len(files) < 3 {
		t.Fatalf("want rotated files, got %v", files)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	s := NewShipper("mem", tr.path, FormatNative, fastCfg, sink, nil, nil)
	stop := runShipper(t, s)
	defer stop()
	waitFor(t, "record 40", 5*time.Second, func() bool { return s.Stats().AckedSeq == 40 })
	if st := s.Stats(); st.Gaps != 1 {
		t.Fatalf("gaps = %d, want 1", st.Gaps)
	}
	if seqs := sink.seqs(); seqs[0] == 1 {
		t.Fatalf("first shipped %d: the deleted file cannot have been read", seqs[0])
	}
}

func TestNewTrailIsShippedFromItsStart(t *testing.T) {
	tr := newTrail(t, -1)
	tr.append(t, 5)
	sink := &memSink{}
	s := NewShipper("mem", tr.path, FormatNative, fastCfg, sink, nil, nil)
	stop := runShipper(t, s)
	waitFor(t, "5", 5*time.Second, func() bool { return s.Stats().AckedSeq == 5 })
	stop()
	// The operator replaces the trail: a new chain, seq from 1 again.
	if err := tr.log.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := audit.Files(tr.path)
	for _, f := range files {
		_ = os.Remove(f)
	}
	l, err := audit.Open(audit.Config{Path: tr.path, Sync: audit.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 8 {
		if err := l.Append(context.Background(), callRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	sink2 := &memSink{}
	s2 := NewShipper("mem", tr.path, FormatNative, fastCfg, sink2, nil, nil)
	stop2 := runShipper(t, s2)
	defer stop2()
	waitFor(t, "8 of the new trail", 5*time.Second, func() bool { return len(sink2.seqs()) >= 8 })
	checkSeqs(t, sink2.seqs(), 8)
}

func TestTailerWaitsForCompleteLine(t *testing.T) {
	tr := newTrail(t, -1)
	tr.append(t, 2)
	b, _ := os.ReadFile(tr.path)
	lines := strings.SplitAfter(string(b), "\n")
	// A copy of the trail whose last line is still being written.
	path := t.TempDir() + "/audit.log"
	if err := os.WriteFile(path, []byte(lines[0]+lines[1][:40]), 0o600); err != nil {
		t.Fatal(err)
	}
	tl := newTailer(path, 0, "")
	defer tl.close()
	e, err := tl.next()
	if err != nil || e == nil || e.rec.Seq != 1 {
		t.Fatalf("first: %v %v", e, err)
	}
	if e, err := tl.next(); err != nil || e != nil {
		t.Fatalf("a partial line was returned: %v %v", e, err)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(lines[1][40:])
	_ = f.Close()
	e, err = tl.next()
	if err != nil || e == nil || e.rec.Seq != 2 || string(e.line) != lines[1] {
		t.Fatalf("completed line: %v %v", e, err)
	}
}

func TestExporterCloseDrains(t *testing.T) {
	tr := newTrail(t, -1)
	var out strings.Builder
	// audit.format ocsf, overridden by the sink.
	cfg := Config{Sinks: []SinkConfig{{Type: SinkStdout, Format: FormatECS}}, PollInterval: time.Hour}
	e, err := Start(context.Background(), Options{Path: tr.path, Format: FormatOCSF, Config: cfg, Stdout: &syncWriter{w: &out}})
	if err != nil {
		t.Fatal(err)
	}
	tr.append(t, 3) // written after the shipper went idle for an hour
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], `"sequence":3`) || !strings.Contains(lines[0], `"ecs":{"version"`) {
		t.Fatalf("stdout got %q", out.String())
	}
	if st := e.Stats(); len(st) != 1 || st[0].Name != "stdout" || st[0].AckedSeq != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStartRejectsBadSinks(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		sink SinkConfig
		want string
	}{
		{SinkConfig{Type: "kafka"}, "unknown type"},
		{SinkConfig{Type: SinkSyslog}, "needs address"},
		{SinkConfig{Type: SinkHEC, URL: "https://splunk:8088"}, "tokenFile"},
		{SinkConfig{Type: SinkHEC, URL: "https://u:p@splunk:8088", TokenFile: "x"}, "credentials"},
		{SinkConfig{Type: SinkHEC, URL: "https://splunk:8088", TokenFile: dir + "/missing"}, "tokenFile"},
		{SinkConfig{Type: SinkOTLP, URL: "ftp://x"}, "needs url"},
		{SinkConfig{Type: SinkStdout, Format: "cef"}, "unknown format"},
		{SinkConfig{Type: SinkSyslog, Address: "h:1", TLS: TLSConfig{Enabled: true, CAFile: dir + "/nope"}}, "caFile"},
	} {
		_, err := Start(context.Background(), Options{Path: dir + "/audit.log", Config: Config{Sinks: []SinkConfig{tc.sink}}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.sink, err, tc.want)
		}
	}
	two := Config{Sinks: []SinkConfig{{Type: SinkStdout}, {Type: SinkStdout}}}
	if err := two.Validate(); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("duplicate names: %v", err)
	}
}

func TestDamagedStateResendsFromStart(t *testing.T) {
	tr := newTrail(t, -1)
	tr.append(t, 6)
	if err := os.WriteFile(StatePath(tr.path, "mem"), []byte(`{"seq":`), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	sink := &memSink{}
	s := NewShipper("mem", tr.path, FormatNative, fastCfg, sink, testLogger(&logs), nil)
	stop := runShipper(t, s)
	waitFor(t, "6 records", 5*time.Second, func() bool { return len(sink.seqs()) >= 6 })
	stop()
	checkSeqs(t, sink.seqs(), 6)
	if !strings.Contains(logs.String(), "damaged state file") {
		t.Fatalf("no warning: %s", logs.String())
	}
	st, err := loadState(StatePath(tr.path, "mem"))
	if err != nil || st.Seq != 6 {
		t.Fatalf("state after the run: %+v %v", st, err)
	}
}
