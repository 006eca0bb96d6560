package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

const upstreamToken = "upstream-token-0123456789"

// backstage is a stand-in for Backstage: a memcatalog (which assigns uids,
// etags and relations as Backstage does) that tests replace or take down.
type backstage struct {
	t    *testing.T
	cur  atomic.Pointer[memcatalog.Catalog]
	down atomic.Bool
	srv  *httptest.Server
}

func newBackstage(t *testing.T, ents []map[string]any) *backstage {
	t.Helper()
	b := &backstage{t: t}
	b.set(ents)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.down.Load() {
			http.Error(w, `{"error":{"name":"Error","message":"down"}}`, http.StatusBadGateway)
			return
		}
		b.cur.Load().Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backstage) set(ents []map[string]any) {
	b.t.Helper()
	c, err := memcatalog.New(ents, memcatalog.WithToken(upstreamToken))
	if err != nil {
		b.t.Fatal(err)
	}
	b.cur.Store(c)
}

func (b *backstage) client() *catalog.Client {
	b.t.Helper()
	c, err := catalog.New(catalog.Config{BaseURL: b.srv.URL, Token: catalog.StaticToken(upstreamToken)})
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

func component(name, owner, lifecycle string) map[string]any {
	return map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
		"metadata": map[string]any{"name": name, "description": "The " + name + " service."},
		"spec":     map[string]any{"type": "service", "lifecycle": lifecycle, "owner": owner}}
}

func group(name string) map[string]any {
	return map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
		"metadata": map[string]any{"name": name}, "spec": map[string]any{"type": "team", "children": []any{}}}
}

func fixture() []map[string]any {
	ents := []map[string]any{group("team-a"), group("team-b")}
	for i := range 12 {
		owner := "team-a"
		if i%3 == 0 {
			owner = "team-b"
		}
		ents = append(ents, component(fmt.Sprintf("svc-%02d", i), owner, "production"))
	}
	return ents
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// reader is what the tools call: the catalog client reading Backstage,
// or the mirror.
type reader interface {
	Query(ctx context.Context, q catalog.Query) (*catalog.Page, error)
	GetByName(ctx context.Context, r catalog.Ref) (json.RawMessage, error)
	GetByRefs(ctx context.Context, refs []string, fields []string) ([]json.RawMessage, error)
	Facets(ctx context.Context, facets []string, filters []catalog.Filter) (map[string][]catalog.FacetValue, error)
}

var _ reader = (*Mirror)(nil)

type fixtureEnv struct {
	bs     *backstage
	m      *Mirror
	clk    *clock
	client reader // the mirror, as the tools read it
}

func setup(t *testing.T, cfg Config) *fixtureEnv {
	t.Helper()
	bs := newBackstage(t, fixture())
	clk := &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	cfg.Upstream = bs.client()
	cfg.Now = clk.Now
	if cfg.PageSize == 0 {
		cfg.PageSize = 5 // several pages: cursors are followed
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixtureEnv{bs: bs, m: m, clk: clk, client: m}
}

// probe is one call the tools make.
type probe struct {
	name string
	call func(ctx context.Context, r reader) (any, error)
}

func queryProbe(name string, q catalog.Query) probe {
	return probe{name, func(ctx context.Context, r reader) (any, error) {
		p, err := r.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		// Follow the cursor to the end: later pages and their cursors too.
		pages := []*catalog.Page{p}
		for p.NextCursor != "" && len(pages) < 20 {
			if p, err = r.Query(ctx, catalog.Query{Cursor: p.NextCursor, Limit: q.Limit, Fields: q.Fields}); err != nil {
				return nil, err
			}
			pages = append(pages, p)
		}
		return pages, nil
	}}
}

var probes = []probe{
	queryProbe("all", catalog.Query{}),
	queryProbe("components of team-a by name desc", catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}, "spec.owner": {"team-a"}}},
		Order: []catalog.Order{{Field: "metadata.name", Descending: true}}, Limit: 4}),
	queryProbe("owned by team-b, projected", catalog.Query{Filters: []catalog.Filter{{"relations.ownedby": {"group:default/team-b"}}},
		Fields: []string{"metadata.name", "metadata.etag"}}),
	queryProbe("full text", catalog.Query{FullTextTerm: "svc-0", FullTextFields: []string{"metadata.name"}, Limit: 3}),
	{"get team-a", func(ctx context.Context, r reader) (any, error) {
		return r.GetByName(ctx, catalog.Ref{Kind: "group", Namespace: "default", Name: "team-a"})
	}},
	{"get missing", func(ctx context.Context, r reader) (any, error) {
		return r.GetByName(ctx, catalog.Ref{Kind: "component", Namespace: "default", Name: "svc-99"})
	}},
	{"by refs", func(ctx context.Context, r reader) (any, error) {
		return r.GetByRefs(ctx, []string{"component:default/svc-01", "component:default/nope", "group:default/team-b"}, nil)
	}},
	{"facets", func(ctx context.Context, r reader) (any, error) {
		return r.Facets(ctx, []string{"spec.lifecycle", "relations.ownedBy"}, []catalog.Filter{{"kind": {"component"}}})
	}},
}

// sameAnswers checks that the mirror answers every probe exactly like
// Backstage read through the catalog client: the same entities byte for
// byte, totals, cursors, facets and errors.
func (f *fixtureEnv) sameAnswers(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	up := f.bs.client()
	for _, p := range probes {
		want, werr := p.call(ctx, up)
		got, gerr := p.call(ctx, f.client)
		if fmt.Sprint(werr) != fmt.Sprint(gerr) || !reflect.DeepEqual(want, got) {
			t.Errorf("%s:\nBackstage %v %s\nmirror    %v %s", p.name, werr, show(want), gerr, show(got))
		}
	}
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// notReady checks that a call fails closed as a 503 from Backstage would,
// with the reason as its cause.
func notReady(t *testing.T, err error, reason string) {
	t.Helper()
	var ue *catalog.UpstreamError
	if !errors.Is(err, catalog.ErrUnavailable) || !errors.Is(err, ErrNotReady) || !errors.As(err, &ue) ||
		ue.Status != http.StatusServiceUnavailable || !strings.Contains(err.Error(), reason) {
		t.Errorf("got %v, want ErrUnavailable (503) because %s", err, reason)
	}
}

func TestInitialFill(t *testing.T) {
	f := setup(t, Config{})
	ctx := context.Background()
	if st := f.m.Status(); st.Ready || st.Synced {
		t.Fatalf("ready before the first sync: %+v", st)
	}
	if _, err := f.client.Query(ctx, catalog.Query{}); !errors.Is(err, catalog.ErrUnavailable) {
		t.Fatalf("query before the first sync: %v, want ErrUnavailable", err)
	}
	rep, err := f.m.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Full || rep.Entities != 14 {
		t.Errorf("report %+v, want a full sync of 14 entities", rep)
	}
	st := f.m.Status()
	if !st.Ready || st.Stale || st.Entities != 14 || !st.SyncedAt.Equal(f.clk.Now()) || st.Age != 0 ||
		!st.StaleAt.Equal(f.clk.Now().Add(DefaultMaxStaleness)) || !st.SyncingSince.IsZero() {
		t.Errorf("status after fill: %+v", st)
	}
	// Paged reads: 14 entities at 5 per page is 3 requests, all by-query.
	var queries int
	for _, r := range f.bs.cur.Load().Requests() {
		if r.Path != "/api/catalog/entities/by-query" {
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
		}
		queries++
	}
	if queries != 3 {
		t.Errorf("%d by-query requests, want 3", queries)
	}
	f.sameAnswers(t)
}

func TestDeltaSync(t *testing.T) {
	f := setup(t, Config{})
	ctx := context.Background()
	if _, err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// Add one, change one (its owner moves: the two groups' relations and
	// etags change too), delete one.
	ents := fixture()
	ents = append(ents, component("svc-new", "team-a", "experimental"))
	for _, e := range ents {
		if e["metadata"].(map[string]any)["name"] == "svc-01" {
			e["spec"].(map[string]any)["owner"] = "team-b"
		}
	}
	var kept []map[string]any
	for _, e := range ents {
		if e["metadata"].(map[string]any)["name"] != "svc-02" {
			kept = append(kept, e)
		}
	}
	f.bs.set(kept)
	f.clk.Add(30 * time.Second)

	rep, err := f.m.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// svc-01 changed, and so did team-a and team-b (relations): 3 changes.
	if rep.Full || rep.Added != 1 || rep.Removed != 1 || rep.Changed != 3 || rep.Entities != 14 {
		t.Errorf("report %+v, want a delta: 1 added, 3 changed, 1 removed, 14 entities", rep)
	}
	if st := f.m.Status(); !st.SyncedAt.Equal(f.clk.Now()) || st.Stale {
		t.Errorf("status after delta: %+v", st)
	}
	// The change feed holds what the delta found, seen at the sync's start;
	// the first sync found nothing (it had nothing to compare with).
	var got []string
	changes := func(since time.Time) (out []catalog.Change) {
		if err := f.m.ChangeLog().Range(ctx, since, func(c catalog.Change) bool { out = append(out, c); return true }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, c := range changes(time.Time{}) {
		got = append(got, c.Op+" "+c.Ref)
		if !c.At.Equal(f.clk.Now()) || (c.Op != catalog.ChangeAdded) != (c.Before != nil) || c.Key == "" {
			t.Errorf("change %+v", c)
		}
	}
	want := "changed component:default/svc-01,removed component:default/svc-02,added component:default/svc-new,changed group:default/team-a,changed group:default/team-b"
	if strings.Join(got, ",") != want {
		t.Errorf("changes = %v, want %s", got, want)
	}
	if c := changes(f.clk.Now().Add(time.Second)); len(c) != 0 {
		t.Errorf("changes after the sync: %v", c)
	}

	// The delta listed versions only, then fetched exactly the 4 entities.
	var listed, fetched int
	for _, r := range f.bs.cur.Load().Requests() {
		switch r.Path {
		case "/api/catalog/entities/by-query":
			if r.Query["fields"] == nil && r.Query["cursor"] == nil {
				t.Errorf("delta listing without fields: %s", r.RawQuery)
			}
			listed++
		case "/api/catalog/entities/by-refs":
			fetched++
			if !bytes.Contains(r.Body, []byte("component:default/svc-new")) || !bytes.Contains(r.Body, []byte("component:default/svc-01")) {
				t.Errorf("by-refs body %s", r.Body)
			}
		default:
			t.Errorf("unexpected request %s", r.Path)
		}
	}
	if listed != 3 || fetched != 1 {
		t.Errorf("%d listing pages and %d by-refs requests, want 3 and 1", listed, fetched)
	}
	f.sameAnswers(t)

	// Nothing changed: no fetch, a fresh sync time, the same copy.
	f.bs.set(kept)
	f.clk.Add(30 * time.Second)
	rep, err = f.m.Sync(ctx)
	if err != nil || rep.Added+rep.Changed+rep.Removed != 0 {
		t.Fatalf("idle delta: %+v %v", rep, err)
	}
	for _, r := range f.bs.cur.Load().Requests() {
		if r.Path != "/api/catalog/entities/by-query" {
			t.Errorf("idle delta requested %s", r.Path)
		}
	}
	if st := f.m.Status(); !st.SyncedAt.Equal(f.clk.Now()) {
		t.Errorf("idle delta did not advance the sync time: %+v", st)
	}
	f.sameAnswers(t)
}

func TestBackstageDownStaleThenFailClosed(t *testing.T) {
	var reports []Report
	f := setup(t, Config{SyncInterval: 30 * time.Second, MaxStaleness: 5 * time.Minute,
		OnSync: func(r Report) { reports = append(reports, r) }})
	ctx := context.Background()
	if _, err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	synced := f.clk.Now()
	f.bs.down.Store(true)

	f.clk.Add(time.Minute)
	if _, err := f.m.Sync(ctx); !errors.Is(err, catalog.ErrUnavailable) {
		t.Fatalf("sync with Backstage down: %v", err)
	}
	// A failed sync alone does not make the copy stale: its data is a
	// minute old, well within maxStaleness.
	st := f.m.Status()
	if !st.Ready || st.Stale || st.LastError == "" || st.Age != time.Minute || !st.SyncedAt.Equal(synced) {
		t.Errorf("status while Backstage is down: %+v", st)
	}
	if _, err := f.client.GetByName(ctx, catalog.Ref{Kind: "component", Namespace: "default", Name: "svc-01"}); err != nil {
		t.Errorf("stale mirror should still answer: %v", err)
	}

	f.clk.Add(4 * time.Minute) // exactly maxStaleness: still served
	if _, err := f.client.GetByName(ctx, catalog.Ref{Kind: "component", Namespace: "default", Name: "svc-01"}); err != nil {
		t.Errorf("at maxStaleness: %v", err)
	}
	f.clk.Add(time.Second)
	if st := f.m.Status(); st.Ready || !st.Stale {
		t.Errorf("ready or not stale beyond maxStaleness: %+v", st)
	}
	_, err := f.client.GetByName(ctx, catalog.Ref{Kind: "component", Namespace: "default", Name: "svc-01"})
	if !errors.Is(err, catalog.ErrUnavailable) {
		t.Errorf("beyond maxStaleness: %v, want ErrUnavailable", err)
	}
	if _, err := f.client.Facets(ctx, []string{"kind"}, nil); !errors.Is(err, catalog.ErrUnavailable) {
		t.Errorf("facets beyond maxStaleness: %v, want ErrUnavailable", err)
	}

	// Backstage is back: one delta sync makes the mirror ready and fresh.
	f.bs.down.Store(false)
	if _, err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.m.Status(); !st.Ready || st.Stale || st.LastError != "" {
		t.Errorf("after recovery: %+v", st)
	}
	f.sameAnswers(t)
	if len(reports) != 3 || reports[1].Err == nil || reports[2].Err != nil || reports[2].Full {
		t.Errorf("reports %+v", reports)
	}
}

// TestStaleOnlyBeyondMaxStaleness: missed syncs alone do not make the copy
// stale; its age passing maxStaleness does.
func TestStaleOnlyBeyondMaxStaleness(t *testing.T) {
	f := setup(t, Config{SyncInterval: 30 * time.Second, MaxStaleness: 2 * time.Minute})
	if _, err := f.m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(2 * time.Minute) // four intervals without a sync, age = maxStaleness
	if st := f.m.Status(); st.Stale || !st.Ready {
		t.Errorf("stale at maxStaleness: %+v", st)
	}
	f.clk.Add(time.Millisecond)
	if st := f.m.Status(); !st.Stale || st.Ready {
		t.Errorf("want stale and not served beyond maxStaleness: %+v", st)
	}
}

// slowUpstream is a Backstage that takes perPage to answer each listing
// page: it moves the mirror's clock on before answering, so a sync's
// duration is exact and no test sleeps. onPage, when set, runs first.
type slowUpstream struct {
	Upstream
	clk     *clock
	perPage time.Duration
	onPage  func()
}

func (u *slowUpstream) Query(ctx context.Context, q catalog.Query) (*catalog.Page, error) {
	if u.onPage != nil {
		u.onPage()
	}
	u.clk.Add(u.perPage)
	return u.Upstream.Query(ctx, q)
}

// TestSlowFullSyncIsFreshWhenDone: a first full sync that lasts longer
// than syncInterval (2.5 intervals here: 3 pages of 25s) leaves a copy that
// is ready and not stale the moment it completes; while it runs the mirror
// is not ready. The copy is stale only once maxStaleness has passed since
// the sync started without another completing, and a later sync that
// completes makes it fresh again.
func TestSlowFullSyncIsFreshWhenDone(t *testing.T) {
	const interval, maxStale, perPage = 30 * time.Second, 5 * time.Minute, 25 * time.Second
	f := setup(t, Config{SyncInterval: interval, MaxStaleness: maxStale})
	up := &slowUpstream{Upstream: f.m.cfg.Upstream, clk: f.clk, perPage: perPage}
	f.m.cfg.Upstream = up
	ctx := context.Background()
	t0 := f.clk.Now()
	var during []Status
	var duringErr []error
	up.onPage = func() {
		during = append(during, f.m.Status())
		_, err := probes[0].call(ctx, f.client)
		duringErr = append(duringErr, err)
	}
	rep, err := f.m.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Duration != 3*perPage || rep.Duration <= interval || !rep.Full || !rep.Started.Equal(t0) {
		t.Fatalf("report %+v: want a full sync of 3 pages of %s, longer than syncInterval %s", rep, perPage, interval)
	}
	if len(during) != 3 {
		t.Fatalf("%d pages read, want 3", len(during))
	}
	for i, st := range during {
		if st.Ready || !st.Stale || st.Synced || !st.SyncingSince.Equal(t0) {
			t.Errorf("page %d of the first sync: status %+v; want not ready", i, st)
		}
		notReady(t, duringErr[i], "first sync")
	}

	// Done: ready and fresh, aged by the sync's own duration.
	st := f.m.Status()
	if !st.Ready || st.Stale || !st.SyncedAt.Equal(t0) || st.Age != 3*perPage || st.SyncDuration != 3*perPage ||
		st.FullSyncDuration != 3*perPage || !st.StaleAt.Equal(t0.Add(maxStale)) || !st.SyncingSince.IsZero() {
		t.Errorf("status right after a full sync longer than syncInterval: %+v", st)
	}
	f.sameAnswers(t)

	// No sync completes (Backstage down): still fresh up to maxStaleness
	// after the start of the sync that completed, stale after it.
	f.bs.down.Store(true)
	up.onPage = nil
	if _, err := f.m.Sync(ctx); err == nil {
		t.Fatal("sync succeeded with Backstage down")
	}
	f.clk.Add(t0.Add(maxStale).Sub(f.clk.Now()))
	if st := f.m.Status(); !st.Ready || st.Stale || st.LastError == "" || st.Age != maxStale {
		t.Errorf("at maxStaleness after a failed sync: %+v", st)
	}
	if _, err := probes[0].call(ctx, f.client); err != nil {
		t.Errorf("at maxStaleness the mirror answered %v", err)
	}
	f.clk.Add(time.Millisecond)
	if st := f.m.Status(); st.Ready || !st.Stale {
		t.Errorf("beyond maxStaleness: %+v", st)
	}
	_, err = probes[0].call(ctx, f.client)
	notReady(t, err, "maximum staleness")

	// Backstage is back: a slow delta sync completes and the copy is
	// fresh again, aged by that sync's duration.
	f.bs.down.Store(false)
	t1 := f.clk.Now()
	rep, err = f.m.Sync(ctx)
	if err != nil || rep.Full {
		t.Fatalf("delta: %+v %v", rep, err)
	}
	if st := f.m.Status(); !st.Ready || st.Stale || !st.SyncedAt.Equal(t1) || st.Age != 3*perPage ||
		st.SyncDuration != 3*perPage || st.FullSyncDuration != 3*perPage || st.LastError != "" {
		t.Errorf("after the delta: %+v", st)
	}
	f.sameAnswers(t)
}

// TestSyncLongerThanMaxStaleness: a sync that outlasts maxStaleness brings
// data already older than the bound, so the copy is stale on arrival and a
// warning names the setting to raise; the next sync, quicker, makes it
// fresh.
func TestSyncLongerThanMaxStaleness(t *testing.T) {
	var logs bytes.Buffer
	f := setup(t, Config{SyncInterval: 30 * time.Second, MaxStaleness: 2 * time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	up := &slowUpstream{Upstream: f.m.cfg.Upstream, clk: f.clk, perPage: time.Minute}
	f.m.cfg.Upstream = up
	if _, err := f.m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := f.m.Status(); st.Ready || !st.Stale || !st.Synced || st.Age != 3*time.Minute {
		t.Errorf("after a 3-minute sync with maxStaleness 2m: %+v", st)
	}
	if !strings.Contains(logs.String(), "raise catalog.maxStaleness") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
	up.perPage = 0
	if _, err := f.m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := f.m.Status(); !st.Ready || st.Stale || st.Age != 0 {
		t.Errorf("after a quick delta: %+v", st)
	}
}

func TestMaxEntities(t *testing.T) {
	f := setup(t, Config{MaxEntities: 10})
	if _, err := f.m.Sync(context.Background()); err == nil {
		t.Fatal("a catalog larger than MaxEntities was mirrored")
	}
	if st := f.m.Status(); st.Ready {
		t.Errorf("ready after a refused sync: %+v", st)
	}
}

func TestFirstSyncFailureFailsClosed(t *testing.T) {
	f := setup(t, Config{})
	f.bs.down.Store(true)
	if _, err := f.m.Sync(context.Background()); err == nil {
		t.Fatal("sync succeeded with Backstage down")
	}
	st := f.m.Status()
	if st.Ready || st.Synced || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
	for _, p := range probes {
		_, err := p.call(context.Background(), f.client)
		notReady(t, err, "first sync")
	}
}

func TestRunStopsWithContext(t *testing.T) {
	f := setup(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	synced := make(chan struct{}, 1) // buffered: the first sync may finish before the test waits
	f.m.cfg.OnSync = func(Report) {
		select {
		case synced <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func() { f.m.Run(ctx); close(done) }()
	<-synced
	cancel()
	<-done
	if !f.m.Status().Ready {
		t.Error("not ready after Run's first sync")
	}
}

func TestNewValidates(t *testing.T) {
	up := newBackstage(t, nil).client()
	for name, cfg := range map[string]Config{
		"no upstream":          {},
		"staleness≤interval":   {Upstream: up, SyncInterval: time.Minute, MaxStaleness: time.Minute},
		"staleness<2×interval": {Upstream: up, SyncInterval: time.Minute, MaxStaleness: 90 * time.Second},
		"page too big":         {Upstream: up, PageSize: 5000},
		"negative batch":       {Upstream: up, BatchSize: -1},
		"negative interval":    {Upstream: up, SyncInterval: -time.Second},
		"negative entities":    {Upstream: up, MaxEntities: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

// TestPagesShrinkToFitTheResponseBound: pages and by-refs batches too
// large for the client's response bound are asked again smaller.
func TestPagesShrinkToFitTheResponseBound(t *testing.T) {
	f := setup(t, Config{PageSize: 14})
	small, err := catalog.New(catalog.Config{BaseURL: f.bs.srv.URL, Token: catalog.StaticToken(upstreamToken), MaxResponseBytes: 1500})
	if err != nil {
		t.Fatal(err)
	}
	f.m.cfg.Upstream = small
	ctx := context.Background()
	if rep, err := f.m.Sync(ctx); err != nil || rep.Entities != 14 {
		t.Fatalf("full sync with a small response bound: %+v %v", rep, err)
	}
	ents := fixture()
	for _, e := range ents {
		e["metadata"].(map[string]any)["description"] = "changed everywhere"
	}
	f.bs.set(ents)
	if rep, err := f.m.Sync(ctx); err != nil || rep.Changed != 14 {
		t.Fatalf("delta with a small response bound: %+v %v", rep, err)
	}
	f.sameAnswers(t)
}

// TestPeriodicFullSync: once FullSyncInterval has passed, Sync reads every
// entity again, which catches a change that kept its etag.
func TestPeriodicFullSync(t *testing.T) {
	f := setup(t, Config{SyncInterval: 30 * time.Second, FullSyncInterval: time.Hour})
	ctx := context.Background()
	if _, err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// A provider with its own etag: the entity changes, the etag does not.
	ents := fixture()
	for _, e := range ents {
		md := e["metadata"].(map[string]any)
		md["etag"] = "provider-etag"
		if md["name"] == "svc-05" {
			md["description"] = "changed behind the same etag"
		}
	}
	f.bs.set(ents)
	if _, err := f.m.FullSync(ctx); err != nil { // the copy now holds the provider etags
		t.Fatal(err)
	}
	for _, e := range ents {
		if e["metadata"].(map[string]any)["name"] == "svc-05" {
			e["metadata"].(map[string]any)["description"] = "changed again, etag kept"
		}
	}
	f.bs.set(ents)
	f.clk.Add(30 * time.Second)
	rep, err := f.m.Sync(ctx)
	if err != nil || rep.Full || rep.Changed != 0 {
		t.Fatalf("delta: %+v %v (the etag did not change, so no change is seen)", rep, err)
	}
	f.clk.Add(time.Hour)
	rep, err = f.m.Sync(ctx)
	if err != nil || !rep.Full {
		t.Fatalf("after FullSyncInterval: %+v %v, want a full sync", rep, err)
	}
	f.sameAnswers(t)
}

// TestAnswersKeepTheClientsBounds: the mirror bounds each answer as the
// client bounds Backstage's (the same setting: a page larger than
// MaxAnswerBytes is refused with the client's response-too-large error,
// after a delta sync too), and a call past its deadline times out as a
// request to Backstage would.
func TestAnswersKeepTheClientsBounds(t *testing.T) {
	const bound = 1500
	f := setup(t, Config{MaxAnswerBytes: bound})
	ctx := context.Background()
	if _, err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	bounded, err := catalog.New(catalog.Config{BaseURL: f.bs.srv.URL, Token: catalog.StaticToken(upstreamToken), MaxResponseBytes: bound})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		_, merr := f.m.Query(ctx, catalog.Query{Limit: 14})
		_, cerr := bounded.Query(ctx, catalog.Query{Limit: 14})
		if !errors.Is(merr, catalog.ErrResponseTooLarge) || cerr == nil || merr.Error() != cerr.Error() {
			t.Fatalf("%s: a page over the bound:\nmirror: %v\nclient: %v", when, merr, cerr)
		}
		if p, err := f.m.Query(ctx, catalog.Query{Limit: 1}); err != nil || len(p.Items) != 1 {
			t.Fatalf("%s: a page within the bound: %v", when, err)
		}
	}
	check("after the full sync")
	f.bs.set(append(fixture(), component("newcomer", "team-a", "production")))
	f.clk.Add(time.Minute)
	if rep, err := f.m.Sync(ctx); err != nil || rep.Added != 1 {
		t.Fatalf("delta: %+v %v", rep, err)
	}
	check("after a delta sync")

	past, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := f.m.GetByName(past, catalog.Ref{Kind: "component", Namespace: "default", Name: "newcomer"}); !errors.Is(err, catalog.ErrUnavailable) ||
		!strings.HasSuffix(err.Error(), ": timed out") {
		t.Fatalf("past its deadline: %v", err)
	}
}

// TestSpanPerCall: Config.Span is called once per call served from the
// copy, with the client's operation name, and ends with the call's error.
func TestSpanPerCall(t *testing.T) {
	type ended struct {
		op  string
		err error
	}
	var got []ended
	f := setup(t, Config{Span: func(ctx context.Context, op string) (context.Context, func(error)) {
		return ctx, func(err error) { got = append(got, ended{op, err}) }
	}})
	ctx := context.Background()
	// Not ready yet: a span with the fail-closed error.
	if _, err := f.m.Query(ctx, catalog.Query{}); err == nil {
		t.Fatal("served before the first sync")
	}
	if _, err := f.m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.GetByName(ctx, catalog.Ref{Kind: "component", Namespace: "default", Name: "nobody"}); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := f.m.GetByRefs(ctx, []string{"group:default/team-a"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Facets(ctx, []string{"kind"}, nil); err != nil {
		t.Fatal(err)
	}
	canceled, stop := context.WithCancel(ctx)
	stop()
	if _, err := f.m.Query(canceled, catalog.Query{}); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	want := []string{"query", "get", "refs", "facets", "query"}
	if len(got) != len(want) {
		t.Fatalf("%d spans, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].op != w {
			t.Errorf("span %d: op %q, want %q", i, got[i].op, w)
		}
	}
	if !errors.Is(got[0].err, catalog.ErrUnavailable) || !errors.Is(got[1].err, catalog.ErrNotFound) ||
		got[2].err != nil || got[3].err != nil || !errors.Is(got[4].err, context.Canceled) {
		t.Fatalf("spans ended with the wrong errors: %+v", got)
	}
}
