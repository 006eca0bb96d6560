package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// durableWriter records what was written and which prefix of it a Sync
// made durable.
type durableWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	durable int            // bytes of buf covered by a Sync
	ends    map[string]int // hash of each complete line -> offset after it
	writes  int
	syncs   int
	// failEvery makes every failEvery-th write fail after writing half of
	// its bytes (0: never).
	failEvery int
}

func (w *durableWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if w.failEvery > 0 && w.writes%w.failEvery == 0 {
		w.buf.Write(p[:len(p)/2])
		return len(p) / 2, syscall.ENOSPC
	}
	start := w.buf.Len()
	n, err := w.buf.Write(p)
	for off := 0; off < len(p); {
		i := bytes.IndexByte(p[off:], '\n')
		if i < 0 {
			break
		}
		if _, stored, ok := lineHash(p[off : off+i]); ok {
			if w.ends == nil {
				w.ends = map[string]int{}
			}
			w.ends[stored] = start + off + i + 1
		}
		off += i + 1
	}
	return n, err
}

func (w *durableWriter) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.syncs++
	w.durable = w.buf.Len()
	time.Sleep(100 * time.Microsecond) // about an fdatasync on a fast disk
	return nil
}

// isDurable reports whether the line of the record with this hash is in
// the synced prefix.
func (w *durableWriter) isDurable(hash string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	end, ok := w.ends[hash]
	return ok && end <= w.durable
}

// TestGroupCommitDurableOnReturn checks the rule of SyncEvery under
// concurrency: when Append returns nil, the record's complete line is in
// the part of the sink that a sync covered; and concurrent appends share
// writes and syncs.
func TestGroupCommitDurableOnReturn(t *testing.T) {
	w := &durableWriter{}
	l, err := OpenWriter(w, Config{Now: newTestClock().Now, Sync: SyncEvery})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, per = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				r := callRecord(g*per + i)
				if err := l.Append(context.Background(), r); err != nil {
					errs <- err
					return
				}
				if !w.isDurable(r.Hash) {
					errs <- fmt.Errorf("Append of seq %d returned before its line was synced", r.Seq)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res := mustVerifyOK(t, writeTemp(t, w.buf.Bytes()))
	if res.Records != goroutines*per {
		t.Fatalf("%d records, want %d", res.Records, goroutines*per)
	}
	t.Logf("%d records in %d writes and %d syncs", res.Records, w.writes, w.syncs)
	if w.syncs >= res.Records || w.writes >= res.Records {
		t.Errorf("%d writes and %d syncs for %d concurrent records: no group commit", w.writes, w.syncs, res.Records)
	}
}

// TestGroupCommitWriteFailures makes writes fail part-way while many
// goroutines append: every record whose Append succeeded is in the sink,
// no failed record is (except as a torn line), and the chain verifies.
func TestGroupCommitWriteFailures(t *testing.T) {
	w := &durableWriter{failEvery: 7}
	l, err := OpenWriter(w, Config{Now: newTestClock().Now, Sync: SyncEvery})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, per = 32, 30
	var mu sync.Mutex
	var acked, failed []string
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				r := callRecord(g*per + i)
				err := l.Append(context.Background(), r)
				mu.Lock()
				switch {
				case err == nil:
					acked = append(acked, r.Hash)
				case errors.Is(err, syscall.ENOSPC):
					failed = append(failed, r.Hash)
				default:
					t.Errorf("Append: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(acked) == 0 || len(failed) == 0 {
		t.Fatalf("%d acknowledged, %d failed: the fault did not bite", len(acked), len(failed))
	}
	path := writeTemp(t, w.buf.Bytes())
	res := mustVerifyOK(t, path)
	q, err := Query([]string{path}, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	inLog := map[string]bool{}
	for _, r := range q.Records {
		inLog[r.Hash] = true
	}
	for _, h := range acked {
		if !inLog[h] {
			t.Errorf("acknowledged record %s… is not in the sink", h[:12])
		}
	}
	extra := len(q.Records) - len(acked)
	t.Logf("%d acknowledged, %d failed, %d complete in the sink (%d written whole before their batch failed), %d torn",
		len(acked), len(failed), res.Records, extra, len(res.Torn))
	if len(res.Torn) == 0 {
		t.Error("no torn line although writes failed half-way")
	}
}

// shortWriter writes all but the last byte of one write, then fails.
type shortWriter struct {
	bytes.Buffer
	failNext bool
}

func (w *shortWriter) Write(p []byte) (int, error) {
	if w.failNext {
		w.failNext = false
		return w.Buffer.Write(p[:len(p)-1])
	}
	return w.Buffer.Write(p)
}

// TestWriteFailsOneByteShort covers a write that stops just before the
// newline: the record is whole once the newline is added, so the chain
// continues from it instead of writing a second record with its seq.
func TestWriteFailsOneByteShort(t *testing.T) {
	w := &shortWriter{}
	l, err := OpenWriter(w, Config{Now: newTestClock().Now, Sync: SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 2)
	w.failNext = true
	if err := l.Append(context.Background(), callRecord(3)); err == nil {
		t.Fatal("Append succeeded on a short write")
	}
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res := mustVerifyOK(t, writeTemp(t, w.Bytes()))
	if res.Records != 4 || res.LastSeq != 4 || len(res.Torn) != 0 {
		t.Errorf("Verify = %d records, last seq %d, torn %v; want 4, 4, none", res.Records, res.LastSeq, res.Torn)
	}
}
