package noninterference

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

// Caller is the user every call acts for: a verified user of group
// team-a with the token scope mcp:catalog.
const Caller = "user:default/nia"

// Variant is the shape of the caller's policy.
type Variant int

const (
	// Exact is owner and kind rules that Backstage's filters express exactly.
	Exact Variant = iota
	// Deny is the same plus a deny rule on a label, which is only re-checked
	// after fetch (the query is a superset, pages must be refilled).
	Deny
)

func (v Variant) String() string {
	if v == Deny {
		return "deny"
	}
	return "exact"
}

// Policy returns the policy of a variant: what the caller owns plus every
// group, component descriptions and internal annotations masked.
func (v Variant) Policy() string {
	deny := ""
	if v == Deny {
		deny = "\n      deny:\n        - HAS_LABEL: { label: confidential }"
	}
	return `version: 1
scopes:
  "mcp:catalog": ["catalog:read", "catalog:api-definitions"]
roles:
  - name: nia
    bind: { users: ["` + Caller + `"] }
    tools: ["catalog:read", "catalog:api-definitions"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
        - IS_ENTITY_KIND: { kinds: [group] }` + deny + `
    fieldMasks:
      - kinds: [component]
        fields: ["metadata.description"]
      - fields: ["metadata.annotations.internal.acme.io/*"]
`
}

// World is a seeded pair of catalogs that differ only in what Caller may
// not see, with the pools of refs and text fragments the calls draw from.
type World struct {
	Seed    uint64
	Variant Variant

	// Refs the calls use: visible, hidden (present on one side, both or
	// neither) and missing (on no side).
	Visible, Hidden, Missing []string
	// APIs are API refs of every class.
	APIs []string
	// Fragments are search texts: pieces of hidden names, masked values
	// and secrets, LIKE wildcards, visible words.
	Fragments []string
	// Secrets are every secret value placed in either catalog; none may
	// ever appear in an answer.
	Secrets []string

	sides [2][]map[string]any
}

var words = []string{"aurora", "basilisk", "cobalt", "dynamo", "ember", "falcon", "granite", "harbor",
	"ion", "jade", "krypton", "lumen", "mistral", "nebula", "onyx", "prism"}

// NewWorld generates the pair for seed. The variant alternates with the seed.
func NewWorld(seed uint64) *World {
	w := &World{Seed: seed, Variant: Variant(seed % 2)}
	for side := range 2 {
		w.sides[side] = w.build(side)
	}
	w.Fragments = append(w.Fragments, "%", "_", "\\", "%%", "a_", "_a", "%e%", "\\%", "REDACTED", "redacted:", "ghp_", "postgres", "svc", "service", "team")
	for _, s := range w.Secrets {
		w.Fragments = append(w.Fragments, s[:min(len(s), 8)], s[len(s)/2:len(s)/2+4])
	}
	for _, wd := range words {
		w.Fragments = append(w.Fragments, wd, wd[:3])
	}
	return w
}

// Catalogs returns the two catalogs (fresh copies, safe to hand to a
// catalog that normalises them).
func (w *World) Catalogs() (a, b []map[string]any) {
	return clone(w.sides[0]), clone(w.sides[1])
}

func clone(in []map[string]any) []map[string]any {
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// build generates one side. Structure comes from st, which is seeded the
// same for both sides, so the visible entities are identical apart from
// masked and secret values, drawn from sd, which differs per side.
func (w *World) build(side int) []map[string]any {
	st := rand.New(rand.NewPCG(w.Seed, 0x6e69))
	sd := rand.New(rand.NewPCG(w.Seed, uint64(0x5eed+side)))
	record := side == 0 // pools are recorded once
	var out []map[string]any
	add := func(e map[string]any) { out = append(out, e) }
	// The kind of a visible secret is structure (its redaction marker
	// names it); its value differs per side. Secrets of hidden entities
	// and of masked fields are drawn from sd alone.
	secretOf := func(kindRand, valueRand *rand.Rand) string {
		var s string
		if kindRand.IntN(2) == 0 {
			s = GitHubToken(valueRand)
		} else {
			s = "postgres://svc:" + alnum(valueRand, 18) + "@db.acme.internal:5432/orders"
		}
		w.Secrets = append(w.Secrets, s)
		return s
	}
	secret := func() string { return secretOf(st, sd) }
	hiddenSecret := func() string { return secretOf(sd, sd) }
	prose := func(r *rand.Rand, n int) string {
		p := make([]string, n)
		for i := range p {
			p[i] = words[r.IntN(len(words))]
		}
		return strings.Join(p, " ")
	}

	// Pools (structure).
	visComp := names("svc", 8)
	visAPI := names("api", 4)
	visSys := names("sys", 2)
	hidComp := names("hid-c", 6)
	hidAPI := names("hid-api", 3)
	hidSys := names("hid-sys", 2)
	confComp := names("conf-c", 3) // team-a's, hidden by the deny rule only
	confGrp := names("conf-grp", 2)
	hidUser := names("user-h", 3)
	goneComp, goneAPI, goneSys := names("gone-c", 3), names("gone-api", 2), names("gone-sys", 1)
	ref := func(kind string, ns ...string) []string {
		var o []string
		for _, n := range ns {
			o = append(o, kind+":default/"+n)
		}
		return o
	}
	if record {
		w.Visible = concat(ref("component", visComp...), ref("api", visAPI...), ref("system", visSys...),
			[]string{"group:default/team-a", "group:default/team-b", "domain:default/dom-a", "resource:default/db-a"})
		w.Hidden = concat(ref("component", hidComp...), ref("api", hidAPI...), ref("system", hidSys...),
			[]string{"domain:default/hid-dom", Caller, "user:default/user-h-0"})
		if w.Variant == Deny {
			w.Hidden = concat(w.Hidden, ref("component", confComp...), ref("group", confGrp...))
		}
		w.Missing = concat(ref("component", goneComp...), ref("api", goneAPI...), ref("system", goneSys...),
			[]string{"group:default/gone-team", "domain:default/gone-dom"})
		w.APIs = concat(ref("api", visAPI...), ref("api", hidAPI...), ref("api", goneAPI...))
	}
	compTargets := concat(ref("component", visComp...), ref("component", hidComp...), ref("component", goneComp...))
	if w.Variant == Deny {
		compTargets = concat(compTargets, ref("component", confComp...))
	}
	apiTargets := concat(visAPI, hidAPI, goneAPI)
	sysTargets := concat(visSys, hidSys, goneSys)

	// Groups and the caller: identical on both sides.
	add(entity("Group", "team-a", md("Team A", "The caller's team", nil, nil), map[string]any{"type": "team", "children": []any{}}))
	add(entity("Group", "team-b", md("Team B", "Another team", nil, nil), map[string]any{"type": "team", "children": []any{}}))
	add(entity("Group", "team-c", md("", "", nil, nil), map[string]any{"type": "team", "children": []any{}, "parent": "team-b"}))
	add(entity("User", "nia", md("", "", nil, nil), map[string]any{"memberOf": []any{"team-a"},
		"profile": map[string]any{"email": "nia@acme.example", "displayName": "Nia"}}))
	add(entity("Domain", "dom-a", md("Domain A", "Visible domain", nil, nil), map[string]any{"owner": "team-a"}))

	// Visible entities: structure from st, masked and secret values from sd.
	for i, n := range visSys {
		add(entity("System", n, md("System "+n, "System "+prose(st, 2), nil, nil), map[string]any{
			"owner": "team-a", "domain": pick(st, []string{"dom-a", "hid-dom", "gone-dom"})}))
		_ = i
	}
	for _, n := range visAPI {
		desc := "API " + prose(st, 3)
		if st.IntN(2) == 0 {
			desc += " key " + secret() // redacted, not masked
		}
		add(entity("API", n, md("API "+n, desc, st.IntN(2) == 0, map[string]any{"internal.acme.io/cost": fmt.Sprint(sd.IntN(9999))}),
			map[string]any{"type": "openapi", "lifecycle": pick(st, []string{"production", "experimental"}), "owner": pick(st, []string{"team-a", "group:default/team-a"}),
				"system":     pick(st, sysTargets),
				"definition": "openapi: 3.0.0\ninfo:\n  title: " + n + "\n  description: token " + secret() + "\npaths: {}\n"}))
	}
	for _, n := range visComp {
		desc := "Masked: " + prose(sd, 3) // masked for components: differs per side
		if sd.IntN(2) == 0 {
			desc += " " + hiddenSecret()
		}
		spec := map[string]any{
			"type": pick(st, []string{"service", "website", "library"}), "lifecycle": pick(st, []string{"production", "experimental"}),
			"owner": "team-a", "system": pick(st, sysTargets),
			"dependsOn":    anyList(subset(st, compTargets, 3)),
			"providesApis": anyList(subset(st, apiTargets, 2)),
			"consumesApis": anyList(subset(st, apiTargets, 2)),
		}
		if st.IntN(3) == 0 {
			spec["dependencyOf"] = anyList(subset(st, compTargets, 2))
		}
		if st.IntN(4) == 0 {
			spec["subcomponentOf"] = pick(st, concat(visComp, hidComp, goneComp))
		}
		if st.IntN(3) == 0 {
			delete(spec, "system")
		}
		add(entity("Component", n, md("Service "+strings.ToUpper(n[:1])+n[1:]+" "+prose(st, 1), desc, st.IntN(2) == 0, map[string]any{
			"acme.io/db-url":          secret(),
			"internal.acme.io/budget": fmt.Sprint(sd.IntN(100000)),
			"github.com/project-slug": "acme/" + n,
		}), spec))
	}
	add(entity("Resource", "db-a", md("DB A", "Database "+secret(), nil, nil), map[string]any{
		"type": "database", "owner": "team-a", "dependsOn": anyList(subset(st, compTargets, 2)),
		"dependencyOf": anyList(subset(st, compTargets, 2)), "system": pick(st, sysTargets)}))

	// Hidden entities: present per side at random, contents per side.
	present := func() bool { return sd.IntN(10) < 6 }
	for _, n := range hidComp {
		if !present() {
			continue
		}
		add(entity("Component", n, md("Hidden "+prose(sd, 2), "Hidden "+prose(sd, 4)+" "+hiddenSecret(), sd.IntN(2) == 0, nil), map[string]any{
			"type": pick(sd, []string{"service", "website", "library", "secret-type"}), "lifecycle": pick(sd, []string{"production", "experimental", "retired"}),
			"owner":        pick(sd, []string{"team-b", "team-c"}),
			"system":       pick(sd, concat(visSys, hidSys)),
			"dependsOn":    anyList(subset(sd, ref("component", visComp...), 3)),
			"consumesApis": anyList(subset(sd, visAPI, 2)),
			"providesApis": anyList(subset(sd, concat(visAPI, hidAPI), 1)),
		}))
	}
	for _, n := range hidAPI {
		if !present() {
			continue
		}
		add(entity("API", n, md("Hidden API "+prose(sd, 1), "Hidden "+prose(sd, 3), nil, nil), map[string]any{
			"type": pick(sd, []string{"openapi", "grpc"}), "lifecycle": "production", "owner": "team-b",
			"system": pick(sd, concat(visSys, hidSys)), "definition": "syntax = \"proto3\"; // " + hiddenSecret()}))
	}
	for _, n := range hidSys {
		if !present() {
			continue
		}
		add(entity("System", n, md("Hidden system", prose(sd, 2), nil, nil), map[string]any{"owner": "team-b", "domain": "dom-a"}))
	}
	if present() {
		add(entity("Domain", "hid-dom", md("Hidden domain", prose(sd, 2), nil, nil), map[string]any{"owner": "team-c"}))
	}
	for _, n := range hidUser {
		if !present() {
			continue
		}
		add(entity("User", n, md("", "", nil, nil), map[string]any{"memberOf": anyList(subset(sd, []string{"team-a", "team-b"}, 2)),
			"profile": map[string]any{"email": n + "@acme.example"}}))
	}
	if w.Variant == Deny {
		for _, n := range confComp {
			if !present() {
				continue
			}
			add(entity("Component", n, md("Confidential "+prose(sd, 1), prose(sd, 3), map[string]any{"confidential": "true"}, nil), map[string]any{
				"type": "service", "lifecycle": "production", "owner": "team-a", "system": pick(sd, visSys),
				"dependsOn": anyList(subset(sd, ref("component", visComp...), 2))}))
		}
		for _, n := range confGrp {
			if !present() {
				continue
			}
			add(entity("Group", n, md("Confidential group", prose(sd, 2), map[string]any{"confidential": "true"}, nil),
				map[string]any{"type": "team", "children": []any{}, "parent": "team-a"}))
		}
	}
	return out
}

// Call is one step of a sequence.
type Call struct {
	// Op is "call" (Tool with Args), "cursor" (catalog_search_entities
	// with the cursor of the side's previous search and Limit), "repeat"
	// (the call at index Of again) or "tick" (the fake clock moves past
	// the upstream cache window).
	Op    string
	Tool  string
	Args  string
	Limit int
	Of    int
}

func (c Call) String() string {
	switch c.Op {
	case "cursor":
		return fmt.Sprintf("cursor(limit %d)", c.Limit)
	case "repeat":
		return fmt.Sprintf("repeat #%d", c.Of)
	case "tick":
		return "tick"
	}
	return c.Tool + " " + c.Args
}

var facets = []string{"kind", "spec.type", "spec.lifecycle", "spec.owner", "metadata.tags", "spec.system", "spec.dependsOn",
	"spec.providesApis", "relations.ownedBy", "relations.dependencyOf", "relations.hasPart", "metadata.description",
	"metadata.annotations.acme.io/db-url", "metadata.annotations.internal.acme.io/budget", "metadata.title", "spec.domain", "spec.memberOf"}

// Calls returns n calls drawn with the world's seed: the same sequence
// for both catalogs.
func (w *World) Calls(n int) []Call {
	r := rand.New(rand.NewPCG(w.Seed, 0xca11))
	anyRef := func() string {
		switch r.IntN(3) {
		case 0:
			return pick(r, w.Visible)
		case 1:
			return pick(r, w.Hidden)
		}
		return pick(r, w.Missing)
	}
	q := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	var out []Call
	searched := false
	for len(out) < n {
		c := Call{Op: "call"}
		switch k := r.IntN(20); {
		case k < 3:
			a := map[string]any{"ref": anyRef()}
			switch r.IntN(3) {
			case 0:
				a["detail"] = "full"
			case 1:
				a["fields"] = subset(r, []string{"spec.owner", "spec.dependsOn", "spec.system", "relations", "metadata.description",
					"metadata.annotations", "spec.providesApis", "spec.memberOf", "spec.children", "spec.parent", "spec.domain"}, 4)
			}
			c.Tool, c.Args = "catalog_get_entity", q(a)
		case k < 8:
			a := map[string]any{"limit": 1 + r.IntN(5)}
			if r.IntN(2) == 0 {
				a["kind"] = pick(r, []string{"Component", "API", "System", "Group", "User", "Domain", "Resource"})
			}
			if r.IntN(2) == 0 {
				a["text"] = pick(r, w.Fragments)
			}
			if r.IntN(4) == 0 {
				a["owner"] = pick(r, []string{"team-a", "team-b", "group:default/conf-grp-0", "gone-team"})
			}
			if r.IntN(5) == 0 {
				a["system"] = pick(r, []string{"sys-0", "hid-sys-0", "gone-sys-0"})
			}
			if r.IntN(5) == 0 {
				a["type"] = pick(r, []string{"service", "secret-type", "openapi"})
			}
			if r.IntN(6) == 0 {
				a["lifecycle"] = pick(r, []string{"production", "retired"})
			}
			if r.IntN(6) == 0 {
				a["tags"] = subset(r, []string{"go", "java", "pci", "secret-tag"}, 2)
			}
			scopeFilters(r, a, anyRef)
			if r.IntN(4) == 0 {
				a["order"] = pick(r, []string{"metadata.name", "-metadata.name", "kind", "-kind"})
			}
			if r.IntN(4) == 0 {
				a["fields"] = []string{"metadata.name", "spec.owner", "spec.dependsOn"}
			}
			c.Tool, c.Args = "catalog_search_entities", q(a)
			searched = true
		case k < 10 && searched:
			c = Call{Op: "cursor", Limit: 1 + r.IntN(4)}
		case k < 12:
			a := map[string]any{"facet": pick(r, facets)}
			if r.IntN(2) == 0 {
				a["kind"] = pick(r, []string{"Component", "API", "System", "Group"})
			}
			if r.IntN(3) == 0 {
				a["lifecycle"] = pick(r, []string{"production", "retired"})
			}
			scopeFilters(r, a, anyRef)
			c.Tool, c.Args = "catalog_list_facets", q(a)
		case k < 14:
			a := map[string]any{"ref": anyRef(), "depth": 1 + r.IntN(3)}
			if r.IntN(2) == 0 {
				a["direction"] = pick(r, []string{"outgoing", "incoming", "both"})
			}
			c.Tool, c.Args = "catalog_get_relations", q(a)
		case k < 15:
			c.Tool, c.Args = "catalog_find_owner", q(map[string]any{"ref": anyRef()})
		case k < 16:
			c.Tool, c.Args = "catalog_find_dependents", q(map[string]any{"ref": anyRef(), "depth": 1 + r.IntN(4)})
		case k < 17:
			c.Tool, c.Args = "catalog_get_api_definition", q(map[string]any{"ref": pick(r, w.APIs), "maxBytes": 256 + r.IntN(200)})
		case k < 18 && len(out) > 0:
			c = Call{Op: "repeat", Of: r.IntN(len(out))}
			if out[c.Of].Op != "call" {
				continue
			}
		case k < 19:
			c = Call{Op: "tick"}
		default:
			c.Tool, c.Args = "whoami", "{}"
		}
		out = append(out, c)
	}
	return out
}

// scopeFilters adds, now and then, label, annotation and relation filters
// that name visible, masked, secret, hidden and missing data.
func scopeFilters(r *rand.Rand, a map[string]any, anyRef func() string) {
	if r.IntN(6) == 0 {
		a["labels"] = subset(r, []string{"confidential=true", "confidential", "secret-label", "confidential=TRUE"}, 2)
	}
	if r.IntN(6) == 0 {
		a["annotations"] = subset(r, []string{"acme.io/db-url", "internal.acme.io/budget", "internal.acme.io/cost", "internal.acme.io/cost=42", "acme.io/db-url=x"}, 2)
	}
	if r.IntN(5) == 0 {
		a["relations"] = []string{pick(r, []string{"dependsOn", "dependencyOf", "consumesApi", "providesApi", "partOf", "ownedBy", "hasMember"}) + "=" + anyRef()}
	}
}

// GitHubToken returns a format-valid GitHub personal access token: ghp_,
// 30 random base62 characters and their CRC-32 in base62 (6 characters).
func GitHubToken(r *rand.Rand) string {
	body := alnum(r, 30)
	return "ghp_" + body + corpus.Base62CRC(body)
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func alnum(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base62[r.IntN(len(base62))]
	}
	return string(b)
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func concat(ls ...[]string) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l...)
	}
	return out
}

func pick(r *rand.Rand, l []string) string { return l[r.IntN(len(l))] }

func subset(r *rand.Rand, l []string, maxN int) []string {
	n := r.IntN(maxN + 1)
	out := make([]string, 0, n)
	seen := map[string]bool{}
	for range n {
		v := pick(r, l)
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func anyList(l []string) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = v
	}
	return out
}

// md builds metadata; tagged adds tags when it is the bool true, labels
// when it is a map.
func md(title, desc string, tagsOrLabels any, ann map[string]any) map[string]any {
	m := map[string]any{}
	if title != "" {
		m["title"] = title
	}
	if desc != "" {
		m["description"] = desc
	}
	switch t := tagsOrLabels.(type) {
	case bool:
		if t {
			m["tags"] = []any{"go", "pci"}
		}
	case map[string]any:
		m["labels"] = t
	}
	if ann != nil {
		m["annotations"] = ann
	}
	return m
}

func entity(kind, name string, meta, spec map[string]any) map[string]any {
	meta["name"] = name
	meta["namespace"] = "default"
	return map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}
}
