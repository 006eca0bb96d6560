package main

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// TestOursVariantsConfig checks that every backstage-mcp column gets a
// configuration the server accepts, that the first one is the shipped
// default audit sync (every), and that the interval column differs from it
// in the audit sync only.
func TestOursVariantsConfig(t *testing.T) {
	env := func(k string) string {
		if k == "BENCH_BACKSTAGE_TOKEN" {
			return "token"
		}
		return ""
	}
	base := oursSettings{backstageURL: "http://127.0.0.1:7007", policy: "/p.yaml", auditPath: "/a/audit.log", bucket: "{ unlimited: true }"}
	if oursVariants[0].name != "ours" || oursVariants[0].set != nil {
		t.Fatalf("the first variant must be the shipped defaults named ours, got %+v", oursVariants[0])
	}
	if audit.DefaultConfig().Sync != audit.SyncEvery {
		t.Fatalf("the shipped audit sync is %q; update the variants' labels", audit.DefaultConfig().Sync)
	}
	want := map[string]audit.SyncPolicy{"ours": "", "ours-interval": audit.SyncInterval}
	names := map[string]bool{}
	for _, v := range oursVariants {
		if names[v.name] || v.name == pathRest || v.name == pathFloor || v.name == pathPeer {
			t.Fatalf("variant name %q is taken", v.name)
		}
		names[v.name] = true
		data := oursConfig(v.settings(base))
		cfg, err := server.ParseConfig([]byte(data), "bench.yaml", env)
		if err != nil {
			t.Fatalf("%s: %v\n%s", v.name, err, data)
		}
		if w, ok := want[v.name]; ok && cfg.Audit.Sync != w {
			t.Errorf("%s: audit.sync = %q, want %q (empty: the shipped default)", v.name, cfg.Audit.Sync, w)
		}
		if cfg.Audit.Path != "/a/audit.log" || cfg.Audit.MaxBytes != -1 {
			t.Errorf("%s: audit = %+v", v.name, cfg.Audit)
		}
		if !cfg.RateLimits.Global.Unlimited {
			t.Errorf("%s: the global bucket limits the bench", v.name)
		}
	}
	if got := oursConfig(oursVariants[0].settings(base)); strings.Contains(got, "sync:") {
		t.Errorf("the shipped-defaults config sets audit sync:\n%s", got)
	}
	// Applying a variant leaves the base settings alone.
	_ = oursVariants[1].settings(base)
	if base.auditSync != "" {
		t.Error("settings changed its argument")
	}
}

func TestOursConfigCatalogMode(t *testing.T) {
	got := oursConfig(oursSettings{backstageURL: "http://b", policy: "/p", auditPath: "/a", bucket: "{ unlimited: true }", catalogMode: "mirror"})
	if !strings.Contains(got, "backstage:\n  baseUrl: http://b\n  token: ${BENCH_BACKSTAGE_TOKEN}\n  timeout: 2m0s\ncatalog:\n  mode: mirror\n") {
		t.Errorf("catalog mode not in the catalog section:\n%s", got)
	}
	cfg, err := server.ParseConfig([]byte(got), "bench.yaml", func(k string) string {
		if k == "BENCH_BACKSTAGE_TOKEN" {
			return "token"
		}
		return ""
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if cfg.Catalog.Mode != "mirror" {
		t.Errorf("catalog.mode = %q, want mirror", cfg.Catalog.Mode)
	}
	// The load generator's patience, for every request to Backstage.
	if cfg.Backstage.Timeout != callTimeout || cfg.RateLimits.Upstream.Timeout != callTimeout {
		t.Errorf("timeouts %s / %s, want %s for both", cfg.Backstage.Timeout, cfg.RateLimits.Upstream.Timeout, callTimeout)
	}
}

func TestPathLabels(t *testing.T) {
	for name, want := range map[string]string{pathRest: "REST", pathFloor: "REST+hop floor", pathMCPFloor: "MCP floor", pathMCPEmpty: "MCP empty answer", "ours": "ours every", "ours-interval": "ours interval", pathPeer: "peer"} {
		if got := pathLabel(name); got != want {
			t.Errorf("pathLabel(%q) = %q, want %q", name, got, want)
		}
	}
	cp := comparedPaths()
	if cp[0] != pathRest || cp[1] != pathFloor || cp[2] != pathMCPFloor || cp[3] != pathMCPEmpty || cp[len(cp)-1] != pathPeer || len(cp) != 5+len(oursVariants) {
		t.Errorf("compared paths %v", cp)
	}
	if isOurs(pathRest) || !isOurs("ours-interval") {
		t.Error("isOurs")
	}
}

// TestFloorProxy checks that the floor forwards requests and answers as
// they are: path, query, Authorization and Accept-Encoding reach Backstage,
// the body comes back unchanged, and the proxy neither asks for gzip on its
// own account nor decodes it.
func TestFloorProxy(t *testing.T) {
	var lastEnc, lastAuth, lastURI atomic.Value
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastEnc.Store(r.Header.Get("Accept-Encoding"))
		lastAuth.Store(r.Header.Get("Authorization"))
		lastURI.Store(r.URL.RequestURI())
		body := `{"items":[{"kind":"Component"}]}`
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			_, _ = io.WriteString(gz, body)
			_ = gz.Close()
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	proxy := httptest.NewServer(newFloorProxy(u))
	defer proxy.Close()

	for _, gz := range []bool{false, true} {
		rc := &restCaller{base: proxy.URL, token: "tok", hc: &http.Client{Transport: newRESTTransport(gz)}}
		a, err := rc.call(context.Background(), question{Kind: qSearch, Team: "team-a", Of: "Component"}, true)
		if err != nil {
			t.Fatal(err)
		}
		if a.ToolError || a.Text != `{"items":[{"kind":"Component"}]}` {
			t.Errorf("gzip %v: answer %+v", gz, a)
		}
		enc := lastEnc.Load().(string)
		if gz != strings.Contains(enc, "gzip") {
			t.Errorf("gzip %v: Backstage saw Accept-Encoding %q", gz, enc)
		}
		if lastAuth.Load() != "Bearer tok" {
			t.Errorf("Authorization %q did not pass", lastAuth.Load())
		}
		if uri := lastURI.Load().(string); !strings.HasPrefix(uri, "/api/catalog/entities/by-query?") || !strings.Contains(uri, "relations.ownedBy%3Dgroup%3Adefault%2Fteam-a") {
			t.Errorf("request URI %q", uri)
		}
	}
}

// fakeCaller answers after delay; every fail-th call (if fail > 0) fails.
type fakeCaller struct {
	delay             time.Duration
	fail              int
	started, finished *atomic.Int64
}

func (f *fakeCaller) call(ctx context.Context, _ question, _ bool) (answer, error) {
	n := f.started.Add(1)
	defer f.finished.Add(1)
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
	if f.fail > 0 && n%int64(f.fail) == 0 {
		return answer{}, errors.New("fake failure")
	}
	return answer{Text: "ok"}, nil
}

func (f *fakeCaller) close() {}

// TestRunPhaseCountsSlowCalls checks that a phase whose calls are slower
// than its window still counts at least MinCalls calls and leaves no call
// running, uncounted, behind.
func TestRunPhaseCountsSlowCalls(t *testing.T) {
	var started, finished atomic.Int64
	const conc = 4
	callers := make([]caller, conc)
	for i := range callers {
		callers[i] = &fakeCaller{delay: 20 * time.Millisecond, fail: 5, started: &started, finished: &finished}
	}
	lim := phaseLimits{Warm: 0, Dur: time.Millisecond, MinCalls: 16, Max: time.Minute}
	r := mergeRuns(conc, []phaseRun{runPhase(context.Background(), callers, conc, func(int64) question { return question{Kind: qGet} }, lim)})
	if started.Load() != finished.Load() {
		t.Fatalf("%d calls started, %d finished: runPhase returned with calls running", started.Load(), finished.Load())
	}
	if r.Capped {
		t.Error("phase capped")
	}
	if r.Calls+r.Failures < lim.MinCalls {
		t.Errorf("%d calls and %d failures counted, want at least %d", r.Calls, r.Failures, lim.MinCalls)
	}
	if r.Failures == 0 || r.FirstError != "fake failure" {
		t.Errorf("failures %d, first error %q", r.Failures, r.FirstError)
	}
	// Warm-up lasts until every worker has finished one call: those conc
	// calls are never counted.
	if got := int64(r.Calls + r.Failures); got > started.Load()-conc {
		t.Errorf("%d calls counted of %d made: warm-up calls were counted", got, started.Load())
	}
	if r.Asked != started.Load() || r.P50Ms <= 0 || r.P90Ms < r.P50Ms || r.CallsPerSec <= 0 {
		t.Errorf("result %+v (asked %d)", r, started.Load())
	}
}

// TestRunPhaseCap checks that a phase that cannot count MinCalls calls
// stops at its cap and says so.
func TestRunPhaseCap(t *testing.T) {
	var started, finished atomic.Int64
	callers := []caller{&fakeCaller{delay: 5 * time.Millisecond, started: &started, finished: &finished}}
	lim := phaseLimits{Warm: 0, Dur: time.Millisecond, MinCalls: 1 << 30, Max: 50 * time.Millisecond}
	r := mergeRuns(1, []phaseRun{runPhase(context.Background(), callers, 1, func(int64) question { return question{} }, lim)})
	if !r.Capped {
		t.Errorf("phase not capped: %+v", r)
	}
	if started.Load() != finished.Load() || r.Calls == 0 {
		t.Errorf("started %d, finished %d, counted %d", started.Load(), finished.Load(), r.Calls)
	}
}

// TestSummarise checks the window arithmetic on fixed records: calls that
// end before the window opens are warm-up; every later call is timed;
// throughput counts the successful calls that ended inside the window.
func TestSummarise(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rec := func(from, to int, ok bool) callRecord { return callRecord{t0: at(from), t1: at(to), ok: ok} }
	records := [][]callRecord{
		{rec(0, 100, true), rec(100, 600, true), rec(600, 1100, true), rec(1100, 3000, true)},
		{rec(0, 900, true), rec(900, 1000, false), rec(1000, 2500, true)},
	}
	// Window [500, 2000]: warm-up is the two calls ending at 100 (and none
	// other); the calls ending at 2500 and 3000 ran when it closed.
	r := mergeRuns(2, []phaseRun{summarise(records, at(500), at(2000))})
	if r.Calls != 5 || r.Failures != 1 {
		t.Fatalf("calls %d failures %d, want 5 and 1", r.Calls, r.Failures)
	}
	if r.Seconds != 1.5 || r.CallsPerSec != 2 {
		t.Errorf("window %v s, %v calls/s; want 1.5 s and 2 (3 successful calls ended inside)", r.Seconds, r.CallsPerSec)
	}
	if r.P50Ms != 900 || r.P99Ms != 1900 {
		t.Errorf("p50 %v p99 %v, want 900 and 1900", r.P50Ms, r.P99Ms)
	}
}

// TestMergeRuns checks that rounds merge: latencies pooled, throughput
// over the summed windows, failures and caps carried.
func TestMergeRuns(t *testing.T) {
	ms := time.Millisecond
	r := mergeRuns(1, []phaseRun{
		{lat: []time.Duration{1 * ms, 2 * ms}, inside: 2, seconds: 1, asked: 3},
		{lat: []time.Duration{3 * ms, 4 * ms}, inside: 1, seconds: 2, failures: 1, capped: true, firstErr: "x", asked: 5},
	})
	if r.Calls != 4 || r.Failures != 1 || !r.Capped || r.FirstError != "x" || r.Asked != 8 {
		t.Errorf("merged %+v", r)
	}
	if r.Seconds != 3 || r.CallsPerSec != 1 || r.P50Ms != 2 || r.P90Ms != 4 {
		t.Errorf("window %v s, %v calls/s, p50 %v, p90 %v; want 3, 1, 2, 4", r.Seconds, r.CallsPerSec, r.P50Ms, r.P90Ms)
	}
}

func TestComparisonTable(t *testing.T) {
	b := &bench{o: options{conc: []int{1, 16}}}
	b.res.Catalogs = []catalogInfo{{Scale: 100}}
	add := func(sc, path string, conc int, p50, p90, tput float64) {
		b.res.Phases = append(b.res.Phases, phaseResult{Scale: 100, Scenario: sc, Path: path, Concurrency: conc, P50Ms: p50, P90Ms: p90, CallsPerSec: tput})
	}
	add(scGet, pathRest, 1, 0.5, 0.7, 1800)
	add(scGet, pathFloor, 1, 1.0, 1.2, 900)
	add(scGet, pathMCPFloor, 1, 1.5, 1.8, 700)
	add(scGet, "ours", 1, 2.0, 2.5, 500)
	add(scGet, pathRest, 16, 5, 9, 2000)
	add(scGet, "ours", 16, 10, 15, 1000)
	table := b.comparisonTable(100)
	for _, want := range []string{
		"### 100 entities",
		"| question | conc. | figure | REST | REST+hop floor | MCP floor | MCP empty answer | ours every | ours interval | ours mirror | mirror interval | REST+hop floor ÷ REST | MCP floor ÷ REST | MCP empty answer ÷ REST | ours every ÷ REST | ours every ÷ floor | ours interval ÷ REST | ours interval ÷ floor | ours mirror ÷ REST | ours mirror ÷ floor | mirror interval ÷ REST | mirror interval ÷ floor |",
		"| uncached get | 1 | p50 ms | 0.50 | 1.00 | 1.50 | – | 2.00 | – | – | – | 2.00× (+0.50 ms) | 3.00× (+1.00 ms) | – | 4.00× (+1.50 ms) | 2.00× (+1.00 ms) | – | – | – | – | – | – |",
		"| uncached get | 16 | calls/s | 2000 | – | – | – | 1000 | – | – | – | – | – | – | 0.50× | – | – | – | – | – | – | – |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	h := b.targetHeadlines(100)
	if len(h) != 2 || h[0].Met || h[1].Met {
		t.Errorf("headlines %+v", h)
	}
	if want := "+1.50 ms (ours 2.00 ms, REST 0.50 ms; MCP floor 1.50 ms = REST +1.00 ms)"; len(h) > 0 && h[0].Measured != want {
		t.Errorf("get headline %q, want %q", h[0].Measured, want)
	}
}
