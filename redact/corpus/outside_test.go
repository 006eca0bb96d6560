package corpus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// Figures of the outside corpus (Nosey Parker's rule examples), with the
// negatives that Unscored names left out. gitleaks v8.30.1 flags 13 of the
// 120 scored negative examples (`make redact-report`); backstage-mcp flags
// 14: the 4 of PasswordLiteralNegatives (literals in password positions that
// a sibling rule of the source matches) and 10 others, and those others must
// stay within gitleaks' count. The recall floor is the target, 0.95;
// the rules reach 0.9845 (380 of 386), and testdata/redact/outside/NOTES.md
// says what the misses are.
const (
	outsideRecallFloor   = 0.95
	gitleaksFlaggedOfNeg = 13
)

func TestOutsideCorpus(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "redact", "outside", "noseyparker.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cases, err := ReadOutside(f)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]int{}
	for _, c := range cases {
		labels[c.Label]++
	}
	if labels[LabelSecret] < 350 || labels[LabelNegative] < 140 {
		t.Fatalf("outside corpus too small: %v", labels)
	}
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	docs := OutsideDocs(cases)
	hits, err := Detect(r, docs)
	if err != nil {
		t.Fatal(err)
	}
	tab := Score(docs, hits)
	t.Logf("recall %.4f (%d/%d), precision %.4f, negatives flagged %d/%d",
		tab.Overall.Recall(), tab.Overall.Found, tab.Overall.Labels, tab.Overall.Precision(), tab.Overall.Flagged, tab.Overall.Negatives)
	if tab.Overall.Recall() < outsideRecallFloor {
		t.Errorf("recall %.4f < %.2f; missed: %v", tab.Overall.Recall(), outsideRecallFloor, tab.Missed)
	}
	disputed := 0
	for _, d := range docs {
		if _, ok := PasswordLiteralNegatives[d.ID]; ok && !d.Whole && len(d.Spans) == 0 {
			disputed++
		}
	}
	if disputed != len(PasswordLiteralNegatives) {
		t.Errorf("PasswordLiteralNegatives names %d scored negatives, found %d", len(PasswordLiteralNegatives), disputed)
	}
	flaggedDisputed := 0
	for i, d := range docs {
		if _, ok := PasswordLiteralNegatives[d.ID]; ok && len(hits[i]) > 0 {
			flaggedDisputed++
		}
	}
	if others := tab.Overall.Flagged - flaggedDisputed; others > gitleaksFlaggedOfNeg {
		t.Errorf("%d negative examples flagged besides PasswordLiteralNegatives, gitleaks flags %d: %v", others, gitleaksFlaggedOfNeg, tab.FalseHits)
	}
}

func TestScore(t *testing.T) {
	docs := []Doc{
		{ID: "whole-found", Family: "a", Whole: true, Input: "x"},
		{ID: "whole-missed", Family: "a", Whole: true, Input: "x"},
		{ID: "neg-clean", Family: "a", Input: "x"},
		{ID: "neg-flagged", Family: "b", Input: "xyz"},
		{ID: "spans", Input: "0123456789", Spans: []Secret{{Start: 2, End: 6, Type: "c"}, {Start: 7, End: 9, Type: "c"}}},
	}
	hits := [][]Hit{
		{{Start: 0, End: 1}},
		nil,
		nil,
		{{Start: 0, End: 2}},
		{{Start: 2, End: 4}, {Start: 4, End: 6}, {Start: 7, End: 8}, {Start: 0, End: 1, Family: "d"}},
	}
	tab := Score(docs, hits)
	want := map[string]Row{
		"a": {Family: "a", Labels: 2, Found: 1, TP: 1, Negatives: 1},
		"b": {Family: "b", FP: 1, Negatives: 1, Flagged: 1},
		"c": {Family: "c", Labels: 2, Found: 1, TP: 3},
		"d": {Family: "d", FP: 1},
	}
	if len(tab.Rows) != len(want) {
		t.Fatalf("rows %+v", tab.Rows)
	}
	for _, r := range tab.Rows {
		if r != want[r.Family] {
			t.Errorf("row %s = %+v, want %+v", r.Family, r, want[r.Family])
		}
	}
	if o := tab.Overall; o.Labels != 4 || o.Found != 2 || o.TP != 4 || o.FP != 2 || o.Negatives != 2 || o.Flagged != 1 {
		t.Errorf("overall %+v", o)
	}
	if len(tab.Missed) != 2 || len(tab.FalseHits) != 2 {
		t.Errorf("missed %v, false %v", tab.Missed, tab.FalseHits)
	}
}

func TestUnscoredNegatives(t *testing.T) {
	cases := []OutsideCase{
		{ID: "a/example/0", Label: LabelSecret, Text: "tok = xoxb-1"},
		{ID: "b/negative/0", Label: LabelNegative, Text: "tok = xoxb-1"},
		{ID: "b/negative/1", Label: LabelNegative, Text: "nothing here"},
		{ID: "c/identifier/0", Label: LabelIdentifier, Text: "<add key=\"X\" value=\"y\"/>"},
		{ID: "d/negative/0", Label: LabelNegative, Text: "<add key=\"X\" value=\"y\"/>"},
		{ID: "np.postgres.1/negative/0", Label: LabelNegative, Text: "postgresql://user:secret@[::1]/db"},
	}
	got := Unscored(cases)
	if len(got) != 3 || got["b/negative/0"] == "" || got["d/negative/0"] == "" || got["np.postgres.1/negative/0"] == "" {
		t.Fatalf("unscored %v", got)
	}
	docs := OutsideDocs(cases)
	if len(docs) != 2 || docs[0].ID != "a/example/0" || docs[1].ID != "b/negative/1" {
		t.Fatalf("docs %+v", docs)
	}
}
