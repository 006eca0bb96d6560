package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Checkpoint is the signed part of a TypeCheckpoint record: the chain head
// (the record just before the checkpoint), the previous checkpoint, and the
// writer's promise of how often checkpoints come, signed with Ed25519.
// Without the private key nobody can write a checkpoint that verifies, so a
// chain rewritten with recomputed hashes (records edited, deleted, inserted,
// reordered or renumbered) disagrees with the checkpoints it passes, and a
// checkpoint removed breaks the link of the next one.
//
// The signature covers the bytes of [SignedMessage]: the checkpoint record's
// time and replica and the fields below except Sig, one per line. Its own
// seq is not signed: it must be Head.Seq+1, which Verify checks, so a
// renumbered checkpoint is reported as a rewrite of the records before it
// rather than as a forgery.
type Checkpoint struct {
	// Head is the record just before this checkpoint: seq and hash.
	Head Anchor `json:"head"`
	// Prev is the previous checkpoint record of the chain (its seq and its
	// record hash); seq 0 for the first checkpoint.
	Prev Anchor `json:"prev"`
	// Resume marks the checkpoint a process writes when it opens a log
	// whose tail no checkpoint covers (after a crash, or a log from before
	// checkpoints were configured); with Prev.Seq 0 it starts a new run of
	// checkpoints.
	Resume bool `json:"resume,omitempty"`
	// Every is the writer's promise: at most this many records follow a
	// checkpoint before the next one.
	Every int `json:"every"`
	// IntervalMs is checkpoint.interval in milliseconds.
	IntervalMs int64 `json:"intervalMs"`
	// KeyID names the signing key: the first 16 hex digits of the SHA-256
	// of its public key in PKIX DER form (see KeyID).
	KeyID string `json:"keyId"`
	// Sig is the Ed25519 signature of SignedMessage, standard base64.
	Sig string `json:"sig"`
}

// checkpointMagic starts every signed message; the version changes if the
// message ever does.
const checkpointMagic = "backstage-mcp audit checkpoint v1\n"

// SignedMessage returns the bytes a checkpoint record's signature covers.
func SignedMessage(r *Record) []byte {
	c := r.Checkpoint
	var b bytes.Buffer
	b.WriteString(checkpointMagic)
	fmt.Fprintf(&b, "time=%s\nreplica=%q\n", r.Time.UTC().Format(time.RFC3339Nano), r.Replica)
	fmt.Fprintf(&b, "head=%d:%s\nprev=%d:%s\nresume=%t\nevery=%d\nintervalMs=%d\nkeyId=%s\n",
		c.Head.Seq, c.Head.Hash, c.Prev.Seq, c.Prev.Hash, c.Resume, c.Every, c.IntervalMs, c.KeyID)
	return b.Bytes()
}

// maxKeyFileBytes bounds a key file read.
const maxKeyFileBytes = 64 << 10

// KeyID returns the id of an Ed25519 public key: the first 16 hex digits of
// the SHA-256 of its PKIX DER encoding (the bytes inside an `openssl pkey
// -pubout` PEM block).
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil { // only for a key of the wrong length
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: key file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("audit: key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("audit: key file %s is larger than %d bytes", path, maxKeyFileBytes)
	}
	return data, nil
}

// LoadSigningKey reads an Ed25519 private key from a PEM "PRIVATE KEY"
// block (PKCS #8), the form `openssl genpkey -algorithm ed25519` writes.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: key file %s: no PEM \"PRIVATE KEY\" block (make one with: openssl genpkey -algorithm ed25519 -out %s)", path, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: key file %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: key file %s holds a %T, want an Ed25519 key", path, k)
	}
	return priv, nil
}

// LoadVerifyKeys reads Ed25519 public keys from a PEM file: each "PUBLIC
// KEY" block (PKIX, as `openssl pkey -pubout` writes) is one key; a
// "PRIVATE KEY" block gives its public half. Several blocks (old and new
// keys after a rotation) may be concatenated.
func LoadVerifyKeys(path string) ([]ed25519.PublicKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var k any
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit: key file %s: %w", path, err)
		}
		switch k := k.(type) {
		case ed25519.PublicKey:
			keys = append(keys, k)
		case ed25519.PrivateKey:
			keys = append(keys, k.Public().(ed25519.PublicKey))
		default:
			return nil, fmt.Errorf("audit: key file %s holds a %T, want an Ed25519 key", path, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("audit: key file %s: no PEM \"PUBLIC KEY\" block (derive one with: openssl pkey -in PRIVATE.pem -pubout)", path)
	}
	return keys, nil
}

// GenerateKey makes a new Ed25519 key pair, PEM-encoded: the private key as
// PKCS #8 "PRIVATE KEY", the public key as PKIX "PUBLIC KEY" (the same forms
// as openssl's).
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: generate key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: encode key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

// sign fills r.Checkpoint.KeyID and Sig. r's seq, time and replica must be
// final.
func (l *Log) sign(r *Record) {
	r.Checkpoint.KeyID = l.keyID
	r.Checkpoint.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(l.signer, SignedMessage(r)))
}

// checkSignature verifies a checkpoint record's signature with the keys by
// id. It returns a reviewer's explanation when it fails.
func checkSignature(r *Record, keys map[string]ed25519.PublicKey) (string, bool) {
	c := r.Checkpoint
	pub, ok := keys[c.KeyID]
	if !ok {
		return fmt.Sprintf("signed by key id %q, which is none of the keys given", c.KeyID), false
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || !ed25519.Verify(pub, SignedMessage(r), sig) {
		return fmt.Sprintf("the signature does not verify with key %s: the checkpoint was forged, or altered and rehashed", c.KeyID), false
	}
	return "", true
}

// enqueueCheckpointLocked queues a checkpoint record that signs the current
// chain head. l.mu must be held and l.signer set.
func (l *Log) enqueueCheckpointLocked(resume bool) (*pending, error) {
	r := &Record{Type: TypeCheckpoint, Checkpoint: &Checkpoint{
		Head:       Anchor{Seq: l.seq, Hash: l.lastHash},
		Prev:       Anchor{Seq: l.cpSeq, Hash: l.cpHash},
		Resume:     resume,
		Every:      l.cfg.Checkpoint.Every,
		IntervalMs: l.cfg.Checkpoint.Interval.Milliseconds(),
	}}
	p, err := l.enqueueLocked(r)
	if err != nil {
		return nil, err
	}
	p.cp = true
	l.cpSeq, l.cpHash, l.cpTime = r.Seq, r.Hash, r.Time
	l.nCheckpoints.Add(1)
	return p, nil
}

// checkpointLoop writes a checkpoint when records are unsigned and the
// interval has passed since the last one.
func (l *Log) checkpointLoop(d time.Duration) {
	defer l.loops.Done()
	t := time.NewTicker(max(d/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		if !l.closed && l.seq > l.cpSeq && l.cfg.Now().Sub(l.cpTime) >= d {
			if p, err := l.enqueueCheckpointLocked(false); err == nil {
				l.waitLocked(p)
			}
		}
		l.mu.Unlock()
	}
}

// writeSide appends the checkpoint lines of batch to the checkpoint file
// and syncs it. A failure makes the log unhealthy (readiness) but does not
// fail the calls: their records are durable in the log.
func (l *Log) writeSide(batch []*pending) {
	if l.side == nil {
		return
	}
	var buf []byte
	for _, p := range batch {
		if p.cp {
			buf = append(buf, p.line...)
		}
	}
	if len(buf) == 0 {
		return
	}
	_, err := l.side.Write(buf)
	if err != nil {
		err = fmt.Errorf("audit: write checkpoint file: %w", err)
	} else if err = l.side.Sync(); err != nil {
		err = fmt.Errorf("audit: sync checkpoint file: %w", err)
	}
	if err != nil {
		l.nWriteErrs.Add(1)
	}
	l.healthMu.Lock()
	l.sideErr = err
	l.healthMu.Unlock()
}

// checkpointTag is in every checkpoint line and in no other: inside a JSON
// string the quotes would be escaped.
var checkpointTag = []byte(`"type":"checkpoint"`)

// lastCheckpoint finds the last intact checkpoint record in the audit files
// of path, newest file first. It gives up (nil) once more than maxRecords
// lines follow the point reached: a log written with checkpoints never has
// that many records after its last one.
func lastCheckpoint(path string, maxRecords int) (*Record, error) {
	files, err := Files(path)
	if err != nil {
		return nil, err
	}
	lines := 0
	for i := len(files) - 1; i >= 0 && lines <= maxRecords; i-- {
		s := newStream(files[i : i+1])
		var last *Record
		for {
			e, ok, err := s.next()
			if err != nil {
				s.close()
				return nil, err
			}
			if !ok {
				break
			}
			lines++
			if e.tooLong || !bytes.Contains(e.line, checkpointTag) {
				continue
			}
			if r, hashOK, err := checkLine(e.line); err == nil && hashOK && r.Type == TypeCheckpoint {
				last = r
			}
		}
		s.close()
		if last != nil {
			return last, nil
		}
	}
	return nil, nil
}

// openSide opens the checkpoint file for appending.
func openSide(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: checkpoint file directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint file: %w", err)
	}
	return f, nil
}

// sideEntry is a checkpoint read from a checkpoint file.
type sideEntry struct {
	rec *Record
	loc Location
}

// readSide reads checkpoint files: every line must be an intact checkpoint
// record whose signature verifies (when keys are given).
func readSide(files []string, keys map[string]ed25519.PublicKey) ([]sideEntry, *Problem, error) {
	var out []sideEntry
	s := newStream(files)
	defer s.close()
	for {
		e, ok, err := s.next()
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return out, nil, nil
		}
		if e.tooLong {
			return nil, &Problem{Location: e.loc, Kind: ProblemEdited, Detail: "checkpoint file line is not a record"}, nil
		}
		if len(bytes.TrimSpace(e.line)) == 0 {
			continue
		}
		r, hashOK, err := checkLine(e.line)
		switch {
		case err != nil:
			// A torn last line (crash while copying) is no proof of anything.
			continue
		case !hashOK:
			return nil, &Problem{Location: e.loc, Seq: r.Seq, Kind: ProblemEdited, Detail: "checkpoint copy does not match its hash"}, nil
		case r.Type != TypeCheckpoint || r.Checkpoint == nil:
			return nil, &Problem{Location: e.loc, Seq: r.Seq, Kind: ProblemEdited, Detail: "line of the checkpoint file is a " + strconv.Quote(string(r.Type)) + " record, not a checkpoint"}, nil
		}
		if len(keys) > 0 {
			if why, ok := checkSignature(r, keys); !ok {
				return nil, &Problem{Location: e.loc, Seq: r.Seq, Kind: ProblemForged, Detail: "checkpoint copy " + why}, nil
			}
		}
		out = append(out, sideEntry{rec: r, loc: e.loc})
	}
}

// checkpointVerifier checks the checkpoints of one chain as Verify reads it.
type checkpointVerifier struct {
	keys        map[string]ed25519.PublicKey
	side        map[uint64][]sideEntry // checkpoint copies by seq
	sideProblem *Problem
	replica     *string // the chain's replica, from its first record

	n        int // checkpoints seen
	last     *Record
	lastLoc  Location
	since    int    // records after the last checkpoint (or the start)
	startSeq uint64 // seq of the first record read
	signed   uint64
	copies   int
}

func newCheckpointVerifier(opts VerifyOptions) (*checkpointVerifier, error) {
	cv := &checkpointVerifier{}
	if len(opts.Keys) > 0 {
		cv.keys = make(map[string]ed25519.PublicKey, len(opts.Keys))
		for _, k := range opts.Keys {
			cv.keys[KeyID(k)] = k
		}
	}
	if len(opts.CheckpointFiles) > 0 {
		entries, p, err := readSide(opts.CheckpointFiles, cv.keys)
		if err != nil {
			return nil, err
		}
		cv.sideProblem = p
		cv.side = map[uint64][]sideEntry{}
		for _, e := range entries {
			cv.side[e.rec.Seq] = append(cv.side[e.rec.Seq], e)
		}
	}
	return cv, nil
}

// record checks one good record of the chain (its hash and link to the
// previous record already verified). hasPrev says whether a record came
// before it in the files given.
func (cv *checkpointVerifier) record(r *Record, loc Location, hasPrev bool, prevSeq uint64, prevHash string, prevLoc Location, fromGenesis bool) *Problem {
	if cv.replica == nil {
		cv.replica = &r.Replica
		cv.startSeq = r.Seq
	}
	for _, e := range cv.side[r.Seq] {
		if e.rec.Replica != *cv.replica {
			continue
		}
		if e.rec.Hash != r.Hash {
			return &Problem{Location: loc, Seq: r.Seq, Kind: ProblemRewritten,
				Detail: fmt.Sprintf("the checkpoint copy at %s holds seq %d with hash %s, the log has hash %s here: the log was rewritten from here or before", e.loc, r.Seq, short(e.rec.Hash), short(r.Hash))}
		}
		cv.copies++
	}
	if r.Type != TypeCheckpoint {
		cv.since++
		return nil
	}
	c := r.Checkpoint
	if c == nil {
		return &Problem{Location: loc, Seq: r.Seq, Kind: ProblemEdited, Detail: "checkpoint record without its signed part"}
	}
	fail := func(kind ProblemKind, format string, a ...any) *Problem {
		return &Problem{Location: loc, Seq: r.Seq, Kind: kind, Detail: fmt.Sprintf(format, a...)}
	}
	since := cv.since
	cv.n++
	cv.since = 0
	lastDesc := "the start of the files given"
	if cv.last != nil {
		lastDesc = fmt.Sprintf("the checkpoint at %s (seq %d)", cv.lastLoc, cv.last.Seq)
	}
	if cv.keys != nil {
		if why, ok := checkSignature(r, cv.keys); !ok {
			return fail(ProblemForged, "%s", why)
		}
	}
	// The head it signs must be the record just before it.
	if c.Head.Seq+1 != r.Seq || (hasPrev && (c.Head.Seq != prevSeq || c.Head.Hash != prevHash)) {
		have := fmt.Sprintf("seq %d with hash %s at %s", prevSeq, short(prevHash), prevLoc)
		if !hasPrev {
			have = "nothing (it is the first record given)"
		}
		return fail(ProblemRewritten, "it signs seq %d with hash %s as the record before it, but the log has %s: records between %s and this checkpoint were edited, deleted, inserted, reordered or renumbered and the hashes recomputed",
			c.Head.Seq, short(c.Head.Hash), have, lastDesc)
	}
	if cv.keys != nil {
		// The previous checkpoint it names must be the previous one here.
		switch {
		case c.Prev.Seq == 0 && cv.last != nil && !c.Resume:
			return fail(ProblemRewritten, "it names no previous checkpoint, but %s precedes it", lastDesc)
		case c.Prev.Seq != 0 && cv.last != nil && (c.Prev.Seq != cv.last.Seq || c.Prev.Hash != cv.last.Hash):
			return fail(ProblemRewritten, "its previous checkpoint is seq %d with hash %s, but the previous one in the log is %s with hash %s: a checkpoint was removed or replaced",
				c.Prev.Seq, short(c.Prev.Hash), lastDesc, short(cv.last.Hash))
		case c.Prev.Seq != 0 && cv.last == nil && c.Prev.Seq >= cv.startSeq:
			return fail(ProblemRewritten, "its previous checkpoint, seq %d, should be in the files given (they start at seq %d) but is not: it was removed", c.Prev.Seq, cv.startSeq)
		}
		// At most Every records between two checkpoints.
		if cv.last != nil && since > cv.last.Checkpoint.Every {
			return fail(ProblemRewritten, "%d records since %s, more than its every=%d: a checkpoint between them was removed", since, lastDesc, cv.last.Checkpoint.Every)
		}
		if cv.last == nil && c.Prev.Seq == 0 && !c.Resume && fromGenesis && since > c.Every {
			return fail(ProblemRewritten, "%d records from the start of the chain before the first checkpoint, more than every=%d: a checkpoint was removed", since, c.Every)
		}
		cv.signed = c.Head.Seq
	}
	cv.last, cv.lastLoc = r, loc
	return nil
}

// end checks what follows the last checkpoint and the checkpoint copies
// beyond the end of the log.
func (cv *checkpointVerifier) end(records int, lastSeq uint64, lastLoc Location) *Problem {
	if cv.keys != nil && records > 0 {
		if cv.last == nil {
			return &Problem{Location: lastLoc, Seq: lastSeq, Kind: ProblemRewritten,
				Detail: fmt.Sprintf("no checkpoint in %d records although keys were given: checkpoints were removed, or the log was not written with checkpoint.keyFile", records)}
		}
		if cv.since > cv.last.Checkpoint.Every {
			return &Problem{Location: lastLoc, Seq: lastSeq, Kind: ProblemRewritten,
				Detail: fmt.Sprintf("%d records after the last checkpoint at %s (seq %d), more than its every=%d: a later checkpoint was removed", cv.since, cv.lastLoc, cv.last.Seq, cv.last.Checkpoint.Every)}
		}
	}
	var beyond *sideEntry
	for _, es := range cv.side {
		for i := range es {
			e := &es[i]
			if (cv.replica == nil || e.rec.Replica == *cv.replica) && e.rec.Seq > lastSeq && (beyond == nil || e.rec.Seq > beyond.rec.Seq) {
				beyond = e
			}
		}
	}
	if beyond != nil {
		return &Problem{Location: lastLoc, Seq: lastSeq, Kind: ProblemTruncated,
			Detail: fmt.Sprintf("the log ends at seq %d but the checkpoint copy at %s proves seq %d existed (signed head seq %d): records were cut from the end", lastSeq, beyond.loc, beyond.rec.Seq, beyond.rec.Checkpoint.Head.Seq)}
	}
	return nil
}

// fill copies the checkpoint figures into res.
func (cv *checkpointVerifier) fill(res *VerifyResult) {
	res.Checkpoints = cv.n
	res.SignedSeq = cv.signed
	res.Unsigned = cv.since
	res.CheckpointCopies = cv.copies
}
