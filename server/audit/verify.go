package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// maxLineBytes bounds a line read back from an audit file. Records are far
// smaller (arguments and entity lists are capped); a longer line is reported
// as not a record.
const maxLineBytes = 4 << 20

// reorderWindow is how many records Verify looks ahead to tell a reordering
// from a deletion.
const reorderWindow = 1000

// ProblemKind classifies why verification failed.
type ProblemKind string

// Problem kinds.
const (
	// ProblemEdited: a record's content does not match its hash, its prevHash
	// does not match the previous record, or a line that is not a record
	// breaks the chain.
	ProblemEdited ProblemKind = "edited"
	// ProblemDeleted: records are missing (a seq gap within a file).
	ProblemDeleted ProblemKind = "deleted"
	// ProblemReordered: records appear out of seq order.
	ProblemReordered ProblemKind = "reordered"
	// ProblemDuplicated: a record appears twice.
	ProblemDuplicated ProblemKind = "duplicated"
	// ProblemTruncated: records are missing at the end of a file (seen at the
	// boundary with the next file) or before an anchor.
	ProblemTruncated ProblemKind = "truncated"
	// ProblemForged: a checkpoint's signature does not verify with the
	// keys given (or names another key).
	ProblemForged ProblemKind = "forged"
	// ProblemRewritten: the hash chain is intact but disagrees with a
	// signed checkpoint: records were edited, deleted, inserted, reordered
	// or renumbered and the hashes recomputed, or a checkpoint was removed.
	ProblemRewritten ProblemKind = "rewritten"
)

// Location is a line in an audit file.
type Location struct {
	// File is the path as given to Verify or Query.
	File string `json:"file"`
	// Line is the 1-based line number.
	Line int `json:"line"`
}

// String formats l as file:line.
func (l Location) String() string { return fmt.Sprintf("%s:%d", l.File, l.Line) }

// Problem describes the first bad record found.
type Problem struct {
	Location
	// Seq is the seq the bad record claims (0 if it has none).
	Seq uint64 `json:"seq"`
	// Kind classifies the problem.
	Kind ProblemKind `json:"kind"`
	// Detail explains the problem to a reviewer.
	Detail string `json:"detail"`
}

// Error formats the problem as one line.
func (p *Problem) Error() string {
	return fmt.Sprintf("%s: seq %d: %s: %s", p.Location, p.Seq, p.Kind, p.Detail)
}

// Anchor is a (seq, hash) pair recorded outside the log, e.g. from Log.Head.
type Anchor struct {
	// Seq is the anchored record's seq.
	Seq uint64 `json:"seq"`
	// Hash is the anchored record's hash.
	Hash string `json:"hash"`
}

// VerifyOptions tune VerifyWithOptions.
type VerifyOptions struct {
	// Anchors are records known from outside the log. The chain must contain
	// each one, with that hash, at that seq.
	Anchors []Anchor
	// Keys check the signed checkpoints. With keys, every checkpoint must
	// verify, sign the record before it and link to the previous one, at
	// most Every records may pass without one, and the log must hold at
	// least one.
	Keys []ed25519.PublicKey
	// CheckpointFiles are copies of the checkpoints kept apart from the log
	// (checkpoint.file): each must be in the log, with the same hash, so a
	// log cut after a checkpoint was copied fails as truncated.
	CheckpointFiles []string
}

// VerifyResult is the outcome of a verification.
type VerifyResult struct {
	// OK is true when no problem was found. Torn lines do not clear it.
	OK bool `json:"ok"`
	// Files are the files checked, in chain order.
	Files []string `json:"files"`
	// Records is the number of good records checked before the first problem.
	Records int `json:"records"`
	// FromGenesis reports that the chain starts at GenesisHash (seq 1);
	// false means older files were not given (or were removed).
	FromGenesis bool `json:"fromGenesis"`
	// FirstSeq and LastSeq bound the good records checked.
	FirstSeq uint64 `json:"firstSeq"`
	// LastSeq is the seq of the last good record.
	LastSeq uint64 `json:"lastSeq"`
	// LastHash is the hash of the last good record: keep it as an Anchor.
	LastHash string `json:"lastHash"`
	// LastType is the type of the last good record other than a
	// checkpoint; a log that does not end
	// with server_stop belongs to a running or crashed server, or was
	// truncated.
	LastType Type `json:"lastType"`
	// Torn lists lines that are not complete records while the chain around
	// them is intact (crash or failed write mid-line).
	Torn []Location `json:"torn,omitempty"`
	// Checkpoints counts the checkpoint records checked (signatures
	// included when keys were given).
	Checkpoints int `json:"checkpoints"`
	// SignedSeq is the last seq covered by a checkpoint that verified with
	// the keys given (0: none, or no keys).
	SignedSeq uint64 `json:"signedSeq,omitempty"`
	// Unsigned counts the records after the last checkpoint, which no
	// signature covers yet.
	Unsigned int `json:"unsigned,omitempty"`
	// RemovedByRetention lists the retention records that account for a
	// chain that does not start at genesis: together they name every seq
	// from 1 to FirstSeq-1 and link to the first record given, so the
	// older records were removed by the server's retention, not cut.
	RemovedByRetention []Location `json:"removedByRetention,omitempty"`
	// CheckpointCopies counts the checkpoints of CheckpointFiles matched.
	CheckpointCopies int `json:"checkpointCopies,omitempty"`
	// Problem is the first bad record, nil when OK.
	Problem *Problem `json:"problem,omitempty"`
}

// Verify checks the hash chain across files (see the package documentation
// for what it can and cannot detect). Files may be given in any order. A
// returned error means a file could not be read; a broken chain is reported
// in the result.
func Verify(files ...string) (VerifyResult, error) {
	return VerifyWithOptions(VerifyOptions{}, files...)
}

// VerifyWithOptions is Verify with anchors.
func VerifyWithOptions(opts VerifyOptions, files ...string) (VerifyResult, error) {
	ordered, err := orderFiles(files)
	if err != nil {
		return VerifyResult{}, err
	}
	res := VerifyResult{Files: ordered}
	anchors := make(map[uint64]string, len(opts.Anchors))
	for _, a := range opts.Anchors {
		anchors[a.Seq] = a.Hash
	}
	cv, err := newCheckpointVerifier(opts)
	if err != nil {
		return res, err
	}
	s := newStream(ordered)
	defer s.close()

	type prevRec struct {
		seq  uint64
		hash string
		loc  Location
	}
	var prev *prevRec
	var pending []Location // non-record lines since prev
	var firstPrev string
	removed := map[uint64]retained{} // by the last seq of the removed file
	fail := func(p *Problem) (VerifyResult, error) {
		res.Problem = p
		cv.fill(&res)
		return res, nil
	}
	if cv.sideProblem != nil {
		return fail(cv.sideProblem)
	}
	for {
		e, ok, err := s.next()
		if err != nil {
			return res, err
		}
		if !ok {
			break
		}
		if e.tooLong {
			pending = append(pending, e.loc)
			continue
		}
		rec, hashOK, perr := checkLine(e.line)
		if perr != nil {
			pending = append(pending, e.loc)
			continue
		}
		if !hashOK {
			return fail(&Problem{Location: e.loc, Seq: rec.Seq, Kind: ProblemEdited,
				Detail: "content does not match its hash"})
		}
		if rec.Type == TypeRetention && rec.Retention != nil {
			removed[rec.Retention.LastSeq] = retained{rec.Retention, e.loc}
		}
		if prev == nil {
			res.FirstSeq, firstPrev = rec.Seq, rec.PrevHash
			if rec.PrevHash == GenesisHash {
				if rec.Seq != 1 {
					return fail(&Problem{Location: e.loc, Seq: rec.Seq, Kind: ProblemEdited,
						Detail: "record chains from genesis but its seq is not 1"})
				}
				res.FromGenesis = true
			}
		} else if rec.PrevHash != prev.hash || rec.Seq != prev.seq+1 {
			if len(pending) > 0 && (rec.Seq == prev.seq+1 || rec.Seq == prev.seq+2) {
				// A non-record line where the chain breaks: it replaced a
				// record (a torn write never breaks the chain).
				return fail(&Problem{Location: pending[0], Seq: prev.seq + 1, Kind: ProblemEdited,
					Detail: fmt.Sprintf("line is not a valid record and the chain is broken around it (seq %d at %s does not link to seq %d at %s)", rec.Seq, e.loc, prev.seq, prev.loc)})
			}
			p, err := classify(s, prev.seq, prev.hash, prev.loc, rec, e)
			if err != nil {
				return res, err
			}
			return fail(p)
		}
		if want, ok := anchors[rec.Seq]; ok && want != rec.Hash {
			return fail(&Problem{Location: e.loc, Seq: rec.Seq, Kind: ProblemEdited,
				Detail: fmt.Sprintf("hash %s differs from the anchor %s", short(rec.Hash), short(want))})
		}
		var pseq uint64
		var phash string
		var ploc Location
		if prev != nil {
			pseq, phash, ploc = prev.seq, prev.hash, prev.loc
		}
		if p := cv.record(rec, e.loc, prev != nil, pseq, phash, ploc, res.FromGenesis); p != nil {
			return fail(p)
		}
		res.Torn = append(res.Torn, pending...)
		pending = nil
		prev = &prevRec{seq: rec.Seq, hash: rec.Hash, loc: e.loc}
		res.Records++
		res.LastSeq, res.LastHash = rec.Seq, rec.Hash
		if rec.Type != TypeCheckpoint {
			res.LastType = rec.Type
		}
	}
	res.Torn = append(res.Torn, pending...)
	var lastLoc Location
	if prev != nil {
		lastLoc = prev.loc
	}
	if p := cv.end(res.Records, res.LastSeq, lastLoc); p != nil {
		return fail(p)
	}
	cv.fill(&res)
	if !res.FromGenesis && res.Records > 0 {
		// Walk back from the first record through the retention records.
		if seq, hash, locs := walkRetention(res.FirstSeq, firstPrev, removed); seq == 1 && hash == GenesisHash {
			res.RemovedByRetention = locs
		}
	}
	for _, a := range opts.Anchors {
		if a.Seq > res.LastSeq {
			loc := Location{}
			if prev != nil {
				loc = prev.loc
			}
			return fail(&Problem{Location: loc, Seq: res.LastSeq, Kind: ProblemTruncated,
				Detail: fmt.Sprintf("the log ends at seq %d but the anchor proves seq %d existed", res.LastSeq, a.Seq)})
		}
		if res.Records > 0 && a.Seq < res.FirstSeq {
			return fail(&Problem{Seq: a.Seq, Kind: ProblemTruncated,
				Detail: fmt.Sprintf("the anchor seq %d is before the first record checked (seq %d): give the older files", a.Seq, res.FirstSeq)})
		}
	}
	res.OK = true
	return res, nil
}

// classify explains why rec (at e) does not follow the previous good record.
func classify(s *stream, prevSeq uint64, prevHash string, prevLoc Location, rec *Record, e entry) (*Problem, error) {
	want := prevSeq + 1
	p := &Problem{Location: e.loc, Seq: rec.Seq}
	switch {
	case rec.Seq == want:
		p.Kind = ProblemEdited
		p.Detail = fmt.Sprintf("prevHash %s does not match the hash %s of seq %d at %s: a record was replaced or re-linked",
			short(rec.PrevHash), short(prevHash), prevSeq, prevLoc)
	case rec.Seq == prevSeq && rec.Hash == prevHash:
		p.Kind = ProblemDuplicated
		p.Detail = fmt.Sprintf("same record as %s", prevLoc)
	case rec.Seq < want:
		p.Kind = ProblemReordered
		p.Detail = fmt.Sprintf("seq goes back from %d (at %s) to %d", prevSeq, prevLoc, rec.Seq)
	default: // a gap: reordered if the missing seq shows up soon, else lost
		found, at, err := s.find(want, reorderWindow)
		if err != nil {
			return nil, err
		}
		switch {
		case found:
			p.Kind = ProblemReordered
			p.Detail = fmt.Sprintf("seq %d appears here, before seq %d (found later at %s)", rec.Seq, want, at)
		case e.loc.File != prevLoc.File && e.firstInFile:
			p.Kind = ProblemTruncated
			p.Detail = fmt.Sprintf("%s ends at seq %d but %s starts at seq %d: records %d..%d were cut from the end of %s or removed",
				prevLoc.File, prevSeq, e.loc.File, rec.Seq, want, rec.Seq-1, prevLoc.File)
		default:
			p.Kind = ProblemDeleted
			p.Detail = fmt.Sprintf("records %d..%d are missing after %s", want, rec.Seq-1, prevLoc)
		}
	}
	return p, nil
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// orderFiles deduplicates files and orders them by the seq of their first
// record; files without a record go last, in the given order.
func orderFiles(files []string) ([]string, error) {
	if len(files) == 0 {
		return nil, errors.New("audit: no files given")
	}
	type keyed struct {
		name string
		seq  uint64
	}
	seen := map[string]bool{}
	var ks []keyed
	for _, f := range files {
		clean := filepath.Clean(f)
		if seen[clean] {
			continue
		}
		seen[clean] = true
		seq, err := firstSeq(f)
		if err != nil {
			return nil, err
		}
		ks = append(ks, keyed{f, seq})
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.name
	}
	return out, nil
}

// firstSeq returns the seq of the first line of file that parses as a
// record, or MaxUint64 if none does.
func firstSeq(file string) (uint64, error) {
	s := newStream([]string{file})
	defer s.close()
	for {
		e, ok, err := s.next()
		if err != nil {
			return 0, err
		}
		if !ok {
			return math.MaxUint64, nil
		}
		if e.tooLong {
			continue
		}
		if r, err := parseLine(e.line); err == nil {
			return r.Seq, nil
		}
	}
}

// entry is one line read from an audit file.
type entry struct {
	loc         Location
	line        []byte // without the newline
	tooLong     bool
	firstInFile bool // first line of its file that parses as a record
}

// stream reads the lines of several files in order.
type stream struct {
	files  []string
	idx    int
	f      *os.File
	r      *bufio.Reader
	lineNo int
	sawRec bool
	buf    []byte
	peeked []entry // lines read ahead by find, replayed by next
}

func newStream(files []string) *stream { return &stream{files: files, idx: -1} }

func (s *stream) close() {
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
}

// next returns the next line. ok is false at the end of the last file.
func (s *stream) next() (entry, bool, error) {
	if len(s.peeked) > 0 {
		e := s.peeked[0]
		s.peeked = s.peeked[1:]
		return e, true, nil
	}
	return s.read()
}

func (s *stream) read() (entry, bool, error) {
	for {
		if s.r == nil {
			s.close()
			s.idx++
			if s.idx >= len(s.files) {
				return entry{}, false, nil
			}
			f, err := os.Open(s.files[s.idx])
			if err != nil {
				return entry{}, false, fmt.Errorf("audit: %w", err)
			}
			s.f, s.r, s.lineNo, s.sawRec = f, bufio.NewReaderSize(f, 64<<10), 0, false
		}
		line, tooLong, err := s.readLine()
		if errors.Is(err, io.EOF) && line == nil && !tooLong {
			s.r = nil
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return entry{}, false, fmt.Errorf("audit: read %s: %w", s.files[s.idx], err)
		}
		s.lineNo++
		e := entry{loc: Location{File: s.files[s.idx], Line: s.lineNo}, line: line, tooLong: tooLong}
		if !tooLong && !s.sawRec {
			if _, perr := parseLine(line); perr == nil {
				s.sawRec = true
				e.firstInFile = true
			}
		}
		return e, true, nil
	}
}

// readLine reads one line without its newline. At EOF after an unterminated
// fragment it returns the fragment with io.EOF; at a clean EOF it returns
// nil, io.EOF.
func (s *stream) readLine() ([]byte, bool, error) {
	s.buf = s.buf[:0]
	tooLong := false
	for {
		chunk, err := s.r.ReadSlice('\n')
		if !tooLong {
			if len(s.buf)+len(chunk) > maxLineBytes {
				tooLong = true
				s.buf = s.buf[:0]
			} else {
				s.buf = append(s.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(s.buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			return bytes.Clone(s.buf), tooLong, nil
		case err != nil:
			return nil, false, err
		}
		return bytes.Clone(bytes.TrimSuffix(s.buf, []byte{'\n'})), tooLong, nil
	}
}

// find reads ahead up to n lines looking for a record with the given seq.
// The lines read are replayed by later calls to next.
func (s *stream) find(seq uint64, n int) (bool, Location, error) {
	for _, e := range s.peeked {
		if !e.tooLong {
			if r, err := parseLine(e.line); err == nil && r.Seq == seq {
				return true, e.loc, nil
			}
		}
	}
	for i := 0; i < n; i++ {
		e, ok, err := s.read()
		if err != nil {
			return false, Location{}, err
		}
		if !ok {
			return false, Location{}, nil
		}
		s.peeked = append(s.peeked, e)
		if !e.tooLong {
			if r, err := parseLine(e.line); err == nil && r.Seq == seq {
				return true, e.loc, nil
			}
		}
	}
	return false, Location{}, nil
}
