package corpus

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// Figures of the outside corpus (Nosey Parker's rule examples), with the
// negatives that Unscored names left out: 100 of the 143 negative examples
// are scored. gitleaks v8.30.1 flags 6 of them (`make redact-report`), and
// backstage-mcp may flag no more. The recall floors are the issue's
// targets: 0.95 overall and 0.90 in every family;
// testdata/redact/outside/NOTES.md says what the misses are.
const (
	outsideRecallFloor   = 0.95
	outsideFamilyFloor   = 0.90
	gitleaksFlaggedOfNeg = 6
)

func readOutside(t *testing.T) ([]OutsideCase, []SourceRule) {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "redact", "outside")
	return readTestFile(t, filepath.Join(dir, "noseyparker.jsonl"), ReadOutside),
		readTestFile(t, filepath.Join(dir, "noseyparker-rules.jsonl"), ReadSourceRules)
}

// readTestFile reads path with read, failing the test on any error.
func readTestFile[T any](t *testing.T, path string, read func(io.Reader) ([]T, error)) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := read(f)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOutsideCorpus(t *testing.T) {
	cases, rules := readOutside(t)
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
	unscored, err := Unscored(cases, rules)
	if err != nil {
		t.Fatal(err)
	}
	docs := OutsideDocs(cases, unscored)
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
	for _, row := range tab.Rows {
		if row.Labels > 0 && row.Recall() < outsideFamilyFloor {
			t.Errorf("family %s: recall %.3f (%d/%d) < %.2f", row.Family, row.Recall(), row.Found, row.Labels, outsideFamilyFloor)
		}
	}
	if tab.Overall.Negatives != labels[LabelNegative]-len(unscored) {
		t.Errorf("%d negatives scored, want %d", tab.Overall.Negatives, labels[LabelNegative]-len(unscored))
	}
	if tab.Overall.Flagged > gitleaksFlaggedOfNeg {
		t.Errorf("%d scored negative examples flagged, gitleaks flags %d: %v", tab.Overall.Flagged, gitleaksFlaggedOfNeg, tab.FalseHits)
	}
}

// TestSourcePatternsFaithful: the source's patterns, turned into Go
// regexps, find every example of their own rule and none of its negative
// examples, as the source's own tests require of them. So the translation
// keeps their meaning on this corpus, and SourceFlagged asks the source's
// rule set, not a distortion of it.
func TestSourcePatternsFaithful(t *testing.T) {
	cases, rules := readOutside(t)
	if len(rules) < 180 {
		t.Fatalf("only %d source rules", len(rules))
	}
	byRule := map[string]*regexp.Regexp{}
	for _, r := range rules {
		re, err := CompileSourcePattern(r.Pattern)
		if err != nil {
			t.Fatalf("rule %s: %v", r.Rule, err)
		}
		byRule[r.Rule] = re
	}
	for _, c := range cases {
		re := byRule[c.Rule]
		if re == nil {
			t.Errorf("%s: no pattern for rule %s", c.ID, c.Rule)
			continue
		}
		if got, want := re.MatchString(c.Text), c.Label != LabelNegative; got != want {
			t.Errorf("%s: own rule's pattern matches = %v, want %v", c.ID, got, want)
		}
	}
}

func TestCompileSourcePattern(t *testing.T) {
	for _, tc := range []struct{ pattern, in string }{
		{"(?x)\n  a \\ b  (?# two words )\n  [ #]c # a comment\n", "a b c"},
		{"(?xi) \\# ab", "#AB"},
		{"(?x) [^]x]y", "zy"},
		{"(ya29\\.[a-z]{2,1024})", "ya29.abc"},
	} {
		re, err := CompileSourcePattern(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		if !re.MatchString(tc.in) {
			t.Errorf("%q (as %q) does not match %q", tc.pattern, re, tc.in)
		}
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
		{ID: "a/example/0", Rule: "a", Label: LabelSecret, Text: "tok = xoxb-1"},
		{ID: "b/negative/0", Rule: "b", Label: LabelNegative, Text: "tok = xoxb-1"},
		{ID: "b/negative/1", Rule: "b", Label: LabelNegative, Text: "nothing here"},
		{ID: "a/negative/0", Rule: "a", Label: LabelNegative, Text: "xoxb-2"}, // only its own rule matches
		{ID: "np.postgres.1/negative/0", Rule: "np.postgres.1", Label: LabelNegative, Text: "postgresql://user:secret@[::1]/db"},
	}
	rules := []SourceRule{{Rule: "a", Pattern: "(?x) xoxb - [0-9]"}, {Rule: "b", Pattern: "never"}}
	got, err := Unscored(cases, rules)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["b/negative/0"] == "" || got["np.postgres.1/negative/0"] == "" {
		t.Fatalf("unscored %v", got)
	}
	docs := OutsideDocs(cases, got)
	if len(docs) != 3 || docs[0].ID != "a/example/0" || docs[1].ID != "b/negative/1" || docs[2].ID != "a/negative/0" {
		t.Fatalf("docs %+v", docs)
	}
	if _, err := Unscored(cases, []SourceRule{{Rule: "c", Pattern: "(unclosed"}}); err == nil {
		t.Error("a pattern that does not compile was accepted")
	}
}

// TestWrongNegativesReasons: a negative left out because the source's
// successor names it a secret is one that successor's rule, run as a Go
// regexp, really matches; and the source's own rule does not (else it
// would be an example, not a negative).
func TestWrongNegativesReasons(t *testing.T) {
	cases, npRules := readOutside(t)
	kfRules := readTestFile(t, filepath.Join("..", "..", "testdata", "redact", "outside", "kingfisher-rules.jsonl"), ReadSourceRules)
	pattern := func(rules []SourceRule, id string) *regexp.Regexp {
		t.Helper()
		for _, r := range rules {
			if r.Rule == id {
				re, err := CompileSourcePattern(r.Pattern)
				if err != nil {
					t.Fatalf("rule %s: %v", id, err)
				}
				return re
			}
		}
		t.Fatalf("no rule %s", id)
		return nil
	}
	kf := pattern(kfRules, npmLegacyRule)
	found := false
	for _, c := range cases {
		if c.ID != "np.npm.1/negative/0" {
			continue
		}
		found = true
		if c.Label != LabelNegative {
			t.Fatalf("%s is labelled %s", c.ID, c.Label)
		}
		if !kf.MatchString(c.Text) {
			t.Errorf("%s does not match %s: %q", npmLegacyRule, c.ID, c.Text)
		}
		if pattern(npRules, c.Rule).MatchString(c.Text) {
			t.Errorf("its own rule %s matches %s", c.Rule, c.ID)
		}
		uns, err := Unscored(cases, npRules)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := uns[c.ID]; !ok {
			t.Errorf("%s is scored", c.ID)
		}
	}
	if !found {
		t.Fatal("np.npm.1/negative/0 not in the corpus")
	}
}
