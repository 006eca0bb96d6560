package main

import (
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

func TestReplaceMarked(t *testing.T) {
	doc := "intro\n" + markBegin + "\nold table\n" + markEnd + "\nafter\n"
	out, err := replaceMarked([]byte(doc), "new table\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "intro\n" + markBegin + "\nnew table\n" + markEnd + "\nafter\n"; string(out) != want {
		t.Fatalf("got %q want %q", out, want)
	}
	for _, bad := range []string{"no markers", markEnd + markBegin, markBegin + markBegin + markEnd} {
		if _, err := replaceMarked([]byte(bad), "x"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestHeldOutTable(t *testing.T) {
	rows := []halfRow{
		{corpus: "Kingfisher", half: corpus.HalfHeldOut, context: "text", vendors: 3, examples: 4, ours: corpus.Row{Labels: 4, Found: 3, TP: 3}, theirs: corpus.Row{Labels: 4, Found: 1, TP: 1}, realistic: 2, oursReal: 1, theirsReal: 0.5},
		{corpus: "Kingfisher", half: corpus.HalfDev, context: "url", vendors: 2, examples: 2, ours: corpus.Row{Labels: 2, Found: 1, TP: 1, FP: 1}, theirs: corpus.Row{Labels: 2, Found: 2, TP: 2}, realistic: 2},
	}
	held := heldOutTable(rows, lookalike{bytes: 10, tokens: 2}, "2026-12-07", false)
	if !strings.Contains(held, "| held-out | Kingfisher (3 vendors) | text | 4 | **0.750** / 1.000 | 0.250 / 1.000 | 2: 1.000 / 0.500 |") {
		t.Fatalf("held-out row missing:\n%s", held)
	}
	if strings.Contains(held, "| dev |") {
		t.Fatalf("dev half in the held-out table:\n%s", held)
	}
	both := heldOutTable(rows, lookalike{}, "2026-12-07", true)
	if !strings.Contains(both, "| dev | Kingfisher (2 vendors) | URL | 2 | 0.500 / 0.500 | **1.000** / 1.000 |") {
		t.Fatalf("dev row missing:\n%s", both)
	}
}
