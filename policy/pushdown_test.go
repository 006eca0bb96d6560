package policy

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestCombine(t *testing.T) {
	p := func(cs ...Clause) Pushdown { return Pushdown{Clauses: cs} }
	tests := []struct {
		name      string
		user      []Clause
		pd        Pushdown
		want      []string
		wantEmpty bool
	}{
		{"no user filter: policy clauses", nil, p(Clause{"kind": {"component"}}), []string{"kind=component"}, false},
		{"None short-circuits", []Clause{{"kind": {"api"}}}, Pushdown{None: true}, nil, true},
		{"All keeps user", []Clause{{"kind": {"api"}}}, Pushdown{All: true}, []string{"kind=api"}, false},
		{"All and no user: no filter", nil, Pushdown{All: true}, nil, false},
		{"distributes AND over OR",
			[]Clause{{"spec.type": {"service"}}, {"spec.type": {"website"}}},
			p(Clause{"kind": {"component"}}, Clause{"relations.ownedby": {"group:default/team-a"}}),
			[]string{
				"kind=component,spec.type=service",
				"kind=component,spec.type=website",
				"relations.ownedby=group:default/team-a,spec.type=service",
				"relations.ownedby=group:default/team-a,spec.type=website",
			}, false},
		{"single-valued conflict drops clause",
			[]Clause{{"kind": {"user"}}, {"kind": {"component", "api"}}},
			p(Clause{"kind": {"component", "system"}}),
			[]string{"kind=component"}, false},
		{"every clause conflicts: empty", []Clause{{"kind": {"user"}}}, p(Clause{"kind": {"component"}}), nil, true},
		{"exists narrowed by value", []Clause{{"kind": nil}}, p(Clause{"kind": {"api"}}), []string{"kind=api"}, false},
		{"value keeps when policy says exists", []Clause{{"metadata.annotations.a": {"x"}}}, p(Clause{"metadata.annotations.a": nil}), []string{"metadata.annotations.a=x"}, false},
		{"multi-valued key keeps the user's values",
			[]Clause{{"relations.ownedby": {"group:default/team-b"}}},
			p(Clause{"relations.ownedby": {"group:default/team-a"}}),
			[]string{"relations.ownedby=group:default/team-b"}, false},
		{"non-ASCII values are not intersected (Unicode case rules differ)",
			[]Clause{{"metadata.annotations.a": {"ÄÖ"}}},
			p(Clause{"metadata.annotations.a": {"äö"}}),
			[]string{"metadata.annotations.a=ÄÖ"}, false},
		{"user key case folded and collisions ANDed",
			[]Clause{{"Kind": {"user"}, "kind": {"component"}}},
			p(Clause{"metadata.namespace": {"default"}}),
			nil, true},
		{"user key case folded",
			[]Clause{{"KIND": {"API"}}},
			p(Clause{"kind": {"api"}}),
			[]string{"kind=API"}, false},
		{"empty user clause means everything", []Clause{{"kind": {"api"}}, {}}, p(Clause{"kind": {"component"}}), []string{"kind=component"}, false},
		{"zero pushdown fails closed", []Clause{{"kind": {"api"}}}, Pushdown{}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, empty := Combine(tc.user, tc.pd)
			if empty != tc.wantEmpty {
				t.Fatalf("empty = %v, want %v (clauses %v)", empty, tc.wantEmpty, got)
			}
			var enc []string
			for _, c := range got {
				s, err := c.Encode()
				if err != nil {
					t.Fatalf("Encode(%v): %v", c, err)
				}
				enc = append(enc, s)
			}
			sort.Strings(enc)
			if !reflect.DeepEqual(enc, tc.want) {
				t.Fatalf("filters = %q, want %q", enc, tc.want)
			}
		})
	}
}

func TestCombineDeterministic(t *testing.T) {
	user := []Clause{{"spec.type": {"b", "a"}}, {"spec.lifecycle": {"x"}}}
	pd := Pushdown{Clauses: []Clause{{"kind": {"component"}}, {"kind": {"api"}, "metadata.namespace": {"default"}}}}
	first, _ := Combine(user, pd)
	for i := 0; i < 20; i++ {
		again, _ := Combine(user, pd)
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("Combine not deterministic: %v vs %v", first, again)
		}
	}
}

func TestPushdownShapes(t *testing.T) {
	kind := func(ks ...string) Condition { return leaf(RuleIsEntityKind, map[string]any{"kinds": ks}) }
	tests := []struct {
		name  string
		allow []Condition
		deny  []Condition
		want  string
	}{
		{"kind", []Condition{kind("component", "api")}, nil, "kind=api,kind=component"},
		{"owner resolves ownershipRefs", []Condition{leaf(RuleIsEntityOwner, map[string]any{"claims": []string{ClaimOwnershipRefs}})}, nil,
			"relations.ownedby=group:default/team-a,relations.ownedby=user:default/jane"},
		{"annotation exists", []Condition{leaf(RuleHasAnnotation, map[string]any{"annotation": "Backstage.io/Source"})}, nil, "metadata.annotations.backstage.io/source"},
		{"annotation value with comma: exists only", []Condition{leaf(RuleHasAnnotation, map[string]any{"annotation": "a", "value": "x,y"})}, nil, "metadata.annotations.a"},
		{"annotation key with '=': not pushed", []Condition{leaf(RuleHasAnnotation, map[string]any{"annotation": "a=b"})}, nil, "ALL"},
		{"label", []Condition{leaf(RuleHasLabel, map[string]any{"label": "tier"})}, nil, "metadata.labels.tier"},
		{"spec value", []Condition{leaf(RuleHasSpec, map[string]any{"key": "type", "value": "service"})}, nil, "spec.type=service"},
		{"metadata etag not indexed", []Condition{leaf(RuleHasMetadata, map[string]any{"key": "etag"})}, nil, "ALL"},
		{"namespace", []Condition{leaf(RuleInNamespace, map[string]any{"namespaces": []string{"default"}})}, nil, "metadata.namespace=default"},
		{"allOf merges", []Condition{{AllOf: []Condition{kind("component"), leaf(RuleInNamespace, map[string]any{"namespaces": []string{"default"}})}}}, nil,
			"kind=component,metadata.namespace=default"},
		{"allOf disjoint kinds: none", []Condition{{AllOf: []Condition{kind("component"), kind("api")}}}, nil, "NONE"},
		{"anyOf unions", []Condition{{AnyOf: []Condition{kind("component"), leaf(RuleHasLabel, map[string]any{"label": "x"})}}}, nil,
			"kind=component | metadata.labels.x"},
		{"not cannot be pushed", []Condition{{Not: &Condition{Rule: RuleIsEntityKind, Params: map[string]any{"kinds": []string{"api"}}}}}, nil, "ALL"},
		{"not not is pushed", []Condition{{Not: &Condition{Not: &Condition{Rule: RuleIsEntityKind, Params: map[string]any{"kinds": []string{"api"}}}}}}, nil, "kind=api"},
		{"not anyOf is allOf of nots: all", []Condition{{Not: &Condition{AnyOf: []Condition{kind("api")}}}}, nil, "ALL"},
		{"allOf with a not keeps the rest", []Condition{{AllOf: []Condition{kind("component"), {Not: &Condition{Rule: RuleHasLabel, Params: map[string]any{"label": "x"}}}}}}, nil, "kind=component"},
		{"deny is not pushed", []Condition{kind("component")}, []Condition{leaf(RuleHasLabel, map[string]any{"label": "x"})}, "kind=component"},
		{"denied kinds are subtracted", []Condition{kind("component", "api")}, []Condition{kind("api")}, "kind=component"},
		{"denied kinds subtract to none", []Condition{kind("api")}, []Condition{kind("API")}, "NONE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, oneRole(tc.allow, tc.deny))
			pd := p.Grant(jane).Pushdown()
			got := ""
			switch {
			case pd.None:
				got = "NONE"
			case pd.All:
				got = "ALL"
			default:
				var parts []string
				for _, c := range pd.Clauses {
					s, err := c.Encode()
					if err != nil {
						t.Fatalf("Encode: %v", err)
					}
					parts = append(parts, s)
				}
				got = strings.Join(parts, " | ")
			}
			if got != tc.want {
				t.Fatalf("pushdown = %q, want %q", got, tc.want)
			}
		})
	}
}

// ---- reference model of Backstage's search index and filter semantics ----

// backstageRow is one row of Backstage's search table; value nil = NULL.
type backstageRow struct {
	key   string
	value *string
}

var specialKeys = map[string]bool{"attachments": true, "relations": true, "status": true,
	"metadata.name": true, "metadata.namespace": true, "metadata.uid": true, "metadata.etag": true}

func jsLen(s string) int { return len(utf16.Encode([]rune(s))) }

func jsString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// indexEntity mirrors buildEntitySearch: traverse, special keys, relations,
// lowercasing, and the 200-character limits.
func indexEntity(e map[string]any) []backstageRow {
	type kv struct {
		key   string
		value any
		null  bool
	}
	var raw []kv
	var visit func(path string, cur any)
	visit = func(path string, cur any) {
		if specialKeys[path] {
			return
		}
		switch t := cur.(type) {
		case nil:
			raw = append(raw, kv{key: path, null: true})
		case string, bool, float64:
			raw = append(raw, kv{key: path, value: t})
		case []any:
			for _, item := range t {
				visit(path, item)
				if s, ok := item.(string); ok {
					pk := path + "." + s
					dup := false
					for _, r := range raw {
						if strings.EqualFold(r.key, pk) {
							dup = true
						}
					}
					if !dup {
						raw = append(raw, kv{key: pk, value: true})
					}
				}
			}
		case map[string]any:
			keys := sortedKeys(t)
			for _, k := range keys {
				p := k
				if path != "" {
					p = path + "." + k
				}
				visit(p, t[k])
			}
		}
	}
	visit("", e)
	m := e["metadata"].(map[string]any)
	add := func(k string, v any) {
		if v == nil {
			raw = append(raw, kv{key: k, null: true})
		} else {
			raw = append(raw, kv{key: k, value: v})
		}
	}
	add("metadata.name", m["name"])
	add("metadata.namespace", m["namespace"])
	add("metadata.uid", m["uid"])
	if ns, _ := m["namespace"].(string); ns == "" {
		add("metadata.namespace", "default")
	}
	rels, _ := e["relations"].([]any)
	for _, r := range rels {
		rm := r.(map[string]any)
		add("relations."+rm["type"].(string), rm["targetRef"])
	}
	var rows []backstageRow
	for _, r := range raw {
		key := strings.ToLower(r.key)
		if jsLen(key) > 200 {
			continue
		}
		if r.null {
			rows = append(rows, backstageRow{key: key})
			continue
		}
		v := strings.ToLower(jsString(r.value))
		if jsLen(v) > 200 {
			rows = append(rows, backstageRow{key: key})
			continue
		}
		rows = append(rows, backstageRow{key: key, value: &v})
	}
	return rows
}

// parseBackstageFilter mirrors parseEntityFilterString: split on ',', trim,
// split on the first '=', bare key = exists, repeated keys OR their values.
func parseBackstageFilter(s string) map[string][]string {
	out := map[string][]string{}
	for _, st := range strings.Split(s, ",") {
		st = strings.TrimSpace(st)
		if st == "" {
			continue
		}
		k, v, hasEq := strings.Cut(st, "=")
		k = strings.TrimSpace(k)
		if !hasEq {
			if _, ok := out[k]; !ok {
				out[k] = nil
			}
			continue
		}
		out[k] = append(out[k], strings.TrimSpace(v))
	}
	return out
}

func normalizeForCompare(c Clause) map[string][]string {
	out := map[string][]string{}
	for k, v := range c {
		if len(v) == 0 {
			out[k] = nil
		} else {
			out[k] = sortUnique(v)
		}
	}
	return out
}

// backstageMatches reports whether the indexed entity matches one parsed
// filter (all keys; exists or value in list, case-insensitive).
func backstageMatches(rows []backstageRow, f map[string][]string) bool {
	for k, vals := range f {
		lk := strings.ToLower(k)
		hit := false
		for _, r := range rows {
			if r.key != lk {
				continue
			}
			if len(vals) == 0 {
				hit = true
				break
			}
			if r.value == nil {
				continue
			}
			for _, v := range vals {
				if strings.ToLower(v) == *r.value {
					hit = true
				}
			}
			if hit {
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// ---- random generators ----

var (
	genKinds   = []string{"Component", "API", "User", "Group", "System"}
	genNS      = []string{"", "default", "payments", "Payments"}
	genOwners  = []string{"group:default/team-a", "group:default/team-b", "user:default/jane", "group:payments/team-c", "Group:Default/Team-A", strings.Repeat("g", 210)}
	genAnnKeys = []string{"acme.io/confidential", "backstage.io/techdocs-ref", "vault.io/path", "Mixed.Case/Key"}
	genVals    = []string{"a", "b", "A", "yes", "x,y", strings.Repeat("v", 205), "", "äö", "ÄÖ"}
	genTypes   = []string{"service", "website", "library", "Service"}
	genTags    = []string{"java", "go", "Go", "rust"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.Intn(len(xs))] }

func randEntity(r *rand.Rand, i int) map[string]any {
	e := ent(pick(r, genKinds), pick(r, genNS), fmt.Sprintf("e%d", i))
	for j := r.Intn(3); j > 0; j-- {
		withAnn(pick(r, genAnnKeys), pick(r, genVals))(e)
	}
	if r.Intn(2) == 0 {
		withLabel(pick(r, []string{"tier", "Tier", "team"}), pick(r, genVals))(e)
	}
	if r.Intn(3) > 0 {
		withSpec("type", pick(r, genTypes))(e)
	}
	if r.Intn(2) == 0 {
		var tags []any
		for j := r.Intn(3); j > 0; j-- {
			tags = append(tags, pick(r, genTags))
		}
		withSpec("tags", tags)(e)
	}
	switch r.Intn(5) {
	case 0:
		withSpec("lifecycle", nil)(e)
	case 1:
		withSpec("replicas", float64(r.Intn(3)))(e)
	case 2:
		withSpec("nested", map[string]any{"deep": pick(r, genVals)})(e)
	case 3:
		withSpec("flag", r.Intn(2) == 0)(e)
	}
	if r.Intn(4) == 0 {
		withMeta("title", pick(r, genVals))(e)
	}
	if r.Intn(5) == 0 {
		withMeta("etag", "abc")(e)
	}
	for j := r.Intn(3); j > 0; j-- {
		ownedBy(pick(r, genOwners))(e)
	}
	if r.Intn(6) == 0 {
		rels, _ := e["relations"].([]any)
		e["relations"] = append(rels, map[string]any{"type": "partOf", "targetRef": "system:default/s"})
	}
	return e
}

func randLeaf(r *rand.Rand) Condition {
	switch r.Intn(8) {
	case 0:
		ks := []string{pick(r, genKinds)}
		if r.Intn(2) == 0 {
			ks = append(ks, pick(r, genKinds))
		}
		return leaf(RuleIsEntityKind, map[string]any{"kinds": ks})
	case 1:
		ns := []string{pick(r, []string{"default", "payments", "other"})}
		if r.Intn(2) == 0 {
			ns = append(ns, pick(r, []string{"default", "payments", "other"}))
		}
		return leaf(RuleInNamespace, map[string]any{"namespaces": ns})
	case 2:
		claims := []string{pick(r, []string{ClaimCurrentUser, ClaimOwnershipRefs, "group:default/team-b", "group:payments/team-c"})}
		if r.Intn(3) == 0 {
			claims = append(claims, ClaimOwnershipRefs)
		}
		return leaf(RuleIsEntityOwner, map[string]any{"claims": claims})
	case 3:
		p := map[string]any{"annotation": pick(r, genAnnKeys)}
		if r.Intn(2) == 0 {
			p["value"] = pick(r, genVals)
		}
		return leaf(RuleHasAnnotation, p)
	case 4:
		return leaf(RuleHasLabel, map[string]any{"label": pick(r, []string{"tier", "Tier", "team", "none"})})
	case 5:
		p := map[string]any{"key": pick(r, []string{"title", "name", "etag", "namespace", "annotations"})}
		if r.Intn(2) == 0 {
			p["value"] = pick(r, append([]string{"e1", "e2", "payments"}, genVals...))
		}
		return leaf(RuleHasMetadata, p)
	default:
		p := map[string]any{"key": pick(r, []string{"type", "tags", "lifecycle", "replicas", "nested", "nested.deep", "flag"})}
		if r.Intn(2) == 0 {
			p["value"] = pick(r, append(append([]string{"1", "true"}, genTypes...), append(genTags, genVals...)...))
		}
		return leaf(RuleHasSpec, p)
	}
}

func randCond(r *rand.Rand, depth int) Condition {
	if depth <= 0 || r.Intn(3) == 0 {
		return randLeaf(r)
	}
	switch r.Intn(3) {
	case 0:
		c := randCond(r, depth-1)
		return Condition{Not: &c}
	case 1:
		n := 1 + r.Intn(3)
		var kids []Condition
		for i := 0; i < n; i++ {
			kids = append(kids, randCond(r, depth-1))
		}
		return Condition{AllOf: kids}
	default:
		n := 1 + r.Intn(3)
		var kids []Condition
		for i := 0; i < n; i++ {
			kids = append(kids, randCond(r, depth-1))
		}
		return Condition{AnyOf: kids}
	}
}

func randPolicy(r *rand.Rand) Document {
	doc := Document{Version: 1, Scopes: allScopes}
	for i := 0; i <= r.Intn(3); i++ {
		role := Role{Name: fmt.Sprintf("r%d", i), Tools: []string{ScopeRead}}
		if r.Intn(2) == 0 {
			role.Tools = append(role.Tools, ScopeReadUsers)
		}
		if r.Intn(4) == 0 {
			role.Bind.IdPGroups = []string{"sales"}
		} else {
			role.Bind.Authenticated = true
		}
		for j := r.Intn(3); j >= 0; j-- {
			role.Entities.Allow = append(role.Entities.Allow, randCond(r, 3))
		}
		if r.Intn(3) == 0 {
			role.Entities.Allow = nil
		}
		for j := r.Intn(3); j > 0; j-- {
			role.Entities.Deny = append(role.Entities.Deny, randCond(r, 2))
		}
		doc.Roles = append(doc.Roles, role)
	}
	return doc
}

var userKeys = []string{"kind", "Kind", "metadata.namespace", "spec.type", "relations.ownedby", "metadata.annotations.acme.io/confidential", "spec.tags", "spec.tags.go", "metadata.labels.tier", "spec.lifecycle"}

func randUserClauses(r *rand.Rand) []Clause {
	if r.Intn(4) == 0 {
		return nil
	}
	var out []Clause
	for i := r.Intn(3); i >= 0; i-- {
		c := Clause{}
		for j := r.Intn(3); j >= 0; j-- {
			k := pick(r, userKeys)
			if r.Intn(4) == 0 {
				c[k] = nil
				continue
			}
			pool := map[string][]string{
				"kind": genKinds, "Kind": genKinds, "metadata.namespace": {"default", "payments"},
				"spec.type": genTypes, "relations.ownedby": genOwners[:5], "spec.tags": genTags,
				"spec.tags.go": {"true"}, "metadata.labels.tier": {"a", "b", "äö"},
				"metadata.annotations.acme.io/confidential": {"a", "yes", "ÄÖ"}, "spec.lifecycle": {"x"},
			}[k]
			c[k] = append(c[k], pick(r, pool))
		}
		out = append(out, c)
	}
	return out
}

func randSubject(r *rand.Rand) Subject {
	s := jane
	if r.Intn(5) == 0 {
		s.IdPGroups = []string{"sales"}
	}
	if r.Intn(4) == 0 {
		s.OwnershipRefs = []string{"user:default/jane", "group:default/team-b", "group:payments/team-c"}
	}
	if r.Intn(6) == 0 {
		s.Scopes = []string{"other"}
	}
	return s
}

// TestPushdownProperty: for random entities, policies, subjects and user
// filters, fetching with the Combine'd filters (as Backstage would evaluate
// them) and then post-filtering with Grant.Entity gives exactly the entities
// that the user's filters plus Grant.Entity give on the full set; and the
// pushed-down set always contains every allowed entity.
func TestPushdownProperty(t *testing.T) {
	r := rand.New(rand.NewSource(20240601))
	iterations := 4000
	if testing.Short() {
		iterations = 500
	}
	narrowed, emptied, widened := 0, 0, 0
	for it := 0; it < iterations; it++ {
		var entities []map[string]any
		var rows [][]backstageRow
		for i := 0; i < 40; i++ {
			e := randEntity(r, i)
			entities = append(entities, e)
			rows = append(rows, indexEntity(e))
		}
		doc := randPolicy(r)
		p, err := Compile(doc)
		if err != nil {
			t.Fatalf("iteration %d: random policy does not compile: %v", it, err)
		}
		g := p.Grant(randSubject(r))
		user := randUserClauses(r)

		var userFilters []map[string][]string
		for _, c := range user {
			userFilters = append(userFilters, normalizeForCompare(c))
		}
		matchesAny := func(i int, fs []map[string][]string) bool {
			if len(fs) == 0 {
				return true
			}
			for _, f := range fs {
				if backstageMatches(rows[i], f) {
					return true
				}
			}
			return false
		}

		clauses, empty := Combine(user, g.Pushdown())
		var pushed []map[string][]string
		for _, c := range clauses {
			s, err := c.Encode()
			if err != nil {
				t.Fatalf("iteration %d: Encode(%v): %v", it, c, err)
			}
			pushed = append(pushed, parseBackstageFilter(s))
		}
		var want, got []int
		fetched := 0
		for i, e := range entities {
			allowed := g.Entity(e).Allowed
			if allowed && matchesAny(i, userFilters) {
				want = append(want, i)
			}
			if empty {
				continue
			}
			if matchesAny(i, pushed) {
				fetched++
				if allowed {
					got = append(got, i)
				}
			} else if allowed && matchesAny(i, userFilters) {
				t.Fatalf("iteration %d: allowed entity %v excluded by pushdown %v (user %v)\npolicy %+v", it, e, pushed, user, doc)
			}
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("iteration %d: pushdown+post-filter = %v, want %v\nfilters %v\nuser %v", it, got, want, pushed, user)
		}
		// The scan pushdown is wider, never narrower: with the
		// post-filter it selects the same entities.
		scanClauses, scanEmpty := Combine(user, g.Pushdown().ForScan())
		if scanEmpty && !empty {
			t.Fatalf("iteration %d: the scan pushdown is empty, the pushdown is not", it)
		}
		var scanPushed []map[string][]string
		for _, c := range scanClauses {
			s, err := c.Encode()
			if err != nil {
				t.Fatalf("iteration %d: Encode(%v): %v", it, c, err)
			}
			scanPushed = append(scanPushed, parseBackstageFilter(s))
		}
		if len(scanPushed) != len(pushed) || !reflect.DeepEqual(scanPushed, pushed) {
			widened++
		}
		var scanGot []int
		for i, e := range entities {
			if !scanEmpty && matchesAny(i, scanPushed) && g.Entity(e).Allowed {
				scanGot = append(scanGot, i)
			}
		}
		if !reflect.DeepEqual(want, scanGot) {
			t.Fatalf("iteration %d: scan pushdown+post-filter = %v, want %v\nfilters %v\nuser %v", it, scanGot, want, scanPushed, user)
		}
		if empty {
			emptied++
		} else if fetched < len(entities) {
			narrowed++
		}
	}
	// The property must not hold vacuously: the pushdown must actually narrow
	// queries in many cases, and sometimes prove them empty.
	if narrowed < iterations/4 || emptied == 0 {
		t.Fatalf("pushdown rarely narrows: narrowed=%d emptied=%d of %d", narrowed, emptied, iterations)
	}
	if widened < iterations/50 {
		t.Fatalf("the scan pushdown rarely differs from the pushdown: %d of %d", widened, iterations)
	}
	t.Logf("%d iterations: narrowed %d, emptied %d, scan pushdown wider %d", iterations, narrowed, emptied, widened)
}

func FuzzCombine(f *testing.F) {
	f.Add("kind", "component", "kind", "api", "spec.type", "service")
	f.Add("Kind", "user", "kind", "user", "relations.ownedby", "group:default/a")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, pk, pv string) {
		user := []Clause{{k1: {v1}}, {k2: {v2}}}
		pd := Pushdown{Clauses: []Clause{{asciiLower(pk): {pv}}}}
		clauses, empty := Combine(user, pd)
		if empty && len(clauses) != 0 {
			t.Fatal("empty with clauses")
		}
		if _, err := (Clause{asciiLower(pk): {pv}}).Encode(); err != nil {
			return
		}
		// Every combined clause must still carry the policy key: the policy
		// is ANDed into each clause, never ORed beside it.
		for _, c := range clauses {
			if _, ok := c[asciiLower(pk)]; !ok {
				t.Fatalf("clause %v lost the policy key %q", c, pk)
			}
		}
	})
}

func TestPushdownForScan(t *testing.T) {
	enc := func(p Pushdown) string {
		if p.All || p.None {
			return fmt.Sprintf("all=%v none=%v", p.All, p.None)
		}
		var out []string
		for _, c := range p.Clauses {
			s, err := c.Encode()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return strings.Join(out, " | ")
	}
	for _, tc := range []struct {
		in   Pushdown
		want string
	}{
		{Pushdown{Clauses: []Clause{{"kind": {"component"}, "metadata.namespace": {"default", "platform"}}}}, "kind=component"},
		{Pushdown{Clauses: []Clause{{"metadata.namespace": {"platform", "DEFAULT"}}}}, "all=true none=false"},
		{Pushdown{Clauses: []Clause{{"metadata.namespace": {"default"}}}}, "metadata.namespace=default"},
		{Pushdown{Clauses: []Clause{{"metadata.namespace": {"payments", "platform"}}}}, "metadata.namespace=payments,metadata.namespace=platform"},
		{Pushdown{Clauses: []Clause{{"kind": {"api"}, "metadata.namespace": {"default", "x"}}, {"kind": {"api"}}}}, "kind=api"},
		{Pushdown{None: true}, "all=false none=true"},
	} {
		if got := enc(tc.in.ForScan()); got != tc.want {
			t.Errorf("%s: ForScan = %s, want %s", enc(tc.in), got, tc.want)
		}
	}
}
