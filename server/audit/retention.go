package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// fileStarted returns when the active file was started: the time of its
// first record, else now (a new or empty file, or no regular file).
func fileStarted(path string, now time.Time) time.Time {
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return now
	}
	if r, ok, err := firstRecord(path); err == nil && ok && !r.Time.IsZero() {
		return r.Time
	}
	return now
}

// rotatedAt parses the rotation time from a rotated file's name.
func rotatedAt(path, file string) (time.Time, bool) {
	suffix := strings.TrimPrefix(filepath.Base(file), filepath.Base(path)+".")
	if i := strings.IndexByte(suffix, '-'); i >= 0 {
		suffix = suffix[:i]
	}
	t, err := time.Parse(rotatedLayout, suffix)
	return t, err == nil
}

// retentionLoop removes rotated files past retention after each rotation
// and at least once a minute (more often for a short retainAge).
func (l *Log) retentionLoop() {
	defer l.loops.Done()
	period := time.Minute
	if l.cfg.RetainAge > 0 {
		period = min(period, max(l.cfg.RetainAge/4, 10*time.Millisecond))
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		_ = l.prune()
		select {
		case <-l.stop:
			return
		case <-t.C:
		case <-l.pruneCh:
		}
	}
}

// prune removes the oldest rotated files that retention no longer keeps:
// those rotated more than RetainAge ago, then the oldest while the rotated
// files together exceed RetainBytes. Files go oldest first and only as a
// run from the oldest, so what remains is one unbroken stretch of the
// chain. Before each removal a retention record naming the file's records
// is appended (and synced under SyncEvery); if it cannot be written the
// file stays.
func (l *Log) prune() error {
	l.pruneMu.Lock()
	defer l.pruneMu.Unlock()
	// A retention record can itself rotate the active file, adding a
	// rotated file the pass did not count: pass again until a pass
	// removes nothing (each pass removes at least one file or ends).
	for range 16 {
		removed, err := l.prunePass()
		if err != nil || !removed {
			return err
		}
	}
	return nil
}

// prunePass removes the rotated files the rules no longer keep, oldest
// first, and reports whether it removed any.
func (l *Log) prunePass() (bool, error) {
	files, err := rotatedFiles(l.path)
	if err != nil {
		return false, err
	}
	now := l.cfg.Now()
	sizes := make([]int64, len(files))
	var total int64
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return false, fmt.Errorf("audit: retention: %w", err)
		}
		sizes[i] = st.Size()
		total += sizes[i]
	}
	removed := false
	for i, f := range files {
		rule := ""
		if at, ok := rotatedAt(l.path, f); ok && l.cfg.RetainAge > 0 && now.Sub(at) > l.cfg.RetainAge {
			rule = "retainAge " + l.cfg.RetainAge.String()
		} else if l.cfg.RetainBytes > 0 && total > l.cfg.RetainBytes {
			rule = "retainBytes " + strconv.FormatInt(l.cfg.RetainBytes, 10)
		}
		if rule == "" {
			return removed, nil
		}
		if err := l.removeRotated(f, rule); err != nil {
			return removed, err
		}
		removed = true
		total -= sizes[i]
	}
	return removed, nil
}

// removeRotated records and removes one rotated file.
func (l *Log) removeRotated(file, rule string) error {
	first, ok, err := firstRecord(file)
	if err != nil {
		return err
	}
	ret := &Retention{File: filepath.Base(file), Rule: rule}
	if ok {
		last, _, err := lastGoodRecord(file)
		if err != nil {
			return err
		}
		ret.FirstSeq, ret.FirstPrevHash = first.Seq, first.PrevHash
		if last != nil {
			ret.LastSeq, ret.LastHash = last.Seq, last.Hash
		}
		// One record accounts for everything removed so far, when this
		// file continues what was removed before.
		if c := l.removed; c != nil && c.LastSeq+1 == ret.FirstSeq && c.LastHash == ret.FirstPrevHash {
			ret.FirstSeq, ret.FirstPrevHash = c.FirstSeq, c.FirstPrevHash
		}
	}
	rec := &Record{Type: TypeRetention, Retention: ret,
		Reason: fmt.Sprintf("removed %s (seq %d..%d) by %s", ret.File, ret.FirstSeq, ret.LastSeq, rule)}
	if err := l.appendRecord(rec); err != nil {
		return fmt.Errorf("audit: retention record for %s: %w", file, err)
	}
	l.removed = ret
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return l.writeFailed(fmt.Errorf("audit: retention: %w", err))
	}
	syncDir(filepath.Dir(file))
	return nil
}

// retained is a retention record and where it is.
type retained struct {
	ret *Retention
	loc Location
}

// retentionTag is in every retention line and in no other.
var retentionTag = []byte(`"type":"retention"`)

// lastRetention finds the newest intact retention record in the audit
// files of path, newest file first, looking at no more than maxFiles.
func lastRetention(path string, maxFiles int) (*Retention, error) {
	files, err := Files(path)
	if err != nil {
		return nil, err
	}
	for i := len(files) - 1; i >= 0 && i >= len(files)-maxFiles; i-- {
		var last *Retention
		s := newStream(files[i : i+1])
		for {
			e, ok, err := s.next()
			if err != nil {
				s.close()
				return nil, err
			}
			if !ok {
				break
			}
			if e.tooLong || !bytes.Contains(e.line, retentionTag) {
				continue
			}
			if r, hashOK, err := checkLine(e.line); err == nil && hashOK && r.Type == TypeRetention && r.Retention != nil {
				last = r.Retention
			}
		}
		s.close()
		if last != nil {
			return last, nil
		}
	}
	return nil, nil
}

// walkRetention follows retention records back from a record (its seq and
// prevHash): each must name the seq before it with that hash. It returns
// the earliest record reached (its seq and prevHash) and the retention
// records used.
func walkRetention(seq uint64, prevHash string, removed map[uint64]retained) (uint64, string, []Location) {
	var locs []Location
	for seq > 1 {
		r, ok := removed[seq-1]
		if !ok || r.ret.LastHash != prevHash || r.ret.FirstSeq == 0 || r.ret.FirstSeq >= seq {
			break
		}
		locs = append(locs, r.loc)
		seq, prevHash = r.ret.FirstSeq, r.ret.FirstPrevHash
	}
	return seq, prevHash, locs
}

// Prune applies retention now (it also runs after each rotation and
// periodically); for tests and for an operator's one-off run.
func (l *Log) Prune(_ context.Context) error {
	if l.path == "" {
		return nil
	}
	return l.prune()
}
