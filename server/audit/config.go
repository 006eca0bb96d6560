package audit

import (
	"fmt"
	"io"
	"os"
	"time"
)

// Sink names where records are written.
type Sink string

// Sinks.
const (
	// SinkFile appends to Config.Path with rotation (the default).
	SinkFile Sink = "file"
	// SinkStdout writes to standard output, for container log collection.
	// Each process start begins a new chain at seq 1 from GenesisHash,
	// because the previous output cannot be read back; keep the stream of
	// each process separate when verifying.
	SinkStdout Sink = "stdout"
)

// SyncPolicy says when appended records are flushed to stable storage.
type SyncPolicy string

// Sync policies.
const (
	// SyncEvery syncs the file before Append returns (fdatasync on Linux:
	// the data and the size, which is all an appended record needs; fsync
	// elsewhere): a record that Append acknowledged survives a power loss.
	// Concurrent appends share syncs (group commit). The default.
	SyncEvery SyncPolicy = "every"
	// SyncInterval fsyncs in the background every Config.SyncInterval:
	// faster, but up to one interval of acknowledged records can be lost on
	// power loss (not on a process crash: the data is in the OS already).
	SyncInterval SyncPolicy = "interval"
	// SyncNone never fsyncs except on rotation and Close; the OS decides.
	SyncNone SyncPolicy = "none"
)

// Config configures a Log. The zero value of every field means its default
// (see DefaultConfig).
type Config struct {
	// Sink is SinkFile (default) or SinkStdout.
	Sink Sink `yaml:"sink"`
	// Path is the active audit file for SinkFile. Its directory is created
	// (0700) if missing; the file is created 0600. Default "audit.log".
	Path string `yaml:"path"`
	// MaxBytes rotates the active file before a record would make it larger
	// than this many bytes. Zero means the default (100 MiB); a negative
	// value disables rotation.
	MaxBytes int64 `yaml:"maxBytes"`
	// RotateAge also rotates the active file, before the next record, once
	// it was started this long ago, so retention by age removes whole days
	// (or hours) of records. Zero: rotation by size only.
	RotateAge time.Duration `yaml:"rotateAge"`
	// RetainAge removes rotated files that were rotated longer ago than
	// this. Zero keeps them. Each removal is recorded first (a retention
	// record), so the log says what it no longer holds.
	RetainAge time.Duration `yaml:"retainAge"`
	// RetainBytes removes the oldest rotated files while all rotated files
	// together are larger than this many bytes. Zero: no limit. The active
	// file is never removed.
	RetainBytes int64 `yaml:"retainBytes"`
	// Sync is the sync policy: SyncEvery (default), SyncInterval or SyncNone.
	Sync SyncPolicy `yaml:"sync"`
	// SyncInterval is the background sync period for SyncInterval.
	// Default 1s.
	SyncInterval time.Duration `yaml:"syncInterval"`
	// MaxEntityRefs caps Record.Entities.Refs (Count keeps the full number).
	// Default 50.
	MaxEntityRefs int `yaml:"maxEntityRefs"`
	// MaxArgumentBytes caps the encoded size of Record.Arguments; larger
	// arguments are replaced by a JSON string noting their size. Default
	// 16 KiB.
	MaxArgumentBytes int `yaml:"maxArgumentBytes"`
	// MaxReasonBytes caps Record.Reason. Default 1 KiB.
	MaxReasonBytes int `yaml:"maxReasonBytes"`
	// Replica names this process in every record (Record.Replica), so the
	// files of several replicas can be verified and queried together, one
	// chain per replica. Default: the host name (the pod name on
	// Kubernetes). Each replica must also have its own Path: the file is
	// locked, and a second writer refuses to start.
	Replica string `yaml:"replica"`
	// Checkpoint signs the chain head from time to time with an Ed25519
	// key, so that a rewrite with recomputed hashes, or a checkpoint
	// removed, is detected by `audit verify --key`. Off when keyFile is
	// empty.
	Checkpoint CheckpointConfig `yaml:"checkpoint"`

	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time `yaml:"-"`
	// Stdout is the writer used by SinkStdout; nil means os.Stdout.
	Stdout io.Writer `yaml:"-"`
}

// CheckpointConfig configures signed checkpoints (see Checkpoint).
type CheckpointConfig struct {
	// KeyFile is the Ed25519 private key that signs checkpoints: a PEM
	// "PRIVATE KEY" block (PKCS #8), as written by
	// `openssl genpkey -algorithm ed25519 -out audit-key.pem` or
	// `backstage-mcp audit keygen audit-key.pem`. Keep it readable by the
	// server only; give reviewers the public key. Empty: no checkpoints.
	KeyFile string `yaml:"keyFile"`
	// Every writes a checkpoint after this many records. Default 1000.
	Every int `yaml:"every"`
	// Interval writes a checkpoint when records are unsigned and this long
	// has passed since the last checkpoint. Default 1m.
	Interval time.Duration `yaml:"interval"`
	// File, when set, also appends every checkpoint line to this file
	// (0600, synced), so a copy of the signed heads lives apart from the
	// log: keep it on another volume or ship it elsewhere. Given to
	// `audit verify --checkpoints`, it proves how far the log reached.
	File string `yaml:"file"`
}

// Defaults used when a Config field is zero.
const (
	DefaultPath             = "audit.log"
	DefaultMaxBytes         = 100 << 20
	DefaultSyncInterval     = time.Second
	DefaultMaxEntityRefs    = 50
	DefaultMaxArgumentBytes = 16 << 10
	DefaultMaxReasonBytes   = 1 << 10
	DefaultCheckpointEvery  = 1000
	DefaultCheckpointPeriod = time.Minute
)

// DefaultConfig returns the configuration used when nothing is set: a file
// sink at "audit.log", rotated at 100 MiB, synced on every record.
func DefaultConfig() Config {
	return Config{
		Sink:             SinkFile,
		Path:             DefaultPath,
		MaxBytes:         DefaultMaxBytes,
		Sync:             SyncEvery,
		SyncInterval:     DefaultSyncInterval,
		MaxEntityRefs:    DefaultMaxEntityRefs,
		MaxArgumentBytes: DefaultMaxArgumentBytes,
		MaxReasonBytes:   DefaultMaxReasonBytes,
	}
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Sink == "" {
		c.Sink = d.Sink
	}
	if c.Path == "" {
		c.Path = d.Path
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.Sync == "" {
		c.Sync = d.Sync
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = d.SyncInterval
	}
	if c.MaxEntityRefs <= 0 {
		c.MaxEntityRefs = d.MaxEntityRefs
	}
	if c.MaxArgumentBytes <= 0 {
		c.MaxArgumentBytes = d.MaxArgumentBytes
	}
	if c.MaxReasonBytes <= 0 {
		c.MaxReasonBytes = d.MaxReasonBytes
	}
	if c.Replica == "" {
		c.Replica, _ = os.Hostname()
	}
	if c.Checkpoint.Every <= 0 {
		c.Checkpoint.Every = DefaultCheckpointEvery
	}
	if c.Checkpoint.Interval <= 0 {
		c.Checkpoint.Interval = DefaultCheckpointPeriod
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports a configuration error, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch c.Sink {
	case SinkFile, SinkStdout:
	default:
		return fmt.Errorf("audit: unknown sink %q (want %q or %q)", c.Sink, SinkFile, SinkStdout)
	}
	if len(c.Replica) > 128 {
		return fmt.Errorf("audit: replica name longer than 128 bytes")
	}
	switch c.Sync {
	case SyncEvery, SyncInterval, SyncNone:
	default:
		return fmt.Errorf("audit: unknown sync policy %q (want %q, %q or %q)", c.Sync, SyncEvery, SyncInterval, SyncNone)
	}
	if c.RotateAge < 0 || c.RetainAge < 0 || c.RetainBytes < 0 {
		return fmt.Errorf("audit: rotateAge, retainAge and retainBytes cannot be negative")
	}
	if c.Sink != SinkFile && (c.RotateAge > 0 || c.RetainAge > 0 || c.RetainBytes > 0) {
		return fmt.Errorf("audit: rotateAge, retainAge and retainBytes apply to the file sink only")
	}
	if c.RetainAge > 0 && c.RotateAge > 0 && c.RetainAge < c.RotateAge {
		return fmt.Errorf("audit: retainAge %s is shorter than rotateAge %s: files would be removed as soon as they are rotated", c.RetainAge, c.RotateAge)
	}
	if c.Checkpoint.KeyFile == "" && c.Checkpoint.File != "" {
		return fmt.Errorf("audit: checkpoint.file is set but checkpoint.keyFile is not: checkpoints need a key")
	}
	if c.Checkpoint.Every > 1_000_000 {
		return fmt.Errorf("audit: checkpoint.every %d is above 1000000", c.Checkpoint.Every)
	}
	if c.Checkpoint.Interval < time.Second {
		return fmt.Errorf("audit: checkpoint.interval %s is below 1s", c.Checkpoint.Interval)
	}
	return nil
}
