package noninterference

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

// Pairs and steps per run: `make test` (-short) runs shortPairs pairs,
// `make test-long` defaultPairs; NONINTERFERENCE_PAIRS sets the number of
// pairs for a longer run.
const (
	defaultPairs = 24
	shortPairs   = 8
	steps        = 60
)

func pairs(t *testing.T) int {
	if s := os.Getenv("NONINTERFERENCE_PAIRS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("NONINTERFERENCE_PAIRS=%q", s)
		}
		return n
	}
	if testing.Short() {
		return shortPairs
	}
	return defaultPairs
}

// TestNonInterference runs the same seeded call sequence against both
// catalogs of every pair and requires identical observations, and that no
// secret of either catalog ever appears in an answer.
func TestNonInterference(t *testing.T) {
	n := pairs(t)
	total := 0
	for seed := range uint64(n) {
		w := NewWorld(seed + 1)
		calls := w.Calls(steps)
		diffs, all, err := Run(context.Background(), t.TempDir(), t.TempDir(), w, calls)
		if err != nil {
			t.Fatalf("seed %d: %v", w.Seed, err)
		}
		total += len(calls)
		for i, d := range diffs {
			if i == 5 {
				t.Errorf("seed %d (%s): … %d differences in all", w.Seed, w.Variant, len(diffs))
				break
			}
			t.Errorf("seed %d (%s): %s", w.Seed, w.Variant, d)
		}
		if leaks := Leaks(w, all); len(leaks) > 0 {
			t.Errorf("seed %d: secrets in answers: %q", w.Seed, leaks)
		}
	}
	t.Logf("%d catalog pairs, %d calls per side, 0 differences required", n, total)
}

// TestWorldDiffersOnlyInHiddenData checks the generator itself: the two
// catalogs differ (or the harness would prove nothing), the visible
// entities have the same refs and structure, and every fake secret is
// format-valid.
func TestWorldDiffersOnlyInHiddenData(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		w := NewWorld(seed)
		a, b := w.Catalogs()
		refs := func(l []map[string]any) map[string]bool {
			m := map[string]bool{}
			for _, e := range l {
				m[strings.ToLower(e["kind"].(string))+":default/"+e["metadata"].(map[string]any)["name"].(string)] = true
			}
			return m
		}
		ra, rb := refs(a), refs(b)
		same := len(ra) == len(rb)
		for r := range ra {
			same = same && rb[r]
		}
		for _, v := range w.Visible {
			if !ra[v] || !rb[v] {
				t.Errorf("seed %d: visible %s missing on one side", seed, v)
			}
		}
		for _, m := range w.Missing {
			if ra[m] || rb[m] {
				t.Errorf("seed %d: missing %s exists", seed, m)
			}
		}
		if same && len(a) == len(b) {
			t.Logf("seed %d: same hidden entities on both sides (values still differ)", seed)
		}
		if len(w.Secrets) == 0 {
			t.Errorf("seed %d: no secrets", seed)
		}
		for _, s := range w.Secrets {
			if strings.HasPrefix(s, "ghp_") && !corpus.ValidChecksum(s) {
				t.Errorf("seed %d: %s has no valid checksum", seed, s)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	if tok := GitHubToken(r); len(tok) != 40 || !corpus.ValidChecksum(tok) {
		t.Errorf("GitHubToken = %q", tok)
	}
}

// TestHarnessDetectsAnInterference makes sure the harness can fail: two
// catalogs that differ in a visible title must give a difference.
func TestHarnessDetectsAnInterference(t *testing.T) {
	w := NewWorld(3)
	a, b := w.Catalogs()
	for _, e := range b {
		if e["kind"] == "Component" && e["metadata"].(map[string]any)["name"] == "svc-0" {
			e["metadata"].(map[string]any)["title"] = "A visible difference"
		}
	}
	w.sides[0], w.sides[1] = a, b
	calls := []Call{{Op: "call", Tool: "catalog_get_entity", Args: `{"ref":"component:default/svc-0"}`}}
	diffs, _, err := Run(context.Background(), t.TempDir(), t.TempDir(), w, calls)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 1 {
		t.Fatalf("a visible difference gave %d differences, want 1", len(diffs))
	}
}
