package audit

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// manualClock is a clock the test moves.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func rotatedSize(t *testing.T, path string) (int, int64) {
	t.Helper()
	files, err := rotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	return len(files), total
}

// TestRetentionByAge rotates the active file every hour of (test) time and
// keeps three hours of rotated files: older files go, each removal is
// recorded first, and the remaining files verify, signed checkpoints
// included, with the start explained by the retention records.
func TestRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	keyFile, pub := writeKey(t, dir)
	clock := &manualClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, "audit.log")
	cfg.Now = clock.Now
	cfg.RotateAge = time.Hour
	cfg.RetainAge = 3 * time.Hour
	cfg.Checkpoint = CheckpointConfig{KeyFile: keyFile, Every: 7, Interval: time.Hour}
	l := openTest(t, cfg)
	for hour := range 12 {
		appendN(t, l, 10)
		if err := l.Prune(context.Background()); err != nil {
			t.Fatal(err)
		}
		files, err := rotatedFiles(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			at, ok := rotatedAt(cfg.Path, f)
			if !ok {
				t.Fatalf("rotated name %s does not parse", f)
			}
			if clock.Now().Sub(at) > cfg.RetainAge {
				t.Fatalf("hour %d: %s was rotated at %s, more than %s ago, and is still there", hour, f, at, cfg.RetainAge)
			}
		}
		clock.advance(time.Hour)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 || len(files) > 5 {
		t.Fatalf("%d files left, want the active file and about three hours of rotated files: %v", len(files), files)
	}
	res, err := VerifyWithOptions(VerifyOptions{Keys: []ed25519.PublicKey{pub}}, files...)
	if err != nil || !res.OK {
		t.Fatalf("verify: %+v, %v", res, err)
	}
	if res.FromGenesis || len(res.RemovedByRetention) == 0 || res.Checkpoints == 0 {
		t.Fatalf("verify: from genesis %v, removed by retention %v, checkpoints %d; want the start explained by retention records", res.FromGenesis, res.RemovedByRetention, res.Checkpoints)
	}
	q, err := Query(files, Filter{Type: TypeRetention})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range q.Records {
		if !strings.HasPrefix(r.Retention.Rule, "retainAge 3h") || r.Retention.LastSeq < r.Retention.FirstSeq {
			t.Errorf("retention record %+v", r.Retention)
		}
	}
	// A head cut by hand (not by retention) is not explained.
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	res, err = VerifyWithOptions(VerifyOptions{Keys: []ed25519.PublicKey{pub}}, files[1:]...)
	if err != nil || !res.OK || len(res.RemovedByRetention) != 0 {
		t.Fatalf("after removing the oldest file by hand: %+v, %v; want OK (older files may be elsewhere) but not explained", res, err)
	}
}

// TestRetentionBySize keeps the rotated files under retainBytes, over
// enough rounds that the files holding earlier retention records are
// removed too: the newest retention record still accounts for every seq
// removed.
func TestRetentionBySize(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 4 << 10
	cfg.RetainBytes = 12 << 10
	l := openTest(t, cfg)
	for range 20 {
		appendN(t, l, 20)
		if err := l.Prune(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, total := rotatedSize(t, cfg.Path); total > cfg.RetainBytes {
			t.Fatalf("%d rotated files hold %d bytes, more than retainBytes %d", n, total, cfg.RetainBytes)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	res := mustVerifyOK(t, files...)
	if res.FirstSeq < 100 || len(res.RemovedByRetention) == 0 {
		t.Fatalf("chain starts at seq %d, explained by %v; want a pruned start explained", res.FirstSeq, res.RemovedByRetention)
	}
	// The server restarts and prunes again: the retention record it writes
	// still accounts for everything removed (resumed from the files).
	l = openTest(t, cfg)
	appendN(t, l, 60)
	if err := l.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err = Files(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	res2 := mustVerifyOK(t, files...)
	if res2.FirstSeq <= res.FirstSeq || len(res2.RemovedByRetention) != 1 {
		t.Fatalf("after a restart: chain starts at seq %d (was %d), explained by %v; want one retention record accounting for seq 1..%d", res2.FirstSeq, res.FirstSeq, res2.RemovedByRetention, res2.FirstSeq-1)
	}
}

func TestRetentionConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"negative":        {RetainAge: -time.Hour},
		"stdout":          {Sink: SinkStdout, RetainBytes: 1},
		"retain < rotate": {RotateAge: 24 * time.Hour, RetainAge: time.Hour},
		"negative bytes":  {RetainBytes: -1},
		"negative rotate": {RotateAge: -1},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, cfg)
		}
	}
}
