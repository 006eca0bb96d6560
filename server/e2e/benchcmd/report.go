package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// results is everything results.json holds.
type results struct {
	Started        time.Time         `json:"started"`
	Finished       time.Time         `json:"finished"`
	Command        string            `json:"command"`
	Machine        machine           `json:"machine"`
	Versions       map[string]string `json:"versions"`
	Catalogs       []catalogInfo     `json:"catalogs"`
	PeerTools      [2]string         `json:"peer_tools"`
	Variants       []variantInfo     `json:"ours_variants"`
	OursConfigs    map[string]string `json:"ours_configs"`
	RESTGzip       bool              `json:"rest_gzip"`
	Phases         []phaseResult     `json:"phases"`
	Sizes          []sizeRow         `json:"sizes"`
	TokenizerNote  string            `json:"tokenizer"`
	SeededSecrets  int               `json:"seeded_secrets"`
	SecretEntities int               `json:"secret_entities"`
	Secrets        []secretResult    `json:"secrets"`
	OursPeakRSSKiB int64             `json:"ours_peak_rss_kib"`
	PeakRSS        []peakRSS         `json:"peak_rss"`
	Soak           *soakResult       `json:"soak,omitempty"`
	State          *stateResult      `json:"state,omitempty"`
	Headline       []headline        `json:"headline"`
	// Incomplete says why the run stopped before its last catalog size.
	Incomplete string `json:"incomplete,omitempty"`
}

// variantInfo names one backstage-mcp column.
type variantInfo struct {
	Path  string `json:"path"`
	Label string `json:"label"`
	Note  string `json:"note"`
}

// peakRSS is a backstage-mcp process's VmHWM over the load phases of one
// catalog size.
type peakRSS struct {
	Scale int    `json:"scale"`
	Path  string `json:"path"`
	KiB   int64  `json:"kib"`
	// ReadyMs is the time from the process start to ready (for a mirror,
	// its first full sync).
	ReadyMs int64 `json:"ready_ms"`
	// DeltaSyncs are a mirror's successful delta syncs over its whole
	// life in the run (nil when not a mirror).
	DeltaSyncs *syncStats `json:"delta_syncs,omitempty"`
	// AtReady is a mirror's freshness as /readyz gave it the first time
	// it answered 200 (right after the first full sync); AtEnd the same
	// after the load phases. Nil when not a mirror.
	AtReady *mirrorFreshness `json:"mirror_at_ready,omitempty"`
	AtEnd   *mirrorFreshness `json:"mirror_at_end,omitempty"`
}

// catalogInfo describes one loaded catalog.
type catalogInfo struct {
	Scale         int            `json:"scale"`
	Generated     int            `json:"generated_entities"`
	Total         int            `json:"total_entities_in_backstage"`
	Files         int            `json:"files"`
	Kinds         map[string]int `json:"kinds"`
	IngestSeconds float64        `json:"boot_and_ingest_seconds"`
	// DB is Backstage's catalog database: "memory" (SQLite in memory,
	// ingested in this run), "postgres" (ingested in this run into the
	// bench's PostgreSQL, then saved to the database cache) or "cached"
	// (PostgreSQL, booted on a copy from the cache).
	DB string `json:"catalog_database"`
}

// headline is one target with the measured figure.
type headline struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// phase returns the phase of a scale, scenario (by prefix), path and
// concurrency, or nil.
func (b *bench) phase(scale int, scenarioPrefix, path string, conc int) *phaseResult {
	for i := range b.res.Phases {
		p := &b.res.Phases[i]
		if p.Scale == scale && strings.HasPrefix(p.Scenario, scenarioPrefix) && p.Path == path && p.Concurrency == conc {
			return p
		}
	}
	return nil
}

func (b *bench) size(question, pathPrefix string) *sizeRow {
	for i := range b.res.Sizes {
		s := &b.res.Sizes[i]
		if s.Question == question && strings.HasPrefix(s.Path, pathPrefix) {
			return s
		}
	}
	return nil
}

// tokens returns the best available text token count of a row.
func (s *sizeRow) tokens() (int64, string) {
	if s.TextO200k > 0 {
		return s.TextO200k, "o200k_base"
	}
	return s.TextApprox, "approximation"
}

// scales returns the catalog sizes measured, in order.
func (b *bench) scales() []int {
	out := make([]int, 0, len(b.res.Catalogs))
	for _, c := range b.res.Catalogs {
		out = append(out, c.Scale)
	}
	return out
}

// highConc is the concurrency of the throughput figures: 16 when measured,
// else the highest level measured.
func (b *bench) highConc() int {
	hi := 0
	for _, c := range b.o.conc {
		if c == 16 {
			return 16
		}
		hi = max(hi, c)
	}
	return hi
}

// mcpFloorNote describes the MCP floor's c1 p50 of scenario sc against
// REST's restP50, for a target's measured column ("" when not measured).
func (b *bench) mcpFloorNote(n int, sc string, restP50 float64) string {
	m := b.phase(n, sc, pathMCPFloor, 1)
	if m == nil || m.P50Ms <= 0 {
		return ""
	}
	return fmt.Sprintf("; MCP floor %.2f ms = REST %+.2f ms", m.P50Ms, m.P50Ms-restP50)
}

// emptyNote describes the empty-answer floor's c1 p50 of scenario sc
// against REST's restP50 ("" when not measured).
func (b *bench) emptyNote(n int, sc string, restP50 float64) string {
	m := b.phase(n, sc, pathMCPEmpty, 1)
	if m == nil || m.P50Ms <= 0 {
		return ""
	}
	return fmt.Sprintf("; MCP empty answer %.2f ms = %.2f× REST", m.P50Ms, m.P50Ms/restP50)
}

// targetHeadlines are issue 14's targets for the shipped defaults against
// REST at one catalog size.
func (b *bench) targetHeadlines(n int) []headline {
	var h []headline
	at := fmt.Sprintf("%d entities: ", n)
	hi := b.highConc()
	if o, r := b.phase(n, scGet, "ours", 1), b.phase(n, scGet, pathRest, 1); o != nil && r != nil && r.P50Ms > 0 {
		add := o.P50Ms - r.P50Ms
		h = append(h, headline{Target: at + "uncached get, c1, p50 ≤ REST + 0.5 ms",
			Measured: fmt.Sprintf("%+.2f ms (ours %.2f ms, REST %.2f ms%s)", add, o.P50Ms, r.P50Ms, b.mcpFloorNote(n, scGet, r.P50Ms)), Met: o.P50Ms > 0 && add <= 0.5})
	}
	if o, r := b.phase(n, scGet, "ours", hi), b.phase(n, scGet, pathRest, hi); o != nil && r != nil && r.CallsPerSec > 0 {
		x := o.CallsPerSec / r.CallsPerSec
		h = append(h, headline{Target: fmt.Sprintf("%suncached get, c%d, throughput ≥ 0.9× REST", at, hi),
			Measured: fmt.Sprintf("%.2f× (ours %.0f calls/s, REST %.0f calls/s)", x, o.CallsPerSec, r.CallsPerSec), Met: x >= 0.9})
	}
	if o, r := b.phase(n, scSearch, "ours", 1), b.phase(n, scSearch, pathRest, 1); o != nil && r != nil && r.P50Ms > 0 {
		x := o.P50Ms / r.P50Ms
		h = append(h, headline{Target: at + "search kind+owner, c1, p50 ≤ 1.05× REST",
			Measured: fmt.Sprintf("%.2f× (ours %.1f ms, REST %.1f ms)", x, o.P50Ms, r.P50Ms), Met: o.P50Ms > 0 && x <= 1.05})
	}
	if o, r := b.phase(n, scSearch, "ours", hi), b.phase(n, scSearch, pathRest, hi); o != nil && r != nil && r.CallsPerSec > 0 {
		x := o.CallsPerSec / r.CallsPerSec
		h = append(h, headline{Target: fmt.Sprintf("%ssearch, c%d, throughput ≥ REST", at, hi),
			Measured: fmt.Sprintf("%.2f× (ours %.1f calls/s, REST %.1f calls/s)", x, o.CallsPerSec, r.CallsPerSec), Met: x >= 1})
	}
	// The mirror's targets: get p50 ≤ 0.5× REST, search p50 ≤ 0.1× REST.
	if o, r := b.phase(n, scGet, "ours-mirror", 1), b.phase(n, scGet, pathRest, 1); o != nil && r != nil && r.P50Ms > 0 {
		x := o.P50Ms / r.P50Ms
		h = append(h, headline{Target: at + "mirror: uncached get, c1, p50 ≤ 0.5× REST",
			Measured: fmt.Sprintf("%.2f× (mirror %.2f ms, REST %.2f ms%s)", x, o.P50Ms, r.P50Ms, b.emptyNote(n, scGet, r.P50Ms)), Met: o.P50Ms > 0 && x <= 0.5})
	}
	if o, r := b.phase(n, scGet, pathMirrorInterval, 1), b.phase(n, scGet, pathRest, 1); o != nil && r != nil && r.P50Ms > 0 {
		x := o.P50Ms / r.P50Ms
		h = append(h, headline{Target: at + "mirror with audit.sync: interval (not the default): uncached get, c1, p50 ≤ 0.5× REST",
			Measured: fmt.Sprintf("%.2f× (mirror interval %.2f ms, REST %.2f ms%s)", x, o.P50Ms, r.P50Ms, b.emptyNote(n, scGet, r.P50Ms)), Met: o.P50Ms > 0 && x <= 0.5})
	}
	if o, r := b.phase(n, scSearch, "ours-mirror", 1), b.phase(n, scSearch, pathRest, 1); o != nil && r != nil && r.P50Ms > 0 {
		x := o.P50Ms / r.P50Ms
		h = append(h, headline{Target: at + "mirror: search kind+owner, c1, p50 ≤ 0.1× REST",
			Measured: fmt.Sprintf("%.2f× (mirror %.2f ms, REST %.1f ms%s)", x, o.P50Ms, r.P50Ms, b.emptyNote(n, scSearch, r.P50Ms)), Met: o.P50Ms > 0 && x <= 0.1})
	}
	// Every search counted: no phase of the main comparison cut short,
	// none failed.
	var phases, capped, failed int
	for _, p := range b.res.Phases {
		if p.Scale == n && p.Scenario == scSearch && p.Path != pathPeer {
			phases++
			if p.Capped {
				capped++
			}
			failed += p.Failures
		}
	}
	if phases > 0 {
		h = append(h, headline{Target: at + "every search counted (REST, floor, ours)",
			Measured: fmt.Sprintf("%d phases: %d reached --phase-max, %d failed calls", phases, capped, failed), Met: capped == 0 && failed == 0})
	}
	return h
}

func (b *bench) headlines() []headline {
	var h []headline
	scales := b.scales()
	for _, n := range scales {
		h = append(h, b.targetHeadlines(n)...)
		h = append(h, b.leanHeadlines(n)...)
	}
	if len(scales) == 0 {
		return h
	}
	if h2, ok := b.flatHeadline(scales); ok {
		h = append(h, h2)
	}
	h = append(h, b.freshHeadlines()...)
	first := scales[0]
	for _, c := range b.o.conc {
		o, p := b.phase(first, scHot, "ours", c), b.phase(first, scHot, pathPeer, c)
		if o == nil || p == nil || p.CallsPerSec == 0 {
			continue
		}
		ratio := o.CallsPerSec / p.CallsPerSec
		h = append(h, headline{Target: fmt.Sprintf("%d entities: ≥ 2× the peer's throughput on repeated lookups (concurrency %d)", first, c),
			Measured: fmt.Sprintf("%.2f× (ours %.0f calls/s, peer %.0f calls/s)", ratio, o.CallsPerSec, p.CallsPerSec), Met: ratio >= 2})
	}
	for _, q := range []string{qGet, qSearch} {
		o, p := b.size(q, "ours (summary"), b.size(q, "peer")
		if o == nil || p == nil {
			continue
		}
		ot, unit := o.tokens()
		pt, _ := p.tokens()
		if pt == 0 {
			continue
		}
		ratio := float64(ot) / float64(pt)
		h = append(h, headline{Target: fmt.Sprintf("summary answers ≤ 1/3 of the peer's tokens (%s)", q),
			Measured: fmt.Sprintf("%.3f (1/%.1f): ours %d, peer %d %s tokens over %d questions", ratio, 1/ratio, ot, pt, unit, o.Answers), Met: ratio <= 1.0/3})
	}
	for _, s := range b.res.Secrets {
		if s.Path == "ours" {
			var peer string
			for _, t := range b.res.Secrets {
				if t.Path == "peer" {
					peer = fmt.Sprintf("; peer leaked %d", t.Leaked)
				}
			}
			h = append(h, headline{Target: "zero seeded secrets in our answers",
				Measured: fmt.Sprintf("ours leaked %d of %d%s", s.Leaked, s.Seeded, peer), Met: s.Leaked == 0})
		}
	}
	return h
}

// freshHeadlines are the mirror's freshness target at each size: ready
// and not stale the moment /readyz first says ready (right after the
// first full sync, however long it took), and still not stale after the
// load phases.
func (b *bench) freshHeadlines() []headline {
	var h []headline
	for _, x := range b.res.PeakRSS {
		if x.Path != "ours-mirror" {
			continue
		}
		t := fmt.Sprintf("%d entities: mirror fresh (ready, not stale) when first ready and after the load phases", x.Scale)
		if x.AtReady == nil {
			h = append(h, headline{Target: t, Measured: "freshness not read from /readyz"})
			continue
		}
		m := fmt.Sprintf("ready after %.1f s; then %s", float64(x.ReadyMs)/1000, x.AtReady)
		met := x.AtReady.Ready && !x.AtReady.Stale
		if x.AtEnd != nil {
			m += "; after the load phases " + x.AtEnd.String()
			met = met && x.AtEnd.Ready && !x.AtEnd.Stale
		}
		h = append(h, headline{Target: t, Measured: m, Met: met})
	}
	return h
}

// flatHeadline is the mirror's "search flat from the smallest size to the
// largest" target: p50 at the largest at most 1.5× the p50 at the
// smallest.
func (b *bench) flatHeadline(scales []int) (headline, bool) {
	var pts []string
	var lo, hi float64
	for i, n := range scales {
		ph := b.phase(n, scSearch, pathMirror, 1)
		if ph == nil || ph.P50Ms <= 0 {
			return headline{}, false
		}
		pts = append(pts, fmt.Sprintf("%d: %.2f ms", n, ph.P50Ms))
		if i == 0 {
			lo = ph.P50Ms
		}
		hi = ph.P50Ms
	}
	if len(pts) < 2 {
		return headline{}, false
	}
	return headline{
		Target:   fmt.Sprintf("mirror: search kind+owner, c1, p50 flat from %d to %d entities (at most 1.5× at the largest)", scales[0], scales[len(scales)-1]),
		Measured: fmt.Sprintf("%.2f× (%s)", hi/lo, strings.Join(pts, ", ")),
		Met:      hi <= 1.5*lo,
	}, true
}

func (b *bench) write() error {
	b.res.Headline = b.headlines()
	dir := b.o.out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(b.root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	b.guide = "README.md"
	if rel, err := filepath.Rel(dir, filepath.Join(b.root, "testdata", "bench", "README.md")); err == nil {
		b.guide = filepath.ToSlash(rel)
	}
	js, err := json.MarshalIndent(b.res, "", "  ")
	if err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	md := b.markdown()
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	if readme := b.readmePath(); readme != "" && b.res.Incomplete == "" {
		if err := b.writeReadmeSummary(readme); err != nil {
			return err
		}
	}
	fmt.Fprint(b.stdout, md)
	return nil
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func ms(x float64) string {
	if x == 0 || math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.2f", x)
}

// perSec formats a throughput: whole calls per second, or one decimal
// below 100 (slow searches).
func perSec(x float64) string {
	if x >= 100 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

func round(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

func (b *bench) markdown() string {
	r := &b.res
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	p("# backstage-mcp vs Backstage's own MCP endpoint vs Backstage REST\n\n")
	guide := b.guide
	if guide == "" {
		guide = "README.md"
	}
	p("Generated by `%s` — do not edit; method and caveats in [README.md](%s).\n\n", r.Command, guide)
	if r.Incomplete != "" {
		p("**Incomplete:** %s.\n\n", r.Incomplete)
	}
	p("- **Date:** %s (run took %s)\n", r.Started.Format("2006-01-02 15:04 UTC"), r.Finished.Sub(r.Started).Round(1e9))
	p("- **Machine:** %d CPUs (`nproc`), %s, %d MiB memory, Linux %s, %s/%s — load generator, Backstage and backstage-mcp share it\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemoryMiB, r.Machine.Kernel, r.Machine.GOOS, r.Machine.GOARCH)
	keys := make([]string, 0, len(r.Versions))
	for k := range r.Versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var vs []string
	for _, k := range keys {
		vs = append(vs, k+" "+r.Versions[k])
	}
	p("- **Versions:** %s\n", strings.Join(vs, ", "))
	for _, c := range r.Catalogs {
		kinds := make([]string, 0, len(c.Kinds))
		for _, k := range kindOrder {
			kinds = append(kinds, fmt.Sprintf("%d %s", c.Kinds[k], k))
		}
		boot := fmt.Sprintf("boot + ingestion + relation stitching took **%.0f s**", c.IngestSeconds)
		switch c.DB {
		case "memory":
			boot += " (SQLite in memory)"
		case "postgres":
			boot += " (PostgreSQL; then saved to the database cache)"
		case "cached":
			boot = fmt.Sprintf("Backstage booted on PostgreSQL holding a copy of an earlier run's ingestion (the database cache) in **%.0f s**", c.IngestSeconds)
		}
		p("- **Catalog, %d:** %d generated entities (%s) in %d files, plus the fake-secrets fixture and Location entities: %d in Backstage; %s\n",
			c.Scale, c.Generated, strings.Join(kinds, ", "), c.Files, c.Total, boot)
	}
	enc := "identity encoding (no gzip: Backstage does not compress)"
	if r.RESTGzip {
		enc = "`Accept-Encoding: gzip` (Go's default, `--rest-gzip`)"
	}
	p("- **Paths:** *rest* = the catalog REST API (`by-name`, `by-query`) with %s; *floor* = the same REST calls through a trivial pass-through reverse proxy (Go `httputil.ReverseProxy`, its own process, keep-alive, no compression): REST plus one loopback hop, the least any proxy costs; *MCP floor* = the same REST calls behind a trivial mcp-go server over Streamable HTTP (same tool names and arguments as ours, Backstage's body returned as text; no policy, redaction, audit or limits; in the floor's process), asked by the same MCP client as ours: the least any MCP server built on mcp-go costs here; ", enc)
	var vs2 []string
	for _, v := range r.Variants {
		vs2 = append(vs2, fmt.Sprintf("*%s* (`%s`: %s)", v.Label, v.Path, v.Note))
	}
	p("%s = backstage-mcp over Streamable HTTP (`catalog_get_entity`, `catalog_search_entities`, summary answers), one process each; *peer* = Backstage's MCP endpoint `/api/mcp-actions/v1` (`%s`, `%s`). One MCP session per worker. Every path may take up to %s per call (the load generator's limit); backstage-mcp's timeouts towards Backstage (shipped: 10 s per request) are raised to the same, so that Backstage's slowest answers count alike on every path.\n\n",
		strings.Join(vs2, ", "), r.PeerTools[0], r.PeerTools[1], callTimeout)

	p("## Summary\n\n")
	p("%s\n%s\n", b.summaryTable(), b.summaryNote())

	p("## Targets\n\nFor the shipped defaults (*%s*).\n\n| target | measured | met |\n|---|---|---|\n", pathLabel("ours"))
	for _, h := range r.Headline {
		met := "yes"
		if !h.Met {
			met = "**no**"
		}
		p("| %s | %s | %s |\n", h.Target, h.Measured, met)
	}
	if len(r.PeakRSS) > 0 {
		var rss []string
		for _, x := range r.PeakRSS {
			one := fmt.Sprintf("%s at %d entities **%.1f MiB**, ready in %.1f s", pathLabel(x.Path), x.Scale, float64(x.KiB)/1024, float64(x.ReadyMs)/1000)
			if d := x.DeltaSyncs; d != nil && d.Count > 0 {
				one += fmt.Sprintf(" (%d delta syncs, %.2f s each on average)", d.Count, d.SumSec/float64(d.Count))
			}
			if x.AtReady != nil {
				one += "; /readyz when first ready: " + x.AtReady.String()
			}
			if x.AtEnd != nil {
				one += "; after the load phases: " + x.AtEnd.String()
			}
			rss = append(rss, one)
		}
		p("\nPeak RSS of backstage-mcp over the load phases (VmHWM), and the time from start to ready "+
			"(for the mirror, its first full sync from Backstage; its delta syncs, every syncInterval (30 s), run during "+
			"the measurements of every path): %s.\n", strings.Join(rss, ", "))
	}

	p("\n## Against REST and the floor\n\n")
	p("The questions of the targets, on every path of the main comparison. Ratios: the column ÷ REST and ÷ the floor " +
		"(latency: lower is better; calls/s: higher is better); the floor's own ratio to REST is what one loopback hop costs.\n\n")
	for _, n := range b.scales() {
		p("%s", b.comparisonTable(n))
	}

	p("\n## Latency and throughput\n\n")
	p("Each phase: at least %s of warm-up (and until every worker has finished a call), then a window of at least %s that lasts "+
		"until at least max(%d, 2 × concurrency) calls have ended in it; the calls still running when it closes are awaited, so every "+
		"call is timed (none is dropped for being slow). p50/p90/p99: nearest rank over successful calls, in ms; calls/s: successful calls "+
		"that ended in the window ÷ its length (*window s*). %s Ratios: ours ÷ peer, ÷ REST, ÷ floor.\n\n", b.o.warmup, b.o.phase, b.o.minCalls, roundsNote(b.o.rounds))
	p("| entities | question | conc. | path | calls | fail | window s | p50 ms | p90 ms | p99 ms | calls/s | p50 vs peer | p50 vs REST | p50 vs floor | calls/s vs peer | calls/s vs REST | calls/s vs floor |\n")
	p("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, ph := range r.Phases {
		var cells [6]string
		if isOurs(ph.Path) {
			for i, other := range []string{pathPeer, pathRest, pathFloor} {
				if o := b.phase(ph.Scale, ph.Scenario, other, ph.Concurrency); o != nil {
					cells[i], cells[3+i] = ratio(ph.P50Ms, o.P50Ms), ratio(ph.CallsPerSec, o.CallsPerSec)
				}
			}
		}
		window := fmt.Sprintf("%.1f", ph.Seconds)
		if ph.Capped {
			window += " (capped)"
		}
		p("| %d | %s | %d | %s | %d | %d | %s | %s | %s | %s | %s | %s |\n",
			ph.Scale, ph.Scenario, ph.Concurrency, pathLabel(ph.Path), ph.Calls, ph.Failures, window, ms(ph.P50Ms), ms(ph.P90Ms), ms(ph.P99Ms), perSec(ph.CallsPerSec), strings.Join(cells[:], " | "))
	}

	p("\n## Answer size for the same questions\n\n")
	p("Totals over the same questions on every path. *text* = the text content an MCP client gives its model; *raw* = the whole result as sent (MCP: content + structuredContent). Tokens: %s.\n\n", r.TokenizerNote)
	p("| question | path | answers | errors | text bytes | text tokens o200k | text tokens cl100k | text tokens approx | raw bytes | raw tokens o200k | text tokens vs peer |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Sizes {
		vs := ""
		if peer := b.size(s.Question, "peer"); peer != nil {
			st, _ := s.tokens()
			pt, _ := peer.tokens()
			vs = ratio(float64(st), float64(pt))
		}
		p("| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n", s.Question, s.Path, s.Answers, s.Errors, s.TextBytes, s.TextO200k, s.TextCl100k, s.TextApprox, s.RawBytes, s.RawO200k, vs)
	}

	p("\n## Seeded secrets\n\n%d format-valid fake secrets (at least 8 characters) in %d entities. Every path was asked about every one of those entities (ours: summary, full, relations and owner).\n\n", r.SeededSecrets, r.SecretEntities)
	p("| path | calls | secrets seen in answers | types seen | `[REDACTED:` markers |\n|---|---:|---:|---|---:|\n")
	for _, s := range r.Secrets {
		p("| %s | %d | %d of %d | %s | %d |\n", s.Path, s.Calls, s.Leaked, s.Seeded, strings.Join(s.Types, ", "), s.Redacts)
	}

	if r.State != nil {
		p("%s", stateMarkdown(r.State))
	}

	if s := r.Soak; s != nil {
		p("\n## Soak\n\n%d concurrent sessions for %.0f s of mixed calls (%s) against a fresh backstage-mcp.\n\n", s.Sessions, s.Seconds, strings.Join(s.Mix, ", "))
		p("| figure | value |\n|---|---|\n")
		p("| sessions that failed to connect | %d |\n", s.SessionsFailed)
		p("| calls | %d (%.0f calls/s) |\n", s.Calls, s.CallsPerSec)
		p("| failed calls | %d |\n", s.Failed)
		if s.FirstError != "" {
			p("| first failure | %s |\n", strings.ReplaceAll(s.FirstError, "|", "\\|"))
		}
		p("| latency p50 / p99 | %s / %s ms |\n", ms(s.P50Ms), ms(s.P99Ms))
		p("| audit records of type call | %d (calls made: %d) |\n", s.AuditCalls, s.Calls)
		p("| `backstage-mcp audit verify` | %v: %s |\n", okWord(s.AuditVerifyOK), strings.ReplaceAll(strings.TrimSpace(strings.ReplaceAll(s.AuditVerify, "\n", " ")), "|", "\\|"))
		p("| RSS after 10 s warm-up / at end / peak | %.1f / %.1f / %.1f MiB |\n", float64(s.WarmRSSKiB)/1024, float64(s.EndRSSKiB)/1024, float64(s.PeakRSSKiB)/1024)
		if first, second, ok := halfMeans(s.RSSKiB, 10); ok {
			p("| mean RSS, first / second half after warm-up (flat memory: about equal) | %.1f / %.1f MiB |\n", first/1024, second/1024)
		}
	}
	return w.String()
}

func okWord(ok bool) string {
	if ok {
		return "passed"
	}
	return "**FAILED**"
}

// halfMeans returns the mean of the samples after skip, over the first and
// the second half: a steady state shows equal means even though a garbage
// collected heap makes single samples saw up and down.
func halfMeans(samples []int64, skip int) (first, second float64, ok bool) {
	if len(samples) < skip+4 {
		return 0, 0, false
	}
	rest := samples[skip:]
	mid := len(rest) / 2
	mean := func(xs []int64) float64 {
		var sum float64
		for _, x := range xs {
			sum += float64(x)
		}
		return sum / float64(len(xs))
	}
	return mean(rest[:mid]), mean(rest[mid:]), true
}

// comparisonRow is one figure of the comparison table.
type comparisonRow struct {
	question string
	scenario string
	conc     int
	figure   string
	value    func(*phaseResult) float64
	latency  bool
}

// comparisonTable is the table of one catalog size: REST, the floor and
// every backstage-mcp variant side by side, with the ratios to REST and to
// the floor.
func (b *bench) comparisonTable(n int) string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	hi := b.highConc()
	p50 := func(r *phaseResult) float64 { return r.P50Ms }
	p90 := func(r *phaseResult) float64 { return r.P90Ms }
	tput := func(r *phaseResult) float64 { return r.CallsPerSec }
	rows := []comparisonRow{
		{"uncached get", scGet, 1, "p50 ms", p50, true},
		{"uncached get", scGet, 1, "p90 ms", p90, true},
		{"search kind+owner, 20 results", scSearch, 1, "p50 ms", p50, true},
		{"search kind+owner, 20 results", scSearch, 1, "p90 ms", p90, true},
	}
	if hi > 1 {
		rows = append(rows,
			comparisonRow{"uncached get", scGet, hi, "calls/s", tput, false},
			comparisonRow{"uncached get", scGet, hi, "p50 ms", p50, true},
			comparisonRow{"search kind+owner, 20 results", scSearch, hi, "calls/s", tput, false},
			comparisonRow{"search kind+owner, 20 results", scSearch, hi, "p50 ms", p50, true},
		)
	}
	cols := append([]string{pathRest, pathFloor, pathMCPFloor, pathMCPEmpty}, oursNames()...)
	p("### %d entities\n\n| question | conc. | figure |", n)
	for _, c := range cols {
		p(" %s |", pathLabel(c))
	}
	p(" %s ÷ REST | %s ÷ REST | %s ÷ REST |", pathLabel(pathFloor), pathLabel(pathMCPFloor), pathLabel(pathMCPEmpty))
	for _, c := range oursNames() {
		p(" %s ÷ REST | %s ÷ floor |", pathLabel(c), pathLabel(c))
	}
	p("\n|---|---:|---|%s\n", strings.Repeat("---:|", len(cols)+3+2*len(oursVariants)))
	for _, row := range rows {
		val := map[string]float64{}
		for _, c := range cols {
			if ph := b.phase(n, row.scenario, c, row.conc); ph != nil {
				val[c] = row.value(ph)
			}
		}
		f := func(x float64) string {
			if row.latency {
				return ms(x)
			}
			if x == 0 {
				return "–"
			}
			return perSec(x)
		}
		rel := func(a, base float64) string {
			r := ratio(a, base)
			if row.latency && r != "–" {
				r += fmt.Sprintf(" (%+.2f ms)", a-base)
			}
			return r
		}
		p("| %s | %d | %s |", row.question, row.conc, row.figure)
		for _, c := range cols {
			p(" %s |", f(val[c]))
		}
		p(" %s | %s | %s |", rel(val[pathFloor], val[pathRest]), rel(val[pathMCPFloor], val[pathRest]), rel(val[pathMCPEmpty], val[pathRest]))
		for _, c := range oursNames() {
			p(" %s | %s |", rel(val[c], val[pathRest]), rel(val[c], val[pathFloor]))
		}
		p("\n")
	}
	p("\n")
	return w.String()
}

// roundsNote says how the phases were interleaved.
func roundsNote(rounds int) string {
	if rounds <= 1 {
		return "One window per path, the paths one after the other (REST, floor, ours, peer) for each question and concurrency."
	}
	return fmt.Sprintf("%d rounds per question and concurrency, the paths in alternating order; each row merges its %d windows (*window s* is their sum).", rounds, rounds)
}
