package noninterference

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// regressionPair is a small hand-made pair for the named side channels:
// one visible component of team-a whose masked description and secret
// differ between the sides and whose refs name a hidden entity (present
// only on side A, with a dependsOn back onto the visible one) and a
// missing one.
func regressionPair(t *testing.T) (a, b *Side, secretA string) {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	secretA, secretB := GitHubToken(r), GitHubToken(r)
	build := func(masked, secret string, hidden bool) []map[string]any {
		ents := []map[string]any{
			entity("Group", "team-a", md("Team A", "", nil, nil), map[string]any{"type": "team", "children": []any{}}),
			entity("Group", "team-b", md("Team B", "", nil, nil), map[string]any{"type": "team", "children": []any{}}),
			entity("User", "nia", md("", "", nil, nil), map[string]any{"memberOf": []any{"team-a"}}),
			entity("Component", "svc-x", md("Visible 100%_done\\x", masked+" deploy token "+secret, nil,
				map[string]any{"internal.acme.io/budget": masked}), map[string]any{
				"type": "service", "lifecycle": "production", "owner": "team-a", "system": "hid-sys",
				"dependsOn": []any{"component:default/hid-1", "component:default/gone-1"}}),
			entity("Component", "svc-y", md("Other visible", "plain", nil, nil), map[string]any{
				"type": "service", "lifecycle": "production", "owner": "team-a"}),
		}
		if hidden {
			ents = append(ents,
				entity("Component", "hid-1", md("Hidden codename", "Hidden aurora borealis "+secret, nil, nil), map[string]any{
					"type": "service", "lifecycle": "production", "owner": "team-b", "dependsOn": []any{"component:default/svc-x"}}),
				entity("System", "hid-sys", md("Hidden system", "", nil, nil), map[string]any{"owner": "team-b"}),
			)
		}
		return ents
	}
	var err error
	a, err = NewSide(context.Background(), t.TempDir(), build("Masked aurora words", secretA, true), Exact.Policy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b, err = NewSide(context.Background(), t.TempDir(), build("Masked zephyr other", secretB, false), Exact.Policy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return a, b, secretA
}

// same runs one call on both sides, requires identical observations and
// returns the structured content of side A.
func same(t *testing.T, a, b *Side, tool, args string) (Observation, map[string]any) {
	t.Helper()
	c := Call{Op: "call", Tool: tool, Args: args}
	oa, err := a.Do(context.Background(), nil, c)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := b.Do(context.Background(), nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if oa != ob {
		t.Fatalf("%s %s differs:\n  A [%s] %s\n  B [%s] %s", tool, args, oa.Class, oa.Result, ob.Class, ob.Result)
	}
	var m struct {
		Structured map[string]any `json:"structured"`
	}
	_ = json.Unmarshal([]byte(oa.Result), &m)
	return oa, m.Structured
}

func items(m map[string]any) []any { l, _ := m["items"].([]any); return l }

// TestTextSearchIgnoresMaskedFields: words of a masked description match
// nothing, on both sides.
func TestTextSearchIgnoresMaskedFields(t *testing.T) {
	a, b, _ := regressionPair(t)
	for _, text := range []string{"aurora", "Masked", "zephyr", "budget"} {
		if _, m := same(t, a, b, "catalog_search_entities", `{"text":"`+text+`"}`); len(items(m)) != 0 {
			t.Errorf("text %q matched %v", text, items(m))
		}
	}
	if _, m := same(t, a, b, "catalog_search_entities", `{"text":"visible"}`); len(items(m)) != 2 {
		t.Errorf("visible title words must still match: %v", items(m))
	}
}

// TestTextSearchIgnoresRedactedSecrets: pieces of a secret under
// redaction match nothing; the marker the caller sees is what matches.
func TestTextSearchIgnoresRedactedSecrets(t *testing.T) {
	a, b, secret := regressionPair(t)
	for _, text := range []string{secret[:8], secret[4:12], secret[len(secret)-6:], "ghp_"} {
		if _, m := same(t, a, b, "catalog_search_entities", `{"text":"`+text+`"}`); len(items(m)) != 0 {
			t.Errorf("secret piece %q matched %v", text, items(m))
		}
	}
	if _, m := same(t, a, b, "catalog_search_entities", `{"text":"deploy token"}`); len(items(m)) != 0 {
		t.Errorf("a masked description matched: %v", items(m))
	}
}

// TestTextSearchWildcardsAreLiteral: %, _ and \ are characters, not LIKE
// wildcards or escapes.
func TestTextSearchWildcardsAreLiteral(t *testing.T) {
	a, b, _ := regressionPair(t)
	cases := []struct {
		text string
		want int
	}{{`%`, 1}, {`_`, 1}, {`%_`, 1}, {`100%_done`, 1}, {`\\x`, 1}, {`_d`, 1}, {`1_0`, 0}, {`%%`, 0}, {`v%e`, 0}, {`\\%`, 0}}
	for _, c := range cases {
		if _, m := same(t, a, b, "catalog_search_entities", `{"text":"`+c.text+`"}`); len(items(m)) != c.want {
			t.Errorf("text %q: %d items, want %d", c.text, len(items(m)), c.want)
		}
	}
}

// TestHiddenAndMissingAnswerAlikeTwice: a hidden and a missing entity give
// the same answer and the same timing class, first and second time within
// the cache window.
func TestHiddenAndMissingAnswerAlikeTwice(t *testing.T) {
	a, _, _ := regressionPair(t)
	var classes [2][]string
	var texts [2][]string
	for i, ref := range []string{"component:default/hid-1", "component:default/gone-1"} {
		for range 2 {
			o, err := a.Do(context.Background(), nil, Call{Op: "call", Tool: "catalog_get_entity", Args: `{"ref":"` + ref + `"}`})
			if err != nil {
				t.Fatal(err)
			}
			classes[i] = append(classes[i], o.Class)
			texts[i] = append(texts[i], strings.ReplaceAll(o.Result, ref, "REF"))
		}
	}
	if strings.Join(classes[0], ",") != "uncached,cached" || strings.Join(classes[1], ",") != "uncached,cached" {
		t.Errorf("timing classes hidden %v, missing %v; want uncached,cached for both", classes[0], classes[1])
	}
	if texts[0][0] != texts[1][0] || texts[0][1] != texts[1][1] {
		t.Errorf("answers differ:\n  hidden  %v\n  missing %v", texts[0], texts[1])
	}
}

// TestOneRuleForNames: a ref to a hidden and one to a missing entity are
// both dropped, from relations and from ref-valued spec fields alike, in
// full entities, summaries, relation graphs and facets.
func TestOneRuleForNames(t *testing.T) {
	a, b, _ := regressionPair(t)
	_, full := same(t, a, b, "catalog_get_entity", `{"ref":"component:default/svc-x","detail":"full"}`)
	spec, _ := full["spec"].(map[string]any)
	if deps, _ := spec["dependsOn"].([]any); len(deps) != 0 {
		t.Errorf("spec.dependsOn keeps %v", deps)
	}
	if _, ok := spec["system"]; ok {
		t.Errorf("spec.system names a hidden system: %v", spec["system"])
	}
	if spec["owner"] != "team-a" {
		t.Errorf("spec.owner of a visible owner dropped: %v", spec["owner"])
	}
	for _, r := range full["relations"].([]any) {
		tr := r.(map[string]any)["targetRef"].(string)
		if strings.Contains(tr, "hid-") || strings.Contains(tr, "gone-") {
			t.Errorf("relation to %s kept", tr)
		}
	}
	_, _ = same(t, a, b, "catalog_get_entity", `{"ref":"component:default/svc-x"}`)
	_, _ = same(t, a, b, "catalog_get_relations", `{"ref":"component:default/svc-x","direction":"both","depth":2}`)
	_, _ = same(t, a, b, "catalog_find_owner", `{"ref":"component:default/svc-x"}`)
	_, _ = same(t, a, b, "catalog_find_dependents", `{"ref":"component:default/svc-x"}`)
	for _, f := range []string{"spec.dependsOn", "spec.system", "relations.dependencyOf", "relations.dependsOn", "relations.partOf"} {
		if _, m := same(t, a, b, "catalog_list_facets", `{"facet":"`+f+`"}`); len(m["values"].([]any)) != 0 {
			t.Errorf("facet %s lists %v", f, m["values"])
		}
	}
}

// TestCountsIgnoreHiddenData: facet counts, totalItems, page lengths and
// cursor presence are the same whether hidden entities exist or not.
func TestCountsIgnoreHiddenData(t *testing.T) {
	a, b, _ := regressionPair(t)
	_, m := same(t, a, b, "catalog_list_facets", `{"facet":"spec.type","kind":"Component"}`)
	if v := m["values"].([]any); len(v) != 1 || v[0].(map[string]any)["count"].(float64) != 2 {
		t.Errorf("spec.type facet = %v, want service 2", v)
	}
	_, m = same(t, a, b, "catalog_search_entities", `{"kind":"Component","limit":1}`)
	if len(items(m)) != 1 || m["nextCursor"] == nil {
		t.Errorf("first page = %v", m)
	}
	_, m = same(t, a, b, "catalog_search_entities", `{"kind":"Component","limit":5}`)
	if n, _ := m["totalItems"].(float64); n != 2 {
		t.Errorf("totalItems = %v, want 2", m["totalItems"])
	}
	_, m = same(t, a, b, "catalog_search_entities", `{"kind":"Component","type":"service","limit":1}`)
	if len(items(m)) != 1 || m["totalItems"] != nil {
		t.Errorf("page with a view filter = %v", m)
	}
}
