package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// summaryBench is a run at two sizes: every path at 10,000, REST, the
// empty-answer floor and the mirror at 100,000.
func summaryBench() *bench {
	b := &bench{o: options{conc: []int{1, 16}, fullUpTo: 50_000, out: filepath.Join("testdata", "bench")}}
	b.res.Catalogs = []catalogInfo{{Scale: 10_000, DB: "postgres"}, {Scale: 100_000, DB: "cached"}}
	b.res.Command = "make bench-e2e"
	b.res.Started = time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	b.res.Machine.CPUs = 2
	add := func(n int, sc, path string, conc int, p50, tput float64) {
		b.res.Phases = append(b.res.Phases, phaseResult{Scale: n, Scenario: sc, Path: path, Concurrency: conc, P50Ms: p50, CallsPerSec: tput})
	}
	for _, n := range []int{10_000, 100_000} {
		add(n, scGet, pathRest, 1, 1.0, 900)
		add(n, scGet, pathRest, 16, 4.0, 400)
		add(n, scSearch, pathRest, 1, 3.0, 300)
		add(n, scSearch, pathRest, 16, 20, 100)
		add(n, scGet, pathMirror, 1, 0.4, 2000)
		add(n, scGet, pathMirror, 16, 1.0, 1600)
		add(n, scSearch, pathMirror, 1, 0.5, 1500)
		add(n, scSearch, pathMirror, 16, 2.0, 250)
		add(n, scGet, pathMCPEmpty, 1, 0.3, 3000)
	}
	add(10_000, scGet, "ours", 1, 1.5, 600)
	add(10_000, scGet, pathMCPFloor, 1, 1.3, 700)
	add(10_000, scGet, "ours-interval", 1, 1.4, 650)
	b.res.PeakRSS = []peakRSS{
		{Scale: 10_000, Path: "ours", KiB: 40 << 10, ReadyMs: 300},
		{Scale: 10_000, Path: pathMirror, KiB: 80 << 10, ReadyMs: 2500},
		{Scale: 100_000, Path: pathMirror, KiB: 390 << 10, ReadyMs: 24_000},
	}
	return b
}

// TestSummaryTable: one table of every size and path measured, with the
// ratios to REST, the throughput at 16, RSS, time to ready and the audit
// sync mode; no row for a path not measured at a size.
func TestSummaryTable(t *testing.T) {
	b := summaryBench()
	table := b.summaryTable()
	for _, want := range []string{
		"| entities | path | catalog | audit.sync | get c1 p50 ms | ÷ REST | search c1 p50 ms | ÷ REST | get c16 calls/s | ÷ REST | search c16 calls/s | ÷ REST | peak RSS MiB | ready s |",
		"| 10000 | REST | – | – | 1.00 | – | 3.00 | – | 400 | – | 100 | – | – | – |",
		"| 10000 | ours every | pass-through | every | 1.50 | 1.50× | – | – | – | – | – | – | 40 | 0.3 |",
		"| 10000 | ours interval | pass-through | interval | 1.40 | 1.40× |",
		"| 10000 | MCP floor | – | – | 1.30 | 1.30× |",
		"| 100000 | ours mirror | mirror | every | 0.40 | 0.40× | 0.50 | 0.17× | 1600 | 4.00× | 250 | 2.50× | 390 | 24.0 |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "| 100000 | ours every |") || strings.Contains(table, "| 100000 | MCP floor |") {
		t.Errorf("rows for paths not measured at 100,000:\n%s", table)
	}
	if md := b.markdown(); !strings.Contains(md, "## Summary") || strings.Index(md, "## Summary") > strings.Index(md, "## Targets") {
		t.Error("results.md does not open with the summary")
	}
	var got []string
	for _, h := range b.leanHeadlines(100_000) {
		got = append(got, h.Target+" "+h.Measured+" "+okWord(h.Met))
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		"mirror: uncached get, c16, throughput ≥ 3× REST 4.00×",
		"mirror: search kind+owner, c16, throughput ≥ 3× REST 2.50×",
		"mirror: peak RSS ≤ 400 MiB (shipped defaults) 390 MiB",
		"mirror: first full sync ≤ 30 s (time from start to ready) 24.0 s",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("headlines lack %q:\n%s", want, joined)
		}
	}
	if h := b.leanHeadlines(10_000); len(h) != 3 || !h[2].Met || !strings.Contains(h[2].Measured, "+0.20 ms") {
		t.Errorf("10k headlines: %+v", h)
	}
}

// TestReadmeSummary: the run's table goes between the README's markers,
// replacing the previous one and leaving the rest (the history after it)
// alone; a README without markers is untouched.
func TestReadmeSummary(t *testing.T) {
	b := summaryBench()
	b.root = t.TempDir()
	if got := b.readmePath(); got != filepath.Join(b.root, "README.md") {
		t.Fatalf("readme path %q", got)
	}
	readme := filepath.Join(b.root, "README.md")
	before := "# x\n\n## Performance\n\n" + readmeSummaryBegin + "\nold table\n" + readmeSummaryEnd + "\n\nHistory: earlier runs.\n"
	if err := os.WriteFile(readme, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.writeReadmeSummary(readme); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(readme)
	s := string(raw)
	if strings.Contains(s, "old table") || !strings.Contains(s, "| 100000 | ours mirror | mirror | every |") ||
		!strings.HasSuffix(s, readmeSummaryEnd+"\n\nHistory: earlier runs.\n") || !strings.HasPrefix(s, "# x\n\n## Performance\n\n"+readmeSummaryBegin) {
		t.Fatalf("README after the run:\n%s", s)
	}
	if err := os.WriteFile(readme, []byte("no markers\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.writeReadmeSummary(readme); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(readme); string(raw) != "no markers\n" {
		t.Fatalf("a README without markers changed: %q", raw)
	}
	b.o.out = "/tmp/elsewhere"
	if b.readmePath() != "" {
		t.Error("a diagnostic run elsewhere would write the README")
	}
}
