package ship

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// maxLine bounds one line read from an audit file; a longer line (never
// written by package audit, whose records are capped) is skipped.
const maxLine = 4 << 20

// entry is one record read from the trail.
type entry struct {
	line []byte
	rec  audit.Record
}

// tailer reads the records of one chain of audit files (PATH and its rotated
// files) in seq order, from after a given seq, following rotation. It
// follows the chain by seq, not by file name: a rotated file is found again
// by the seq of its first record. It is used by one goroutine.
type tailer struct {
	path string
	seq  uint64 // last seq delivered (records up to it are skipped)
	// resumeHash is the hash of record seq when resuming: if the trail
	// holds another record under that seq, it is a new trail (its files
	// were replaced) and shipping starts again from its beginning.
	resumeHash string
	resets     uint64

	f      *os.File
	r      *bufio.Reader
	off    int64 // offset of r's next byte in f
	active bool  // f was opened as path and may still grow

	torn, gaps, skipped uint64 // counters for Stats
	gapFrom, gapTo      uint64 // the last gap seen (first and last missing seq)
}

func newTailer(path string, after uint64, hash string) *tailer {
	return &tailer{path: path, seq: after, resumeHash: hash}
}

func (t *tailer) close() {
	if t.f != nil {
		_ = t.f.Close()
		t.f, t.r = nil, nil
	}
}

// firstSeq returns the seq of the first record of file, or 0 if it holds
// none yet.
func firstSeq(file string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	return firstSeqOf(f)
}

// firstSeqOf returns the seq of the first record of an open file, without
// moving its offset.
func firstSeqOf(f *os.File) (uint64, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<62), 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long first line: read the rest of it.
			rest, err2 := r.ReadBytes('\n')
			line = append(append([]byte(nil), line...), rest...)
			err = err2
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var h struct {
				Seq uint64 `json:"seq"`
			}
			if json.Unmarshal(line, &h) == nil && h.Seq > 0 {
				return h.Seq, nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, nil
			}
			return 0, err
		}
	}
}

// open positions the tailer on the file that holds seq t.seq+1: the newest
// file whose first record is not after it, or failing that (the records were
// deleted before they were read) the first file holding a record. It
// returns false when there is no file to read yet.
func (t *tailer) open() (bool, error) {
	return t.openChecked(t.pickStart)
}

// openChecked opens the file pick names, then picks again and keeps the
// file only if the second pick names the same file: the writer may rotate
// the active file between a listing and the open, and the records wanted
// are then in a rotated file. After a few tries the file is kept anyway.
func (t *tailer) openChecked(pick func() (string, error)) (bool, error) {
	t.close()
	for try := 0; ; try++ {
		name, err := pick()
		if err != nil || name == "" {
			return false, err
		}
		ok, err := t.openFile(name)
		if err != nil || !ok {
			return ok, err
		}
		if try == 5 || t.stable(name, pick) {
			return true, nil
		}
		t.close()
	}
}

// stable reports whether pick still names the open file.
func (t *tailer) stable(name string, pick func() (string, error)) bool {
	again, err := pick()
	if err != nil || again != name {
		return false
	}
	a, err := t.f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(name)
	return err == nil && os.SameFile(a, b)
}

// pickStart names the file that holds seq t.seq+1: the newest file whose
// first record is not after it, or failing that (the records were deleted
// before they were read) the first file holding a record; "" when there is
// none.
func (t *tailer) pickStart() (string, error) {
	files, err := audit.Files(t.path)
	if err != nil {
		return "", fmt.Errorf("ship: list audit files: %w", err)
	}
	want := t.seq + 1
	pick := ""
	first := ""
	for _, f := range files {
		s, err := firstSeq(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted meanwhile
			}
			return "", fmt.Errorf("ship: read %s: %w", f, err)
		}
		if s == 0 {
			continue // an empty active file: reached by advance
		}
		if first == "" {
			first = f
		}
		if s <= want {
			pick = f
		}
	}
	if pick == "" {
		// Nothing starts at or before want: records were deleted unread.
		pick = first
	}
	if pick == "" {
		// No record anywhere yet: wait on the active file, if there is one.
		if _, err := os.Stat(t.path); errors.Is(err, os.ErrNotExist) {
			return "", nil
		} else if err != nil {
			return "", fmt.Errorf("ship: %w", err)
		}
		pick = t.path
	}
	return pick, nil
}

func (t *tailer) openFile(name string) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("ship: open %s: %w", name, err)
	}
	t.f, t.off, t.active = f, 0, name == t.path
	t.r = bufio.NewReaderSize(f, 256<<10)
	return true, nil
}

// advance moves from a finished (rotated) file to the next file of the
// chain: the first whose first record comes after t.seq, or the active file
// when it holds no record yet.
func (t *tailer) advance() (bool, error) {
	return t.openChecked(t.pickNext)
}

func (t *tailer) pickNext() (string, error) {
	files, err := audit.Files(t.path)
	if err != nil {
		return "", fmt.Errorf("ship: list audit files: %w", err)
	}
	for _, f := range files {
		s, err := firstSeq(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return "", fmt.Errorf("ship: read %s: %w", f, err)
		}
		if s > t.seq || (s == 0 && f == t.path) {
			return f, nil
		}
	}
	return "", nil
}

// next returns the next record after t.seq, or nil when none is available
// yet. It never returns a line still being written.
func (t *tailer) next() (*entry, error) {
	for {
		if t.f == nil {
			ok, err := t.open()
			if err != nil || !ok {
				return nil, err
			}
		}
		line, err := t.readLine()
		if err != nil {
			return nil, err
		}
		if line == nil {
			// End of this file.
			if t.active {
				rotated, err := t.rotated()
				if err != nil {
					return nil, err
				}
				if !rotated {
					return nil, nil
				}
				// Drain what was written before the rename, then move on.
				t.active = false
				continue
			}
			ok, err := t.advance()
			if err != nil || !ok {
				return nil, err
			}
			continue
		}
		e := &entry{}
		if err := json.Unmarshal(line, &e.rec); err != nil || e.rec.Seq == 0 {
			t.torn++ // a torn line: the trace of a crash, kept in the file
			continue
		}
		if e.rec.Seq == t.seq && t.resumeHash != "" && e.rec.Hash != t.resumeHash {
			t.resets++
			t.seq, t.resumeHash = 0, ""
			t.close()
			continue
		}
		if e.rec.Seq <= t.seq {
			continue
		}
		t.resumeHash = ""
		if e.rec.Seq != t.seq+1 {
			// Records deleted before they were shipped (or a trail whose
			// oldest files were removed before shipping began).
			t.gaps++
			t.gapFrom, t.gapTo = t.seq+1, e.rec.Seq-1
		}
		e.line = line
		t.seq = e.rec.Seq
		return e, nil
	}
}

// readLine returns the next complete line of the current file, or nil at
// its end. A partial last line is left for later.
func (t *tailer) readLine() ([]byte, error) {
	for {
		line, err := t.r.ReadBytes('\n')
		if err == nil {
			t.off += int64(len(line))
			if len(line) > maxLine {
				t.skipped++
				continue
			}
			return line, nil
		}
		if !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("ship: read %s: %w", t.f.Name(), err)
		}
		if len(line) > 0 {
			// A line still being written: read it again from its start.
			if _, err := t.f.Seek(t.off, io.SeekStart); err != nil {
				return nil, fmt.Errorf("ship: seek %s: %w", t.f.Name(), err)
			}
			t.r.Reset(t.f)
		}
		return nil, nil
	}
}

// rotated reports whether path no longer names the open file.
func (t *tailer) rotated() (bool, error) {
	cur, err := t.f.Stat()
	if err != nil {
		return false, fmt.Errorf("ship: stat %s: %w", t.f.Name(), err)
	}
	now, err := os.Stat(t.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		return false, fmt.Errorf("ship: stat %s: %w", t.path, err)
	}
	return !os.SameFile(cur, now), nil
}
