package audit

import (
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// ErrLocked is returned by Open when another process (or another Log in
// this process) is writing the same audit file.
var ErrLocked = errors.New("audit: audit file in use")

// ErrUnhealthy is wrapped by the errors of a Log that can no longer
// guarantee durability (a failed fsync): every later Append fails until the
// process reopens the log. Test with errors.Is.
var ErrUnhealthy = errors.New("audit: log unhealthy")

// ErrNoResumePoint is returned by Open when existing audit files hold JSON
// records but none whose hash checks out, so the chain cannot be continued
// safely. Run `backstage-mcp audit verify` on the files.
var ErrNoResumePoint = errors.New("audit: no intact record to resume the chain from")

// syncer is implemented by sinks that can flush to stable storage.
type syncer interface{ Sync() error }

// Stats are counters for metrics. All counts are since Open.
type Stats struct {
	// Records is the number of records written.
	Records uint64
	// Bytes is the number of bytes written.
	Bytes uint64
	// WriteErrors counts failed writes (including failed rotations).
	WriteErrors uint64
	// SyncErrors counts failed fsyncs.
	SyncErrors uint64
	// Rotations counts file rotations.
	Rotations uint64
	// Checkpoints counts signed checkpoints queued.
	Checkpoints uint64
}

// Log is an append-only, hash-chained audit log. It is safe for concurrent
// use. Create it with Open or OpenWriter.
type Log struct {
	cfg  Config
	path string // active file for SinkFile; "" for writer sinks

	// mu guards the chain state, the queue of encoded records and the
	// leader flag. Appends encode their record under mu and queue it; one
	// appender at a time (the leader) takes the whole queue, writes it with
	// one write and makes it durable with one sync while the others queue
	// behind it (group commit).
	mu       sync.Mutex
	cond     *sync.Cond // signalled when a flush ends; uses mu
	seq      uint64     // seq of the last record encoded (queued or written)
	lastHash string     // hash of the last record encoded
	wseq     uint64     // seq of the last record written to the sink
	whash    string     // hash of the last record written to the sink
	queue    []*pending // encoded records waiting for the leader
	flushing bool       // a leader is writing; it alone owns the sink fields
	closed   bool

	// Checkpoints (nil signer: none). cpSeq and cpHash name the last
	// checkpoint queued, wcpSeq and wcpHash the last one written.
	signer          ed25519.PrivateKey
	keyID           string
	cpSeq, wcpSeq   uint64
	cpHash, wcpHash string
	cpTime          time.Time
	side            *os.File // checkpoint file; written by the leader

	// The sink fields: set up before the log is shared, afterwards touched
	// only by the leader (flushing == true) or by Close once no leader
	// remains.
	lock    *os.File  // holds the exclusive lock of the file sink
	f       *os.File  // file sink; nil when it must be reopened
	out     io.Writer // where lines go; nil when the file must be reopened
	size    int64     // bytes in the active file
	partial bool      // the sink ends with an unterminated fragment
	wbuf    []byte    // the leader's write buffer, reused
	started time.Time // when the active file was started (RotateAge)
	pruneCh chan struct{}
	pruneMu sync.Mutex // one retention run at a time; guards removed
	removed *Retention // all that retention removed so far, as one run

	// syncMu serialises syncs and guards syncer against the background
	// syncer of SyncInterval. Lock order: mu, then syncMu.
	syncMu  sync.Mutex
	syncer  syncer        // nil when the sink cannot sync; guarded by syncMu
	synced  uint64        // highest seq known durable; guarded by syncMu
	written atomic.Uint64 // highest seq written to the sink

	healthMu sync.Mutex
	writeErr error // last write error, cleared by the next successful write
	sideErr  error // last checkpoint-file error, cleared by its next success
	syncErr  error // sticky

	// flushSince is when the running flush started (unix nanoseconds),
	// 0 when no leader is writing: FlushingFor tells a writer stuck in
	// write or fsync from a slow one.
	flushSince atomic.Int64
	// probe tests that the file sink's directory takes a record's worth
	// of bytes again (probeDir); a field for tests.
	probe func(dir string) error

	closedFlag atomic.Bool
	stop       chan struct{}  // closed by Close to end the background loops
	loops      sync.WaitGroup // the background loops

	nRecords, nBytes, nWriteErrs, nSyncErrs, nRotations, nCheckpoints atomic.Uint64
}

// Open opens the log described by cfg: for SinkFile it resumes the existing
// chain at cfg.Path (see the package documentation), for SinkStdout it starts
// a new chain on cfg.Stdout (default os.Stdout).
func Open(cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Sink == SinkStdout {
		w := cfg.Stdout
		if w == nil {
			w = os.Stdout
		}
		return OpenWriter(w, cfg)
	}
	return openFile(cfg)
}

// OpenWriter returns a log that writes to w, starting a new chain at seq 1.
// If w has a Sync() error method it is used according to cfg.Sync (an
// *os.File that is not a regular file, such as a pipe, is never synced).
// cfg.Sink and cfg.Path are ignored. Close does not close w.
func OpenWriter(w io.Writer, cfg Config) (*Log, error) {
	if w == nil {
		return nil, errors.New("audit: nil writer")
	}
	cfg.Sink = ""
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &Log{cfg: cfg, out: w, lastHash: GenesisHash, whash: GenesisHash}
	l.cond = sync.NewCond(&l.mu)
	l.syncer = writerSyncer(w)
	if err := l.initCheckpoints(); err != nil {
		return nil, err
	}
	l.start()
	return l, nil
}

// writerSyncer returns the syncer of w, or nil if w cannot be synced.
func writerSyncer(w io.Writer) syncer {
	if f, ok := w.(*os.File); ok {
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return nil
		}
		return dataSyncer(f)
	}
	if s, ok := w.(syncer); ok {
		return s
	}
	return nil
}

func openFile(cfg Config) (l *Log, err error) {
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create directory: %w", err)
	}
	lock, err := lockFile(cfg.Path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && lock != nil {
			_ = lock.Close()
		}
	}()
	seq, hash, err := resumePoint(cfg.Path)
	if err != nil {
		return nil, err
	}
	l = &Log{cfg: cfg, path: cfg.Path, seq: seq, lastHash: hash, wseq: seq, whash: hash, lock: lock}
	l.cond = sync.NewCond(&l.mu)
	l.written.Store(seq)
	l.synced = seq
	if err := l.reopenLocked(); err != nil {
		return nil, err
	}
	if err := l.initCheckpoints(); err != nil {
		_ = l.f.Close()
		return nil, err
	}
	l.started = l.cfg.Now()
	if cfg.RotateAge > 0 {
		l.started = fileStarted(l.path, l.started)
	}
	if cfg.RetainAge > 0 || cfg.RetainBytes > 0 {
		l.pruneCh = make(chan struct{}, 1)
		if l.removed, err = lastRetention(l.path, 3); err != nil {
			_ = l.f.Close()
			return nil, err
		}
	}
	if l.partial {
		// Terminate a torn tail now so it stays a line of its own.
		if _, err := l.out.Write([]byte{'\n'}); err != nil {
			_ = l.f.Close()
			return nil, fmt.Errorf("audit: terminate torn line in %s: %w", l.path, err)
		}
		l.size++
		l.partial = false
		if l.syncer != nil {
			if err := l.syncer.Sync(); err != nil {
				_ = l.f.Close()
				return nil, fmt.Errorf("audit: sync %s: %w", l.path, err)
			}
		}
	}
	if l.signer != nil && l.seq > l.cpSeq {
		// Sign the tail that no checkpoint covers (a crash, or a log from
		// before checkpoints) before anything new is written.
		l.mu.Lock()
		p, err := l.enqueueCheckpointLocked(true)
		if err == nil {
			l.waitLocked(p)
			err = p.err
		}
		l.mu.Unlock()
		if err != nil {
			l.closeSinks()
			return nil, fmt.Errorf("audit: resume checkpoint: %w", err)
		}
	}
	l.start()
	return l, nil
}

// initCheckpoints loads the checkpoint key, opens the checkpoint file and,
// for a file sink, finds the last checkpoint to chain the next one to.
func (l *Log) initCheckpoints() error {
	cc := l.cfg.Checkpoint
	l.cpTime = l.cfg.Now()
	if cc.KeyFile == "" {
		return nil
	}
	key, err := LoadSigningKey(cc.KeyFile)
	if err != nil {
		return err
	}
	if l.path != "" {
		last, err := lastCheckpoint(l.path, 2*cc.Every+2)
		if err != nil {
			return err
		}
		if last != nil {
			l.cpSeq, l.cpHash = last.Seq, last.Hash
			l.wcpSeq, l.wcpHash = last.Seq, last.Hash
		}
	}
	if cc.File != "" {
		if l.side, err = openSide(cc.File); err != nil {
			return err
		}
	}
	l.signer, l.keyID = key, KeyID(key.Public().(ed25519.PublicKey))
	return nil
}

// closeSinks closes the files of a log that failed to open.
func (l *Log) closeSinks() {
	if l.f != nil {
		_ = l.f.Close()
	}
	if l.side != nil {
		_ = l.side.Close()
	}
}

// start launches the background loops: the syncer of SyncInterval and the
// checkpoint timer.
func (l *Log) start() {
	l.stop = make(chan struct{})
	if l.cfg.Sync == SyncInterval {
		l.loops.Add(1)
		go l.syncLoop(l.cfg.SyncInterval)
	}
	if l.signer != nil {
		l.loops.Add(1)
		go l.checkpointLoop(l.cfg.Checkpoint.Interval)
	}
	if l.pruneCh != nil {
		l.loops.Add(1)
		go l.retentionLoop()
	}
}

func (l *Log) syncLoop(d time.Duration) {
	defer l.loops.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			_ = l.syncTo(l.written.Load())
		}
	}
}

// reopenLocked opens the active file for appending. l.mu must be held (or l
// not yet shared).
func (l *Log) reopenLocked() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("audit: stat %s: %w", l.path, err)
	}
	partial := false
	if st.Mode().IsRegular() && st.Size() > 0 {
		last, err := lastByte(l.path, st.Size())
		if err != nil {
			_ = f.Close()
			return err
		}
		partial = last != '\n'
	}
	l.syncMu.Lock()
	l.f, l.out, l.size, l.partial = f, f, st.Size(), partial
	l.syncer = nil
	if st.Mode().IsRegular() {
		l.syncer = dataSyncer(f)
	}
	l.syncMu.Unlock()
	syncDir(filepath.Dir(l.path))
	return nil
}

func lastByte(path string, size int64) (byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audit: read %s: %w", path, err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], size-1); err != nil {
		return 0, fmt.Errorf("audit: read %s: %w", path, err)
	}
	return b[0], nil
}

// syncDir makes a rename or creation in dir durable. Best effort: some file
// systems refuse to sync directories.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// Append completes r and writes it as one line: it sets r.ID, r.Seq,
// r.PrevHash and r.Hash, sets r.Time to now when zero (always in UTC),
// replaces invalid UTF-8 in its text with U+FFFD (counted in
// r.InvalidUTF8), caps oversized fields, and under SyncEvery syncs before
// returning. A nil error
// means the record is in the log (and durable under SyncEvery). On error the
// caller must treat the audited action as failed. ctx is not used to abandon
// a write: a cancelled call is still recorded.
func (l *Log) Append(ctx context.Context, r *Record) error {
	if r == nil {
		return errors.New("audit: nil record")
	}
	// A child span of the caller's, from the caller's own tracer provider
	// (a no-op one when tracing is off).
	parent := trace.SpanFromContext(ctx)
	if sc := parent.SpanContext(); sc.IsValid() && r.TraceID == "" {
		r.TraceID = sc.TraceID().String()
	}
	_, span := parent.TracerProvider().Tracer(tracerName).Start(ctx, "audit.append")
	defer span.End()
	err := l.append(r)
	if err != nil {
		span.SetStatus(codes.Error, "audit append failed")
	}
	return err
}

const tracerName = "github.com/backstage-mcp/backstage-mcp/server/audit"

// pending is one encoded record in the queue. done and err are guarded by
// Log.mu; the leader sets them when the record's write (and, under
// SyncEvery, its sync) has finished or failed.
type pending struct {
	line []byte
	seq  uint64
	hash string
	cp   bool // a checkpoint record
	done bool
	err  error
}

func (l *Log) append(r *Record) error {
	if !r.Type.Valid() || r.Type == TypeCheckpoint || r.Type == TypeRetention {
		return fmt.Errorf("audit: invalid record type %q", r.Type)
	}
	return l.appendRecord(r)
}

// appendRecord is append without the check of the record type, for the
// records the log writes itself.
func (l *Log) appendRecord(r *Record) error {
	if err := l.stickyErr(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	p, err := l.enqueueLocked(r)
	if err != nil {
		return err
	}
	if l.signer != nil && l.seq-l.cpSeq >= uint64(l.cfg.Checkpoint.Every) { //nolint:gosec // G115: Every is 1..1e6 (withDefaults, Validate)
		// Queued right behind the record, so both go in the same write.
		if _, err := l.enqueueCheckpointLocked(false); err != nil {
			return err
		}
	}
	l.waitLocked(p)
	return p.err
}

// waitLocked returns when p is written (and synced under SyncEvery) or has
// failed. If no leader is flushing, the caller becomes the leader and
// flushes everything queued, its own record included. l.mu must be held.
func (l *Log) waitLocked(p *pending) {
	for !p.done {
		if l.flushing {
			l.cond.Wait()
			continue
		}
		l.flushLocked()
	}
}

// enqueueLocked completes r, encodes it and queues its line. The chain
// state advances at once, so the next record links to this one before it
// is written; if the write fails, flushLocked rolls the state back.
func (l *Log) enqueueLocked(r *Record) (*pending, error) {
	if r.Time.IsZero() {
		r.Time = l.cfg.Now()
	}
	r.Time = r.Time.UTC().Round(0)
	r.ID = newID()
	r.Seq = l.seq + 1
	if r.Replica == "" {
		r.Replica = l.cfg.Replica
	}
	r.PrevHash = l.lastHash
	r.InvalidUTF8 += validUTF8(r)
	l.capFields(r)
	if r.Type == TypeCheckpoint {
		l.sign(r)
	}
	line, err := encodeRecord(r)
	if err != nil {
		return nil, err
	}
	p := &pending{line: line, seq: r.Seq, hash: r.Hash}
	l.queue = append(l.queue, p)
	l.seq, l.lastHash = r.Seq, r.Hash
	return p, nil
}

// flushLocked makes the caller the leader: it takes the queue, releases mu
// while it writes and syncs, then marks every record of the batch done and
// wakes the waiters. l.mu must be held and no other leader may be flushing.
func (l *Log) flushLocked() {
	batch := l.queue
	l.queue = nil
	l.flushing = true
	l.flushSince.Store(time.Now().UnixNano())
	l.mu.Unlock()
	n, err := l.writeBatch(batch)
	l.mu.Lock()
	l.flushing = false
	l.flushSince.Store(0)
	if n > 0 {
		l.wseq, l.whash = batch[n-1].seq, batch[n-1].hash
	}
	for _, p := range batch[:n] {
		if p.cp {
			l.wcpSeq, l.wcpHash = p.seq, p.hash
		}
	}
	for _, p := range batch {
		p.done, p.err = true, err
	}
	if err != nil {
		// Records queued meanwhile link to records that are not in the
		// sink: fail them too and continue the chain from the last
		// record written.
		for _, p := range l.queue {
			p.done, p.err = true, fmt.Errorf("audit: record seq %d not written: an earlier record failed: %w", p.seq, err)
		}
		l.queue = nil
		l.seq, l.lastHash = l.wseq, l.whash
		l.cpSeq, l.cpHash = l.wcpSeq, l.wcpHash
	}
	l.cond.Broadcast()
}

// writeBatch writes the lines of batch in order, rotating between them
// when the active file is full, then syncs under SyncEvery. It returns how
// many records are complete in the sink. Only the leader calls it.
func (l *Log) writeBatch(batch []*pending) (int, error) {
	if l.out == nil {
		if err := l.reopenLocked(); err != nil {
			return 0, l.writeFailed(err)
		}
	}
	rotates := l.path != "" && l.cfg.MaxBytes > 0
	aged := l.path != "" && l.cfg.RotateAge > 0 && l.size > 0 && l.cfg.Now().Sub(l.started) >= l.cfg.RotateAge
	for i := 0; i < len(batch); {
		if aged || (rotates && l.size > 0 && l.size+int64(len(batch[i].line)) > l.cfg.MaxBytes) {
			aged = false
			if err := l.rotateLocked(); err != nil {
				return i, err
			}
		}
		buf := l.wbuf[:0]
		lead := 0
		if l.partial {
			buf = append(buf, '\n')
			lead = 1
		}
		j := i
		for ; j < len(batch); j++ {
			line := batch[j].line
			if j > i && rotates && l.size+int64(len(buf)+len(line)) > l.cfg.MaxBytes {
				break
			}
			buf = append(buf, line...)
		}
		if cap(buf) <= maxWriteBuf {
			l.wbuf = buf
		}
		n, err := l.out.Write(buf)
		if n > 0 {
			l.size += int64(n)
			l.nBytes.Add(uint64(n))
		}
		if err == nil && n < len(buf) {
			err = io.ErrShortWrite
		}
		if err != nil {
			// Count the lines that made it whole; a fragment after them
			// must be terminated before the next record.
			k, rest := i, n-lead
			for k < j && rest >= len(batch[k].line) {
				rest -= len(batch[k].line)
				k++
			}
			l.partial = n < lead || rest > 0
			if k < j && rest == len(batch[k].line)-1 {
				// All but the newline: the newline that terminates the
				// fragment will make it a complete record, so the chain
				// must continue from it.
				k++
			}
			l.recordWritten(batch[i:k])
			return k, l.writeFailed(fmt.Errorf("audit: write record seq %d: %w", batch[min(k, j-1)].seq, err))
		}
		l.partial = false
		l.recordWritten(batch[i:j])
		i = j
	}
	l.healthMu.Lock()
	l.writeErr = nil
	l.healthMu.Unlock()
	if l.cfg.Sync == SyncEvery {
		if err := l.syncTo(batch[len(batch)-1].seq); err != nil {
			return len(batch), err
		}
	}
	l.writeSide(batch)
	return len(batch), nil
}

// maxWriteBuf bounds the write buffer the leader keeps between flushes.
const maxWriteBuf = 1 << 20

// recordWritten counts records that are complete in the sink.
func (l *Log) recordWritten(batch []*pending) {
	if len(batch) == 0 {
		return
	}
	l.written.Store(batch[len(batch)-1].seq)
	l.nRecords.Add(uint64(len(batch)))
}

// capFields bounds the caller-controlled, possibly large fields of r.
func (l *Log) capFields(r *Record) {
	if n := len(r.Entities.Refs); n > l.cfg.MaxEntityRefs {
		r.Entities.Refs = r.Entities.Refs[:l.cfg.MaxEntityRefs:l.cfg.MaxEntityRefs]
		r.Entities.Count = max(r.Entities.Count, n)
	}
	r.Entities.Count = max(r.Entities.Count, len(r.Entities.Refs))
	if n := len(r.Arguments); n > l.cfg.MaxArgumentBytes {
		r.Arguments = json.RawMessage(strconv.Quote(fmt.Sprintf("[TRUNCATED: %d bytes]", n)))
	}
	if len(r.Reason) > l.cfg.MaxReasonBytes {
		cut := l.cfg.MaxReasonBytes
		for cut > 0 && !utf8.RuneStart(r.Reason[cut]) {
			cut--
		}
		r.Reason = r.Reason[:cut] + "…"
	}
}

// rotateLocked syncs and renames the active file and opens a new one. Only
// the leader calls it.
func (l *Log) rotateLocked() error {
	l.syncMu.Lock()
	if l.f != nil {
		if l.syncer != nil {
			if err := l.syncer.Sync(); err != nil {
				l.syncMu.Unlock()
				return l.syncFailed(fmt.Errorf("audit: sync before rotation: %w", err))
			}
		}
		l.synced = l.written.Load()
		_ = l.f.Close() // data is synced; a close error loses nothing
		l.f, l.out, l.syncer = nil, nil, nil
	}
	l.syncMu.Unlock()
	name, err := rotatedName(l.path, l.cfg.Now())
	if err != nil {
		return l.writeFailed(err)
	}
	if err := os.Rename(l.path, name); err != nil {
		// The next append reopens and keeps using the active file.
		return l.writeFailed(fmt.Errorf("audit: rotate %s: %w", l.path, err))
	}
	l.nRotations.Add(1)
	if err := l.reopenLocked(); err != nil {
		return l.writeFailed(err)
	}
	l.started = l.cfg.Now()
	if l.pruneCh != nil {
		select {
		case l.pruneCh <- struct{}{}:
		default:
		}
	}
	return nil
}

const rotatedLayout = "20060102T150405.000000000Z"

var rotatedSuffix = regexp.MustCompile(`^\.\d{8}T\d{6}\.\d{9}Z(-\d+)?$`)

// rotatedName returns an unused name for the active file at rotation time t.
func rotatedName(path string, t time.Time) (string, error) {
	base := path + "." + t.UTC().Format(rotatedLayout)
	name := base
	for i := 1; i < 1000; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name, nil
		}
		name = base + "-" + strconv.Itoa(i)
	}
	return "", fmt.Errorf("audit: no free rotation name for %s", path)
}

// rotatedFiles lists the rotated files of path, oldest first.
func rotatedFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(name, base) && rotatedSuffix.MatchString(name[len(base):]) {
			out = append(out, filepath.Join(filepath.Dir(path), name))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Files returns the audit files of a file-sink log at path in chain order:
// rotated files oldest first, then path itself if it exists.
func Files(path string) ([]string, error) {
	files, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	}
	return files, nil
}

// resumePoint finds the seq and hash to continue the chain from.
func resumePoint(path string) (uint64, string, error) {
	rotated, err := rotatedFiles(path)
	if err != nil {
		return 0, "", err
	}
	candidates := []string{path}
	for i := len(rotated) - 1; i >= 0; i-- {
		candidates = append(candidates, rotated[i])
	}
	sawJSON := false
	for _, p := range candidates {
		rec, anyJSON, err := lastGoodRecord(p)
		if err != nil {
			return 0, "", err
		}
		if rec != nil {
			return rec.Seq, rec.Hash, nil
		}
		sawJSON = sawJSON || anyJSON
	}
	if sawJSON {
		return 0, "", fmt.Errorf("%w in %s and its rotated files; run `backstage-mcp audit verify`", ErrNoResumePoint, path)
	}
	return 0, GenesisHash, nil
}

// lastGoodRecord returns the last line of path that is a record with a
// correct hash, reading backwards from the end. anyJSON reports whether any
// line scanned parsed as a record.
func lastGoodRecord(path string) (rec *Record, anyJSON bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("audit: read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("audit: stat %s: %w", path, err)
	}
	size := st.Size()
	if !st.Mode().IsRegular() || size == 0 {
		return nil, false, nil
	}
	for window := int64(64 << 10); ; window *= 4 {
		off := max(size-window, 0)
		buf := make([]byte, size-off)
		if _, err := f.ReadAt(buf, off); err != nil {
			return nil, false, fmt.Errorf("audit: read %s: %w", path, err)
		}
		data := buf
		if off > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				continue
			}
			data = data[i+1:]
		}
		lines := bytes.Split(data, []byte{'\n'})
		for j := len(lines) - 1; j >= 0; j-- {
			if len(lines[j]) == 0 {
				continue
			}
			r, ok, perr := checkLine(lines[j])
			if perr == nil {
				anyJSON = true
				if ok {
					return r, anyJSON, nil
				}
			}
		}
		if off == 0 {
			return nil, anyJSON, nil
		}
	}
}

// syncTo makes every record up to seq durable. Concurrent callers share one
// fsync: whoever holds syncMu syncs everything written so far.
func (l *Log) syncTo(seq uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= seq {
		return nil
	}
	l.healthMu.Lock()
	serr := l.syncErr
	l.healthMu.Unlock()
	if serr != nil {
		return fmt.Errorf("%w: %w", ErrUnhealthy, serr)
	}
	target := l.written.Load()
	if l.syncer != nil {
		if err := l.syncer.Sync(); err != nil {
			return l.syncFailed(fmt.Errorf("audit: sync: %w", err))
		}
	}
	l.synced = target
	return nil
}

func (l *Log) writeFailed(err error) error {
	l.nWriteErrs.Add(1)
	l.healthMu.Lock()
	l.writeErr = err
	l.healthMu.Unlock()
	return err
}

func (l *Log) syncFailed(err error) error {
	l.nSyncErrs.Add(1)
	l.healthMu.Lock()
	if l.syncErr == nil {
		l.syncErr = err
	}
	l.healthMu.Unlock()
	return fmt.Errorf("%w: %w", ErrUnhealthy, err)
}

func (l *Log) stickyErr() error {
	l.healthMu.Lock()
	defer l.healthMu.Unlock()
	if l.syncErr != nil {
		return fmt.Errorf("%w: %w", ErrUnhealthy, l.syncErr)
	}
	return nil
}

// Healthy returns nil when the log can take records: it is open, its last
// write succeeded and no sync ever failed. A failed write is reported until
// a later write succeeds; a failed sync is reported (and blocks Append) until
// the log is reopened, because data acknowledged before it may be lost.
func (l *Log) Healthy() error {
	if l.closedFlag.Load() {
		return ErrClosed
	}
	l.healthMu.Lock()
	defer l.healthMu.Unlock()
	if l.syncErr != nil {
		return fmt.Errorf("%w: %w", ErrUnhealthy, l.syncErr)
	}
	if l.writeErr != nil {
		return fmt.Errorf("%w: %w", ErrUnhealthy, l.writeErr)
	}
	if l.sideErr != nil {
		return fmt.Errorf("%w: %w", ErrUnhealthy, l.sideErr)
	}
	return nil
}

// FlushingFor returns how long the write (and sync) in progress has been
// running, or 0 when none is. A writer stuck far beyond a slow disk's
// fsync (a hung NFS mount, a wedged device) keeps every call waiting: the
// server's liveness check reads it.
func (l *Log) FlushingFor() time.Duration {
	t := l.flushSince.Load()
	if t == 0 {
		return 0
	}
	return time.Since(time.Unix(0, t))
}

// Sticky reports whether the log failed in a way only reopening it (a
// restart) can clear: a failed fsync, after which data acknowledged before
// it may be lost.
func (l *Log) Sticky() bool {
	l.healthMu.Lock()
	defer l.healthMu.Unlock()
	return l.syncErr != nil
}

// probeBytes is how much the probe writes: room for one large record.
const probeBytes = 64 << 10

// Probe re-tests a log that Healthy reports failing because its last
// write failed (a full disk, say), without waiting for a call to write: for
// a file sink it writes probeBytes to a hidden file beside the active one,
// syncs and removes it; when that works the write error is cleared, so
// Healthy (and readiness) recover as soon as the disk has room again. The
// next record's write is still the proof: if it fails, the error is set
// again. Probe never touches the chain or the active file, takes none of
// the writers' locks, and returns Healthy's answer afterwards. A failed
// sync is not cleared (see Healthy), nor a failed write of the checkpoint
// copy (its own timer writes it again).
func (l *Log) Probe() error {
	err := l.Healthy()
	if err == nil || l.path == "" || l.closedFlag.Load() {
		return err
	}
	l.healthMu.Lock()
	retry := l.syncErr == nil && l.writeErr != nil
	l.healthMu.Unlock()
	if !retry {
		return err
	}
	probe := l.probe
	if probe == nil {
		probe = probeDir
	}
	if perr := probe(filepath.Dir(l.path)); perr != nil {
		return err
	}
	l.healthMu.Lock()
	l.writeErr = nil
	l.healthMu.Unlock()
	return l.Healthy()
}

// probeDir writes probeBytes to a hidden file in dir, syncs and removes it.
func probeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".audit-probe-*")
	if err != nil {
		return fmt.Errorf("audit: probe %s: %w", dir, err)
	}
	_, werr := f.Write(make([]byte, probeBytes))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, serr, cerr, rerr); err != nil {
		return fmt.Errorf("audit: probe %s: %w", dir, err)
	}
	return nil
}

// Head returns the seq and hash of the last record written. Copy them to a
// separate system from time to time: as an Anchor they make truncation of
// the tail detectable.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wseq, l.whash
}

// Stats returns counters since Open, for metrics.
func (l *Log) Stats() Stats {
	return Stats{
		Records:     l.nRecords.Load(),
		Bytes:       l.nBytes.Load(),
		WriteErrors: l.nWriteErrs.Load(),
		SyncErrors:  l.nSyncErrs.Load(),
		Rotations:   l.nRotations.Load(),
		Checkpoints: l.nCheckpoints.Load(),
	}
}

// Close syncs and closes the log. Later Appends return ErrClosed. A writer
// passed to OpenWriter is synced but not closed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.closedFlag.Store(true)
	if l.signer != nil && l.seq > l.cpSeq && l.stickyErr() == nil {
		// A clean stop ends signed.
		_, _ = l.enqueueCheckpointLocked(false)
	}
	// Records queued before Close are written: their callers are waiting.
	for l.flushing || len(l.queue) > 0 {
		if l.flushing {
			l.cond.Wait()
			continue
		}
		l.flushLocked()
	}
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		l.loops.Wait()
	}
	var errs []error
	if err := l.syncTo(l.written.Load()); err != nil {
		errs = append(errs, err)
	}
	l.mu.Lock()
	l.syncMu.Lock()
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close %s: %w", l.path, err))
		}
	}
	l.f, l.out, l.syncer = nil, nil, nil
	l.syncMu.Unlock()
	if l.side != nil {
		if err := l.side.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close checkpoint file: %w", err))
		}
		l.side = nil
	}
	if l.lock != nil {
		_ = l.lock.Close() // releases the lock
		l.lock = nil
	}
	l.mu.Unlock()
	return errors.Join(errs...)
}

// newID returns a random 128-bit identifier in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it aborts the program instead)
	return hex.EncodeToString(b[:])
}
