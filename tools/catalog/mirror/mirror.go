// Package mirror keeps a copy of a Backstage catalog in memory and answers
// the catalog client's calls from it (a Mirror is a tools.Catalog), so
// that lookups, searches, facets and relation walks run in process, with
// no network and no HTTP, instead of asking Backstage.
//
// A Mirror fills an in-memory catalog (memcatalog, with its Verbatim option:
// Backstage's uids, etags and relations are kept, so answers and their
// order are Backstage's) by paging through /entities/by-query with the
// server's normal catalog client. It then keeps it fresh by delta sync:
// every SyncInterval it lists only kind, namespace, name, uid and etag of
// every entity, fetches the new and changed ones by ref in batches, drops
// the deleted ones and swaps in a new immutable catalog atomically.
// Readers never wait for a sync and never see a half-applied one.
//
// Freshness is what a caller can rely on. A sync that starts at T0 and
// completes at T1 holds every change Backstage had made by T0, so the
// copy's age is the time since the start of the last completed sync (full
// or delta). The copy is fresh while its age is at most MaxStaleness, and
// only then is it served; beyond that it is stale and every request fails
// closed with 503 (the catalog client's ErrUnavailable), as it does before
// the first full sync completes. A failed sync (Backstage down) keeps the
// last copy, which stays fresh until MaxStaleness has passed since the
// start of the last sync that completed. A healthy mirror's age peaks at
// SyncInterval plus the duration of one sync (the hourly full sync
// included), so MaxStaleness must exceed that; the mirror logs a warning
// when a completed sync shows it does not.
//
//	m, _ := mirror.New(mirror.Config{Upstream: restClient})
//	go m.Run(ctx)
//	page, err := m.Query(ctx, catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}}}})
package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
	"github.com/tidwall/gjson"
)

// Defaults for Config fields left zero.
const (
	DefaultSyncInterval = 30 * time.Second
	DefaultMaxStaleness = 5 * time.Minute
	DefaultPageSize     = 500
	DefaultBatchSize    = 500
	DefaultMaxEntities  = 500_000
	// DefaultFullSyncInterval is the default Config.FullSyncInterval.
	DefaultFullSyncInterval = time.Hour
)

// ErrNotReady is returned (wrapped) by syncs and reported by Status while
// the mirror has no copy young enough to serve.
var ErrNotReady = errors.New("mirror: catalog mirror not ready")

// Upstream is the part of the catalog client a mirror reads Backstage with.
type Upstream interface {
	Query(ctx context.Context, q catalog.Query) (*catalog.Page, error)
	GetByRefs(ctx context.Context, refs []string, fields []string) ([]json.RawMessage, error)
}

// Config configures a Mirror. Only Upstream is required.
type Config struct {
	// Upstream reads Backstage: the server's normal REST client, with its
	// upstream guard and timeouts.
	Upstream Upstream
	// SyncInterval is the time between two delta syncs. Default 30s.
	SyncInterval time.Duration
	// MaxStaleness is how old the copy may grow (time since the start of
	// the last completed sync) before it is stale and requests fail
	// closed. Default 5m; at least twice SyncInterval. It should exceed
	// SyncInterval plus the duration of a full sync, or the copy goes
	// stale while a sync is still running.
	MaxStaleness time.Duration
	// PageSize is the limit of each by-query page read. Default 500.
	PageSize int
	// BatchSize is how many changed entities one by-refs request fetches.
	// Default 500.
	BatchSize int
	// MaxEntities bounds the copy: a sync that finds more entities fails
	// and the previous copy stays. Default 500,000.
	MaxEntities int
	// FullSyncInterval is how often Sync reads every entity again instead
	// of a delta. Delta syncs trust metadata.etag to change whenever an
	// entity does; Backstage sets it to a hash of the stitched entity
	// (relations included) unless the entity's provider supplies its own
	// etag, in which case a change of relations alone keeps the etag. The
	// periodic full sync repairs that. Default 1h; negative: never.
	FullSyncInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives sync outcomes; nil discards them.
	Logger *slog.Logger
	// OnSync, when set, is told about every sync attempt.
	OnSync func(Report)
	// Changes keeps the changes syncs find; nil means a MemoryChangeLog
	// of MaxChanges within ChangeRetention, which a restart forgets. A
	// shared log (state: redis) outlives restarts.
	Changes catalog.ChangeLog
	// ChangeRetention is how long the default log keeps a change.
	// Default DefaultChangeRetention.
	ChangeRetention time.Duration
	// MaxAnswerBytes bounds each answer served from the copy as the
	// catalog client's MaxResponseBytes bounds Backstage's (the same
	// setting, backstage.maxResponseBytes): a larger answer is refused
	// with the client's error for it (catalog.ErrResponseTooLarge).
	// Default catalog.DefaultMaxResponseBytes; negative: no bound.
	MaxAnswerBytes int64
	// CallTimeout bounds each call served from the copy as the client's
	// Timeout bounds a request (backstage.timeout); the call's context's
	// deadline applies too. Default catalog.DefaultTimeout; negative:
	// the context's deadline only.
	CallTimeout time.Duration
	// Span, when set, is called at the start of every call served from the
	// copy with a fixed operation name (query, get, refs, facets, as the
	// client's Observer names them) and returns the context the call runs
	// in and the function that ends the span with the call's error: the
	// mirror's equivalent of the client's span per request to Backstage.
	Span SpanFunc
	// HeapGrowth bounds the heap while a full sync builds the new copy:
	// the sync collects garbage, and returns it to the system, whenever
	// the heap exceeds (1 + HeapGrowth) times the live heap the finished
	// copy will need (projected from the entities indexed so far and
	// Backstage's count), plus 4 MiB, instead of letting the runtime's
	// pacing (GOGC) double it (pacer.go). Lower costs more CPU during full
	// syncs. Default DefaultHeapGrowth (0.05); negative: the runtime's
	// pacing only.
	HeapGrowth float64
}

// SpanFunc starts a span for one call served from the copy (see
// Config.Span).
type SpanFunc func(ctx context.Context, op string) (context.Context, func(err error))

// Report describes one sync attempt.
type Report struct {
	// Full is true for a full sync (every entity read), false for a delta.
	Full bool
	// Started is when the attempt started (Config.Now): after a success,
	// the copy holds every change Backstage had made by then.
	Started time.Time
	// Duration is how long the attempt took (Config.Now).
	Duration time.Duration
	// Entities is the size of the copy after the attempt.
	Entities int
	// Added, Changed and Removed count what a delta sync applied.
	Added, Changed, Removed int
	// Collections counts the garbage collections a full sync forced to
	// keep its heap near the copy's size (Config.HeapGrowth).
	Collections int
	// Err is the failure, if any; the previous copy then stays.
	Err error
}

// Status is the state of the mirror at one instant.
type Status struct {
	// Synced is true once a full sync has completed.
	Synced bool
	// Entities is the size of the copy.
	Entities int
	// SyncedAt is when the last completed sync started: the copy holds
	// every change Backstage had made by then.
	SyncedAt time.Time
	// Age is Now minus SyncedAt (zero before the first sync): how old the
	// copy's data may be.
	Age time.Duration
	// StaleAt is SyncedAt plus MaxStaleness: the copy is stale from then on
	// unless a sync completes first (zero before the first sync).
	StaleAt time.Time
	// Stale is true before the first sync completes and when Age is more
	// than MaxStaleness. A failed sync alone does not make the copy stale.
	Stale bool
	// Ready is true when the copy is served: synced and not stale.
	Ready bool
	// SyncDuration is how long the last completed sync took; FullSync-
	// Duration the same for the last completed full sync.
	SyncDuration, FullSyncDuration time.Duration
	// SyncingSince is when the sync now running started, and SyncingFor
	// Now minus that (both zero when none runs).
	SyncingSince time.Time
	SyncingFor   time.Duration
	// LastError is the last sync failure, empty after a success.
	LastError string
	// MaxStaleness is the configured bound.
	MaxStaleness time.Duration
}

type snapshot struct {
	cat      *memcatalog.Catalog
	syncedAt time.Time     // start of the sync that produced this copy
	syncDur  time.Duration // how long that sync took
	fullAt   time.Time     // start of the full sync this copy descends from
	fullDur  time.Duration // how long that full sync took
}

// Mirror is a catalog copy kept fresh from Backstage. It is safe for
// concurrent use; syncs are serialised.
type Mirror struct {
	cfg  Config
	log  *slog.Logger
	snap atomic.Pointer[snapshot]
	// lastErr is the last sync failure ("" after a success).
	lastErr atomic.Pointer[string]
	// syncing is the start of the sync now running (nil when none).
	syncing atomic.Pointer[time.Time]
	syncMu  sync.Mutex
	opts    []memcatalog.Option
	// changes keeps the changes syncs found.
	changes catalog.ChangeLog
}

// MaxChanges bounds the changes a change log keeps; the oldest go first.
const MaxChanges = 10000

// DefaultChangeRetention is how long a change log keeps a change by
// default.
const DefaultChangeRetention = 30 * 24 * time.Hour

// changeLogTimeout bounds one write to the change log.
const changeLogTimeout = 5 * time.Second

// UseChangeLog replaces the change log (a shared one, once the state
// store is open). It must be called before the first sync.
func (m *Mirror) UseChangeLog(l catalog.ChangeLog) { m.changes = l }

// ChangeLog returns the log of the changes syncs found. The first sync
// finds none (it has nothing to compare with), and neither does the
// first sync after a restart: changes made while no server watched are
// not in it.
func (m *Mirror) ChangeLog() catalog.ChangeLog { return m.changes }

// noteChanges records what differs between two copies of the catalog. A
// log that cannot take them is reported and the sync goes on: the copy
// stays fresh, and the feed misses these changes.
func (m *Mirror) noteChanges(ctx context.Context, old, cur *memcatalog.Catalog, at time.Time) {
	if old == nil {
		return
	}
	before := make(map[string]memcatalog.Version, old.Len())
	old.Versions(func(v memcatalog.Version) { before[v.UID] = v })
	var found []catalog.Change
	cur.Versions(func(v memcatalog.Version) {
		b, ok := before[v.UID]
		delete(before, v.UID)
		switch {
		case !ok:
			found = append(found, catalog.Change{Op: catalog.ChangeAdded, Ref: v.Ref, At: at, Key: v.UID + ":>" + v.ETag})
		case b.ETag != v.ETag || b.Ref != v.Ref:
			raw, _ := old.EntityJSON(b.Ref)
			found = append(found, catalog.Change{Op: catalog.ChangeChanged, Ref: v.Ref, At: at, Before: raw, Key: v.UID + ":" + b.ETag + ">" + v.ETag})
		}
	})
	for _, b := range before {
		raw, _ := old.EntityJSON(b.Ref)
		found = append(found, catalog.Change{Op: catalog.ChangeRemoved, Ref: b.Ref, At: at, Before: raw, Key: b.UID + ":" + b.ETag + ">"})
	}
	if len(found) == 0 {
		return
	}
	// Kept in reverse ref order: logs read newest first, so one sync's
	// changes come out in ref order.
	sort.Slice(found, func(i, j int) bool { return found[i].Ref > found[j].Ref })
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeLogTimeout)
	defer cancel()
	if err := m.changes.Append(ctx, found); err != nil {
		m.log.Warn("catalog mirror: the change log did not take this sync's changes; catalog_list_changes will miss them", "changes", len(found), "err", err)
	}
}

// beginChanges tells the change log that this mirror watches from t on.
func (m *Mirror) beginChanges(ctx context.Context, t time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeLogTimeout)
	defer cancel()
	if err := m.changes.Begin(ctx, t); err != nil {
		m.log.Warn("catalog mirror: the change log did not take the feed's start", "err", err)
	}
}

// New validates cfg and returns an empty Mirror (not ready until its first
// sync).
func New(cfg Config) (*Mirror, error) {
	if cfg.Upstream == nil {
		return nil, errors.New("mirror: an upstream catalog client is required")
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.MaxStaleness == 0 {
		cfg.MaxStaleness = DefaultMaxStaleness
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MaxEntities == 0 {
		cfg.MaxEntities = DefaultMaxEntities
	}
	if cfg.FullSyncInterval == 0 {
		cfg.FullSyncInterval = DefaultFullSyncInterval
	}
	switch {
	case cfg.SyncInterval < 0:
		return nil, errors.New("mirror: SyncInterval must be positive")
	case cfg.MaxStaleness < 2*cfg.SyncInterval:
		return nil, fmt.Errorf("mirror: MaxStaleness (%s) must be at least twice SyncInterval (%s)", cfg.MaxStaleness, cfg.SyncInterval)
	case cfg.PageSize < 1 || cfg.PageSize > catalog.MaxRefsPerBatch:
		return nil, fmt.Errorf("mirror: PageSize must be between 1 and %d", catalog.MaxRefsPerBatch)
	case cfg.BatchSize < 1 || cfg.BatchSize > catalog.MaxRefsPerBatch:
		return nil, fmt.Errorf("mirror: BatchSize must be between 1 and %d", catalog.MaxRefsPerBatch)
	case cfg.MaxEntities < 1:
		return nil, errors.New("mirror: MaxEntities must be positive")
	case cfg.FullSyncInterval > 0 && cfg.FullSyncInterval < cfg.SyncInterval:
		return nil, errors.New("mirror: FullSyncInterval must be at least SyncInterval (or negative: never)")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Mirror{cfg: cfg, log: cfg.Logger, changes: cfg.Changes}
	if m.changes == nil {
		if cfg.ChangeRetention <= 0 {
			cfg.ChangeRetention = DefaultChangeRetention
		}
		m.changes = catalog.NewMemoryChangeLog(MaxChanges, cfg.ChangeRetention, cfg.Now)
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxAnswerBytes == 0 {
		cfg.MaxAnswerBytes = catalog.DefaultMaxResponseBytes
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = catalog.DefaultTimeout
	}
	if cfg.HeapGrowth == 0 {
		cfg.HeapGrowth = DefaultHeapGrowth
	}
	m.cfg = cfg
	m.opts = []memcatalog.Option{memcatalog.Verbatim(), memcatalog.WithoutRecording(),
		memcatalog.MaxAnswerBytes(cfg.MaxAnswerBytes), memcatalog.CallTimeout(cfg.CallTimeout)}
	return m, nil
}

// Status reports the mirror's state now.
func (m *Mirror) Status() Status {
	st := Status{MaxStaleness: m.cfg.MaxStaleness}
	if e := m.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	if t := m.syncing.Load(); t != nil {
		st.SyncingSince = *t
		st.SyncingFor = max(0, m.cfg.Now().Sub(*t))
	}
	s := m.snap.Load()
	if s == nil {
		st.Stale = true
		return st
	}
	st.Synced = true
	st.Entities = s.cat.Len()
	st.SyncedAt = s.syncedAt
	st.StaleAt = s.syncedAt.Add(m.cfg.MaxStaleness)
	st.SyncDuration, st.FullSyncDuration = s.syncDur, s.fullDur
	st.Age = max(0, m.cfg.Now().Sub(s.syncedAt))
	st.Stale = m.stale(s)
	st.Ready = !st.Stale
	return st
}

// stale reports whether copy s is older than MaxStaleness now.
func (m *Mirror) stale(s *snapshot) bool { return m.cfg.Now().Sub(s.syncedAt) > m.cfg.MaxStaleness }

// The mirror answers the catalog client's calls (it is a tools.Catalog):
// Query, GetByName, GetByRefs and Facets run on the current copy in
// process (memcatalog's Go calls, which answer what Backstage's API would),
// and fail closed with the client's ErrUnavailable (HTTP 503) while the
// mirror is not ready: never synced, or stale (older than MaxStaleness).

// Query is catalog.Client.Query, answered from the copy.
func (m *Mirror) Query(ctx context.Context, q catalog.Query) (p *catalog.Page, err error) {
	if m.cfg.Span != nil {
		var end func(error)
		ctx, end = m.cfg.Span(ctx, "query")
		defer func() { end(err) }()
	}
	c, err := m.serving("query entities")
	if err != nil {
		return nil, err
	}
	return c.Query(ctx, q)
}

// GetByName is catalog.Client.GetByName, answered from the copy.
func (m *Mirror) GetByName(ctx context.Context, r catalog.Ref) (e json.RawMessage, err error) {
	if m.cfg.Span != nil {
		var end func(error)
		ctx, end = m.cfg.Span(ctx, "get")
		defer func() { end(err) }()
	}
	c, err := m.serving("get entity " + r.String())
	if err != nil {
		return nil, err
	}
	return c.GetByName(ctx, r)
}

// GetByRefs is catalog.Client.GetByRefs, answered from the copy.
func (m *Mirror) GetByRefs(ctx context.Context, refs []string, fields []string) (es []json.RawMessage, err error) {
	if m.cfg.Span != nil {
		var end func(error)
		ctx, end = m.cfg.Span(ctx, "refs")
		defer func() { end(err) }()
	}
	c, err := m.serving(fmt.Sprintf("get %d entities by ref", min(len(refs), catalog.MaxRefsPerBatch)))
	if err != nil {
		return nil, err
	}
	return c.GetByRefs(ctx, refs, fields)
}

// Facets is catalog.Client.Facets, answered from the copy.
func (m *Mirror) Facets(ctx context.Context, facets []string, filters []catalog.Filter) (fs map[string][]catalog.FacetValue, err error) {
	if m.cfg.Span != nil {
		var end func(error)
		ctx, end = m.cfg.Span(ctx, "facets")
		defer func() { end(err) }()
	}
	c, err := m.serving("list facets")
	if err != nil {
		return nil, err
	}
	return c.Facets(ctx, facets, filters)
}

// serving returns the copy to answer from, or, while the mirror is not
// ready, the error the catalog client reports for a 503 from Backstage
// (ErrUnavailable), its cause saying why.
func (m *Mirror) serving(op string) (*memcatalog.Catalog, error) {
	s := m.snap.Load()
	if s != nil && !m.stale(s) {
		return s.cat, nil
	}
	cause := fmt.Errorf("%w: no sync of Backstage has completed within the maximum staleness", ErrNotReady)
	if s == nil {
		cause = fmt.Errorf("%w: the first sync has not completed", ErrNotReady)
	}
	return nil, &catalog.UpstreamError{Kind: catalog.ErrUnavailable, Status: http.StatusServiceUnavailable,
		Name: "ServiceUnavailableError", Op: op, Cause: cause}
}

// Run syncs whenever the copy is missing or at least SyncInterval old,
// until ctx ends: at once on an empty mirror, then every SyncInterval.
// Until the first sync succeeds it retries sooner (every SyncInterval, at
// most 5s); after a failed delta it retries at the next interval.
func (m *Mirror) Run(ctx context.Context) {
	for {
		wait := m.cfg.SyncInterval
		if s := m.snap.Load(); s == nil || !m.cfg.Now().Before(s.syncedAt.Add(m.cfg.SyncInterval)) {
			_, _ = m.Sync(ctx)
		}
		if s := m.snap.Load(); s == nil {
			wait = min(wait, 5*time.Second)
		} else if d := s.syncedAt.Add(m.cfg.SyncInterval).Sub(m.cfg.Now()); d > 0 && d < wait {
			wait = d
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Sync runs one sync: a full one while there is no copy or when the last
// full sync is FullSyncInterval old, a delta otherwise.
func (m *Mirror) Sync(ctx context.Context) (Report, error) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.begin()
	s := m.snap.Load()
	if s == nil || (m.cfg.FullSyncInterval > 0 && !m.cfg.Now().Before(s.fullAt.Add(m.cfg.FullSyncInterval))) {
		return m.finish(m.fullSync(ctx))
	}
	return m.finish(m.deltaSync(ctx))
}

// FullSync reads every entity again and replaces the copy.
func (m *Mirror) FullSync(ctx context.Context) (Report, error) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.begin()
	return m.finish(m.fullSync(ctx))
}

// begin marks a sync as running (Status.SyncingSince); finish clears it.
func (m *Mirror) begin() {
	t := m.cfg.Now()
	m.syncing.Store(&t)
}

func (m *Mirror) finish(rep Report) (Report, error) {
	m.syncing.Store(nil)
	if rep.Err != nil {
		msg := rep.Err.Error()
		m.lastErr.Store(&msg)
		m.log.Warn("catalog mirror sync failed; serving the previous copy", "full", rep.Full, "err", rep.Err,
			"duration", rep.Duration)
	} else {
		m.lastErr.Store(nil)
		m.log.Debug("catalog mirror synced", "full", rep.Full, "entities", rep.Entities, "added", rep.Added,
			"changed", rep.Changed, "removed", rep.Removed, "duration", rep.Duration, "collections", rep.Collections)
		// A healthy copy's age peaks at SyncInterval plus one sync's
		// duration: say so when that reaches MaxStaleness.
		if peak := m.cfg.SyncInterval + rep.Duration; peak >= m.cfg.MaxStaleness {
			m.log.Warn("catalog mirror: a sync takes so long that the copy goes stale before the next one completes; raise catalog.maxStaleness",
				"full", rep.Full, "duration", rep.Duration, "syncInterval", m.cfg.SyncInterval, "maxStaleness", m.cfg.MaxStaleness,
				"wantMaxStalenessAbove", peak)
		}
	}
	if m.cfg.OnSync != nil {
		m.cfg.OnSync(rep)
	}
	return rep, rep.Err
}

func (m *Mirror) fullSync(ctx context.Context) Report {
	start := m.cfg.Now()
	rep := Report{Full: true, Started: start}
	// Each page is decoded, checked and indexed as it arrives, then let
	// go: the sync never holds every page at once.
	b := memcatalog.NewBuilder(m.opts...)
	if prev := m.snap.Load(); prev != nil {
		// The copy being replaced stays alive until the swap: unchanged
		// entities keep its text rather than a second one.
		b.Share(prev.cat)
	}
	pacer := newHeapPacer(m.cfg.HeapGrowth)
	if pacer != nil {
		b.Pace(pacer.step)
	}
	err := m.pages(ctx, nil, func(page []json.RawMessage, total int) error {
		pacer.expect(total)
		for len(page) > 0 {
			n := min(len(page), paceEvery)
			if err := b.Add(page[:n]...); err != nil {
				return fmt.Errorf("mirror: full sync: %w", err)
			}
			clear(page[:n]) // each entity's buffer goes as soon as it is indexed
			page = page[n:]
			pacer.indexed(n)
		}
		return nil
	})
	if err == nil {
		var cat *memcatalog.Catalog
		cat, err = b.Catalog()
		if err == nil {
			d := m.cfg.Now().Sub(start)
			if prev := m.snap.Load(); prev != nil {
				m.noteChanges(ctx, prev.cat, cat, start)
			} else {
				m.beginChanges(ctx, start)
			}
			m.snap.Store(&snapshot{cat: cat, syncedAt: start, syncDur: d, fullAt: start, fullDur: d})
		} else {
			err = fmt.Errorf("mirror: full sync: %w", err)
		}
	}
	if pacer != nil {
		rep.Collections = pacer.collections
	}
	return m.report(rep, err)
}

func (m *Mirror) report(rep Report, err error) Report {
	rep.Duration = m.cfg.Now().Sub(rep.Started)
	rep.Err = err
	if s := m.snap.Load(); s != nil {
		rep.Entities = s.cat.Len()
	}
	return rep
}

// versionFields is what a delta sync lists of every entity.
var versionFields = []string{"kind", "metadata.namespace", "metadata.name", "metadata.uid", "metadata.etag"}

func (m *Mirror) deltaSync(ctx context.Context) Report {
	start := m.cfg.Now()
	rep := Report{Started: start}
	cur := m.snap.Load()

	type listed struct{ ref, etag string }
	upstream := make(map[string]listed, cur.cat.Len())
	err := m.pages(ctx, versionFields, func(page []json.RawMessage, _ int) error {
		for _, it := range page {
			r := gjson.GetManyBytes(it, versionFields...)
			uid := r[3].String()
			if uid == "" || r[0].String() == "" || r[2].String() == "" {
				return errors.New("mirror: delta sync: an entity without kind, name or uid")
			}
			ns := r[1].String()
			if ns == "" {
				ns = memcatalog.DefaultNamespace
			}
			upstream[uid] = listed{ref: catalog.Ref{Kind: r[0].String(), Namespace: ns, Name: r[2].String()}.Key(), etag: r[4].String()}
		}
		return nil
	})
	if err != nil {
		return m.report(rep, err)
	}

	var fetch []string
	var remove []string
	known := make(map[string]bool, cur.cat.Len())
	cur.cat.Versions(func(v memcatalog.Version) {
		known[v.UID] = true
		u, ok := upstream[v.UID]
		switch {
		case !ok:
			remove = append(remove, v.UID)
			rep.Removed++
		case u.etag != v.ETag:
			fetch = append(fetch, u.ref)
			rep.Changed++
		}
	})
	for uid, u := range upstream {
		if !known[uid] {
			fetch = append(fetch, u.ref)
			rep.Added++
		}
	}
	if len(fetch) == 0 && len(remove) == 0 {
		m.snap.Store(&snapshot{cat: cur.cat, syncedAt: start, syncDur: m.cfg.Now().Sub(start), fullAt: cur.fullAt, fullDur: cur.fullDur})
		return m.report(rep, nil)
	}

	var upserts []json.RawMessage
	for i := 0; i < len(fetch); i += m.cfg.BatchSize {
		batch := fetch[i:min(i+m.cfg.BatchSize, len(fetch))]
		got, err := m.fetch(ctx, batch)
		if err != nil {
			return m.report(rep, fmt.Errorf("mirror: delta sync: fetch changed entities: %w", err))
		}
		for _, e := range got {
			if e != nil { // deleted since the listing: the next sync drops it
				upserts = append(upserts, e)
			}
		}
	}
	cat, err := cur.cat.Update(upserts, remove)
	if err != nil {
		return m.report(rep, fmt.Errorf("mirror: delta sync: %w", err))
	}
	if cat.Len() > m.cfg.MaxEntities {
		return m.report(rep, fmt.Errorf("mirror: delta sync: %d entities, more than maxEntities %d", cat.Len(), m.cfg.MaxEntities))
	}
	m.noteChanges(ctx, cur.cat, cat, start)
	m.snap.Store(&snapshot{cat: cat, syncedAt: start, syncDur: m.cfg.Now().Sub(start), fullAt: cur.fullAt, fullDur: cur.fullDur})
	return m.report(rep, nil)
}

// fetch reads entities by ref, splitting a batch whose answer is too
// large for the client's response bound.
func (m *Mirror) fetch(ctx context.Context, refs []string) ([]json.RawMessage, error) {
	got, err := m.cfg.Upstream.GetByRefs(ctx, refs, nil)
	if errors.Is(err, catalog.ErrResponseTooLarge) && len(refs) > 1 {
		h := len(refs) / 2
		a, err := m.fetch(ctx, refs[:h])
		if err != nil {
			return nil, err
		}
		b, err := m.fetch(ctx, refs[h:])
		if err != nil {
			return nil, err
		}
		return append(a, b...), nil
	}
	return got, err
}

// pages reads every entity with by-query and cursors, fields projected
// when given, and hands each page to fn. A page too large for the client's
// response bound is asked again at half the size (down to one entity).
// fn is also told Backstage's count of the entities (its totalItems,
// given with the first page: 0 after it).
func (m *Mirror) pages(ctx context.Context, fields []string, fn func(page []json.RawMessage, total int) error) error {
	limit := m.cfg.PageSize
	q := catalog.Query{Limit: limit, Fields: fields}
	n := 0
	for {
		p, err := m.cfg.Upstream.Query(ctx, q)
		if errors.Is(err, catalog.ErrResponseTooLarge) && q.Limit > 1 {
			q.Limit /= 2
			limit = q.Limit
			m.log.Warn("catalog mirror: page too large for backstage.maxResponseBytes; asking for smaller pages", "pageSize", limit)
			continue
		}
		if err != nil {
			return fmt.Errorf("mirror: list entities: %w", err)
		}
		n += len(p.Items)
		if n > m.cfg.MaxEntities {
			return fmt.Errorf("mirror: Backstage holds more than maxEntities (%d) entities", m.cfg.MaxEntities)
		}
		if err := fn(p.Items, p.TotalItems); err != nil {
			return err
		}
		if p.NextCursor == "" || len(p.Items) == 0 {
			return nil
		}
		q = catalog.Query{Limit: limit, Fields: fields, Cursor: p.NextCursor}
	}
}
