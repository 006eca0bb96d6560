package ship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// Event is one record as a sink sends it.
type Event struct {
	// Record is the parsed record (for time, severity and the like).
	Record *audit.Record
	// Body is the record in the sink's format: one JSON object.
	Body []byte
}

// Sink delivers batches to one receiver.
type Sink interface {
	// Send returns nil only once the receiver has acknowledged the whole
	// batch; on error the same batch is sent again later.
	Send(ctx context.Context, batch []Event) error
	// Close releases connections.
	Close() error
}

// Stats describe one sink's shipping, for metrics.
type Stats struct {
	// Name is the sink's name.
	Name string
	// Sent counts records acknowledged by the sink since start (a record
	// sent twice counts twice).
	Sent uint64
	// Batches counts acknowledged batches.
	Batches uint64
	// Failures counts failed attempts to send a batch.
	Failures uint64
	// AckedSeq is the seq of the last acknowledged record.
	AckedSeq uint64
	// AckedTime is the time of that record.
	AckedTime time.Time
	// Lag is how many records the writer has appended after AckedSeq
	// (known only for the trail this process writes).
	Lag uint64
	// Gaps counts runs of records that were no longer on disk when the
	// shipper came to them (deleted before they were shipped).
	Gaps uint64
	// Torn counts lines that were not records (crash traces), skipped.
	Torn uint64
	// LastSuccess is when the sink last acknowledged a batch.
	LastSuccess time.Time
	// Failing is true while the last attempt failed.
	Failing bool
}

// Shipper ships one audit trail to one sink.
type Shipper struct {
	name      string
	path      string
	statePath string
	format    Format
	cfg       Config
	sink      Sink
	log       *slog.Logger
	head      func() uint64

	mu    sync.Mutex
	stats Stats
}

// NewShipper returns a shipper of the trail at path (the active audit file)
// to sink, in format, keeping its position in StatePath(path, name). head,
// when not nil, returns the writer's last seq (for the lag).
func NewShipper(name, path string, format Format, cfg Config, sink Sink, log *slog.Logger, head func() uint64) *Shipper {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Shipper{
		name: name, path: path, statePath: StatePath(path, name), format: format,
		cfg: cfg.WithDefaults(), sink: sink, log: log.With("sink", name), head: head,
		stats: Stats{Name: name},
	}
}

// Stats returns the shipper's counters.
func (s *Shipper) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	if s.head != nil {
		if h := s.head(); h > st.AckedSeq {
			st.Lag = h - st.AckedSeq
		}
	}
	return st
}

// Run ships until ctx ends, or, once drain is closed, until every record on
// disk has been acknowledged. It returns nil when drained, ctx's error when
// cancelled, or an error that stops shipping (an unreadable state file).
func (s *Shipper) Run(ctx context.Context, drain <-chan struct{}) error {
	st, err := loadState(s.statePath)
	if errors.Is(err, errDamagedState) {
		s.log.Warn("audit export", "err", err)
	} else if err != nil {
		return err
	}
	s.mu.Lock()
	s.stats.AckedSeq = st.Seq
	s.mu.Unlock()
	t := newTailer(s.path, st.Seq, st.Hash)
	defer t.close()
	var pending *entry
	lastErrLog, lastSync := time.Time{}, time.Time{}
	var unsynced *state
	defer func() {
		if unsynced != nil {
			if err := saveState(s.statePath, *unsynced, true); err != nil {
				s.log.Warn("audit export: position not saved", "err", err)
			}
		}
	}()
	for {
		batch, err := s.collect(t, &pending)
		s.noteTail(t)
		if err != nil {
			s.log.Warn("audit export: reading the trail failed; retrying", "err", err)
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-drain:
				if err == nil {
					return nil
				}
			default:
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-drain:
			case <-time.After(s.cfg.PollInterval):
			}
			continue
		}
		backoff := 100 * time.Millisecond
		for attempt := 1; ; attempt++ {
			sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
			err = s.sink.Send(sctx, batch)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.mu.Lock()
			s.stats.Failures++
			wasFailing := s.stats.Failing
			s.stats.Failing = true
			s.mu.Unlock()
			if !wasFailing || time.Since(lastErrLog) > time.Minute {
				s.log.Warn("audit export: send failed; the batch will be sent again", "err", err,
					"records", len(batch), "firstSeq", batch[0].Record.Seq, "attempt", attempt)
				lastErrLog = time.Now()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, s.cfg.MaxBackoff)
		}
		last := batch[len(batch)-1].Record
		syncState := time.Since(lastSync) >= stateSyncEvery
		if syncState {
			lastSync = time.Now()
		}
		pos := state{Seq: last.Seq, Hash: last.Hash, Time: time.Now().UTC()}
		unsynced = nil
		if err := saveState(s.statePath, pos, syncState); err != nil {
			// The sink has the records; without the state they are sent
			// again after a restart, which at-least-once allows.
			s.log.Warn("audit export: position not saved", "err", err)
		} else if !syncState {
			unsynced = &pos
		}
		s.mu.Lock()
		if s.stats.Failing {
			s.log.Info("audit export: sink recovered", "failures", s.stats.Failures)
		}
		s.stats.Failing = false
		s.stats.Sent += uint64(len(batch))
		s.stats.Batches++
		s.stats.AckedSeq = last.Seq
		s.stats.AckedTime = last.Time
		s.stats.LastSuccess = time.Now()
		s.mu.Unlock()
	}
}

// noteTail copies the tailer's counters into the stats, logging news.
func (s *Shipper) noteTail(t *tailer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.gaps > s.stats.Gaps {
		s.log.Error("audit export: records were gone from disk before they were shipped",
			"fromSeq", t.gapFrom, "toSeq", t.gapTo)
	}
	if t.resets > 0 {
		s.log.Warn("audit export: the audit trail was replaced by a new one; shipping it from its start")
		t.resets = 0
	}
	s.stats.Gaps, s.stats.Torn = t.gaps, t.torn
}

// collect reads the next batch: at most BatchSize records and MaxBatchBytes
// of bodies (a single larger record goes alone).
func (s *Shipper) collect(t *tailer, pending **entry) ([]Event, error) {
	var batch []Event
	size := 0
	for len(batch) < s.cfg.BatchSize {
		e := *pending
		*pending = nil
		if e == nil {
			var err error
			e, err = t.next()
			if err != nil {
				return batch, err
			}
			if e == nil {
				break
			}
		}
		body, err := Encode(s.format, e.line, &e.rec)
		if err != nil {
			body, _ = Encode(FormatNative, e.line, &e.rec)
		}
		if len(batch) > 0 && size+len(body) > s.cfg.MaxBatchBytes {
			*pending = e
			break
		}
		size += len(body)
		rec := e.rec
		batch = append(batch, Event{Record: &rec, Body: body})
	}
	return batch, nil
}

// Options configure an Exporter.
type Options struct {
	// Path is the active audit file (audit.path).
	Path string
	// Format is audit.format, the default of every sink.
	Format Format
	// Config lists the sinks.
	Config Config
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Head returns the writer's last seq, for the lag; may be nil.
	Head func() uint64
	// Stdout is where the stdout sink writes; nil means os.Stdout.
	Stdout io.Writer
	// Host names this process in syslog messages and OTLP resources
	// (audit.replica).
	Host string
	// Version is the server's version, for OTLP resources.
	Version string
}

// Exporter runs one Shipper per configured sink.
type Exporter struct {
	shippers []*Shipper
	sinks    []Sink
	cancel   context.CancelFunc
	drain    chan struct{}
	closing  sync.Once
	wg       sync.WaitGroup
	log      *slog.Logger
}

// Start builds the sinks of opts.Config and starts shipping. It fails when
// a sink cannot be built (a missing CA or token file): a configured export
// that cannot run is a configuration error, reported at start.
func Start(ctx context.Context, opts Options) (*Exporter, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if err := ValidFormat(opts.Format); err != nil {
		return nil, err
	}
	cfg := opts.Config.WithDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &Exporter{drain: make(chan struct{}), log: log}
	for _, sc := range cfg.Sinks {
		sink, err := NewSink(ctx, sc, cfg, opts)
		if err != nil {
			for _, s := range e.sinks {
				_ = s.Close()
			}
			return nil, fmt.Errorf("ship: sink %s: %w", sc.Name, err)
		}
		f := sc.Format
		if f == "" {
			f = opts.Format
		}
		if f == "" {
			f = FormatNative
		}
		e.sinks = append(e.sinks, sink)
		e.shippers = append(e.shippers, NewShipper(sc.Name, opts.Path, f, cfg, sink, log, opts.Head))
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	for _, s := range e.shippers {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := s.Run(rctx, e.drain); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("audit export stopped", "err", err)
			}
		}()
	}
	return e, nil
}

// Stats returns the counters of every sink, in configuration order.
func (e *Exporter) Stats() []Stats {
	out := make([]Stats, len(e.shippers))
	for i, s := range e.shippers {
		out[i] = s.Stats()
	}
	return out
}

// Close ships what is on disk (the server_stop record included) until ctx
// ends, then stops every shipper and closes the sinks. Records left unsent
// are sent by the next start.
func (e *Exporter) Close(ctx context.Context) error {
	first := false
	e.closing.Do(func() { first = true; close(e.drain) })
	if !first {
		return nil
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("ship: records left to ship at shutdown (sent at next start): %w", ctx.Err())
	}
	e.cancel()
	<-done
	for _, s := range e.sinks {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}
