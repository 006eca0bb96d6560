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
	Catalog        catalogInfo       `json:"catalog"`
	PeerTools      [2]string         `json:"peer_tools"`
	OursConfig     string            `json:"ours_config"`
	Phases         []phaseResult     `json:"phases"`
	Sizes          []sizeRow         `json:"sizes"`
	TokenizerNote  string            `json:"tokenizer"`
	SeededSecrets  int               `json:"seeded_secrets"`
	SecretEntities int               `json:"secret_entities"`
	Secrets        []secretResult    `json:"secrets"`
	OursPeakRSSKiB int64             `json:"ours_peak_rss_kib"`
	Soak           *soakResult       `json:"soak,omitempty"`
	State          *stateResult      `json:"state,omitempty"`
	Headline       []headline        `json:"headline"`
}

// catalogInfo describes the loaded catalog.
type catalogInfo struct {
	Generated     int            `json:"generated_entities"`
	Total         int            `json:"total_entities_in_backstage"`
	Files         int            `json:"files"`
	Kinds         map[string]int `json:"kinds"`
	IngestSeconds float64        `json:"boot_and_ingest_seconds"`
}

// headline is one target with the measured figure.
type headline struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func (b *bench) phase(scenarioPrefix, path string, conc int) *phaseResult {
	for i := range b.res.Phases {
		p := &b.res.Phases[i]
		if strings.HasPrefix(p.Scenario, scenarioPrefix) && p.Path == path && p.Concurrency == conc {
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

func (b *bench) headlines() []headline {
	var h []headline
	if o, r := b.phase("get entity, distinct", "ours", 1), b.phase("get entity, distinct", "rest", 1); o != nil && r != nil {
		add := o.P50Ms - r.P50Ms
		h = append(h, headline{Target: "added latency over direct REST ≤ 1 ms at p50, uncached lookup (concurrency 1)",
			Measured: fmt.Sprintf("%+.2f ms (ours %.2f ms, REST %.2f ms)", add, o.P50Ms, r.P50Ms), Met: add <= 1})
	}
	for _, c := range b.o.conc {
		o, p := b.phase("get entity, hot", "ours", c), b.phase("get entity, hot", "peer", c)
		if o == nil || p == nil || p.CallsPerSec == 0 {
			continue
		}
		ratio := o.CallsPerSec / p.CallsPerSec
		h = append(h, headline{Target: fmt.Sprintf("≥ 2× the peer's throughput on repeated lookups (concurrency %d)", c),
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

func (b *bench) write() error {
	b.res.Headline = b.headlines()
	dir := b.o.out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(b.root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
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

func round(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

func (b *bench) markdown() string {
	r := &b.res
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	p("# backstage-mcp vs Backstage's own MCP endpoint vs Backstage REST\n\n")
	p("Generated by `%s` — do not edit; method and caveats in [README.md](README.md).\n\n", r.Command)
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
	kinds := make([]string, 0, len(r.Catalog.Kinds))
	for _, k := range kindOrder {
		kinds = append(kinds, fmt.Sprintf("%d %s", r.Catalog.Kinds[k], k))
	}
	p("- **Catalog:** %d generated entities (%s) in %d files, plus the fake-secrets fixture and Location entities: %d in Backstage; boot + ingestion + relation stitching took **%.0f s**\n",
		r.Catalog.Generated, strings.Join(kinds, ", "), r.Catalog.Files, r.Catalog.Total, r.Catalog.IngestSeconds)
	p("- **Paths:** *ours* = backstage-mcp over Streamable HTTP (`catalog_get_entity`, `catalog_search_entities`, summary answers); *peer* = Backstage's MCP endpoint `/api/mcp-actions/v1` (`%s`, `%s`); *rest* = the catalog REST API (`by-name`, `by-query`). One MCP session per worker.\n\n",
		r.PeerTools[0], r.PeerTools[1])

	p("## Targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, h := range r.Headline {
		met := "yes"
		if !h.Met {
			met = "**no**"
		}
		p("| %s | %s | %s |\n", h.Target, h.Measured, met)
	}
	p("\nPeak RSS of backstage-mcp over the load phases (VmHWM): **%.1f MiB**.\n\n", float64(r.OursPeakRSSKiB)/1024)

	p("## Latency and throughput\n\n")
	p("Each row: %s measured after %s warm-up; p50/p99 of successful calls in ms; ratios are ours ÷ peer and ours ÷ REST (latency: lower is better for ours; calls/s: higher is better).\n\n", b.o.phase, b.o.warmup)
	p("| question | conc. | path | calls | fail | p50 ms | p99 ms | calls/s | p50 vs peer | p50 vs REST | calls/s vs peer | calls/s vs REST |\n")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, ph := range r.Phases {
		var vp, vr, tp, tr = "", "", "", ""
		if ph.Path == "ours" {
			if peer := b.phase(ph.Scenario, "peer", ph.Concurrency); peer != nil {
				vp, tp = ratio(ph.P50Ms, peer.P50Ms), ratio(ph.CallsPerSec, peer.CallsPerSec)
			}
			if rest := b.phase(ph.Scenario, "rest", ph.Concurrency); rest != nil {
				vr, tr = ratio(ph.P50Ms, rest.P50Ms), ratio(ph.CallsPerSec, rest.CallsPerSec)
			}
		}
		p("| %s | %d | %s | %d | %d | %s | %s | %.0f | %s | %s | %s | %s |\n",
			ph.Scenario, ph.Concurrency, ph.Path, ph.Calls, ph.Failures, ms(ph.P50Ms), ms(ph.P99Ms), ph.CallsPerSec, vp, vr, tp, tr)
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
