// Package gencatalog generates software catalogs shaped like a real
// Backstage's, for benchmarks and tests: an organisation of departments,
// teams and users, domains and systems, and the components, APIs and
// resources they hold, with the annotations, links, tags and
// relation-bearing spec fields real catalogs carry.
//
// The generated documents are what catalog-info.yaml files hold. What
// Backstage adds when it reads them (metadata.uid, metadata.etag,
// metadata.namespace, the relations array, and the
// backstage.io/managed-by-location and managed-by-origin-location
// annotations) is not in them: a memcatalog adds the first four, and
// AddLocation the last two. As served by Backstage with locations in
// GitHub (RepoLocation), an entity is about 1,710 bytes of JSON on
// average at 10,000 entities, within 10% of a real catalog's 1,654
// (TestServedBytesPerEntity); the mix of kinds is 56% components, 16% users, 12% APIs, 12%
// resources, the rest groups, systems and domains.
//
//	cat, _ := gencatalog.Generate(10_000, 1)
//	for _, e := range cat.Entities {
//		gencatalog.AddLocation(e, gencatalog.RepoLocation(e))
//	}
//	mc, _ := memcatalog.New(cat.Entities)
package gencatalog

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Org is the generated organisation's GitHub organisation.
const Org = "acme-retail"

// Ref names one generated entity.
type Ref struct {
	Kind      string // lower case: component, api, …
	Namespace string
	Name      string
}

// String returns kind:namespace/name.
func (r Ref) String() string { return r.Kind + ":" + r.Namespace + "/" + r.Name }

// Catalog is a generated catalog.
type Catalog struct {
	// Entities are the documents, as catalog-info.yaml files hold them.
	Entities []map[string]any
	// Refs names each entity: Refs[i] is Entities[i].
	Refs []Ref
	// Teams are the names of the team groups (the usual owners).
	Teams []string
}

// Kinds is the order the kinds are generated in (lower case).
var Kinds = []string{"group", "user", "domain", "system", "resource", "api", "component"}

// ByKind returns the refs of each kind, in generation order.
func (c *Catalog) ByKind() map[string][]Ref {
	out := map[string][]Ref{}
	for _, r := range c.Refs {
		out[r.Kind] = append(out[r.Kind], r)
	}
	return out
}

var (
	words = []string{"orders", "payments", "catalog", "search", "inventory", "pricing", "shipping", "billing",
		"identity", "loyalty", "returns", "reviews", "recommendations", "notifications", "analytics", "fraud",
		"tax", "promotions", "checkout", "cart", "warehouse", "delivery", "invoices", "accounts", "profiles",
		"media", "content", "ledger", "refunds", "stock", "suppliers", "stores", "coupons", "gift-cards", "wishlist"}
	compSuffix = []string{"service", "worker", "gateway", "ui", "job", "sync", "adapter", "web", "lib", "consumer"}
	resSuffix  = []string{"db", "queue", "bucket", "cache", "topic", "index"}
	resType    = map[string]string{"db": "database", "queue": "queue", "bucket": "s3-bucket", "cache": "cache", "topic": "kafka-topic", "index": "search-index"}
	firstNames = []string{"amelia", "noah", "olivia", "liam", "emma", "lucas", "mia", "leo", "sofia", "hugo", "ines",
		"yusuf", "hana", "ravi", "chloe", "mateo", "freya", "omar", "lea", "jonas", "aiko", "kofi", "nora", "ivan"}
	lastNames = []string{"hart", "fischer", "martin", "kowalski", "silva", "nakamura", "okafor", "dubois", "rossi",
		"jensen", "novak", "garcia", "bauer", "larsen", "moreau", "haddad", "singh", "weber", "costa", "berg"}
	languages  = []string{"go", "java", "kotlin", "typescript", "python", "rust", "nodejs", "react", "grpc", "postgres", "kafka"}
	lifecycles = []string{"production", "production", "production", "production", "production", "production", "production", "experimental", "experimental", "deprecated"}
	compTypes  = []string{"service", "service", "service", "service", "service", "service", "library", "library", "website", "service"}
	apiTypes   = []string{"openapi", "openapi", "openapi", "openapi", "openapi", "openapi", "openapi", "asyncapi", "asyncapi", "graphql", "grpc"}
)

// Generate builds a catalog of exactly n entities (n ≥ 100) from seed;
// the same n and seed give the same catalog.
func Generate(n int, seed uint64) (*Catalog, error) {
	if n < 100 {
		return nil, fmt.Errorf("gencatalog: at least 100 entities (got %d)", n)
	}
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995)) //nolint:gosec // reproducible generated catalog, not a secret
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	c := &Catalog{}

	nDomains := max(3, n/1000)
	nSystems := max(5, n/50)
	nTeams := max(6, n/70)
	nDepts := max(2, nTeams/8)
	nUsers := n * 16 / 100
	nAPIs := n * 12 / 100
	nResources := n * 12 / 100
	nComponents := n - nDomains - nSystems - nTeams - nDepts - 1 - nUsers - nAPIs - nResources

	add := func(kind, name string, e map[string]any) {
		c.Refs = append(c.Refs, Ref{Kind: kind, Namespace: "default", Name: name})
		c.Entities = append(c.Entities, e)
	}
	title := func(name string) string {
		parts := strings.Split(name, "-")
		for i, p := range parts {
			if p != "" {
				parts[i] = strings.ToUpper(p[:1]) + p[1:]
			}
		}
		return strings.Join(parts, " ")
	}
	head := func(name string) string { return strings.Split(name, "-")[0] }
	// orgAnn are the annotations of an entity read from the org data
	// repository (users and groups), file the path in it.
	orgAnn := func(file string) map[string]any {
		return repoAnnotations("org-data", file)
	}

	// Organisation: one org, departments, teams.
	depts := make([]string, nDepts)
	for i := range depts {
		depts[i] = fmt.Sprintf("dept-%s-%03d", pick(words), i)
	}
	teams := make([]string, nTeams)
	teamDept := make([]string, nTeams)
	for i := range teams {
		teams[i] = fmt.Sprintf("team-%s-%04d", pick(words), i)
		teamDept[i] = depts[i%nDepts]
	}
	c.Teams = teams
	add("group", "acme", entity("Group", "acme", "Acme Retail", "Acme Retail, an online and in-store retailer of home and garden goods.", nil,
		orgAnn("org.yaml"), nil, map[string]any{
			"type": "organization", "profile": map[string]any{"displayName": "Acme Retail", "email": "hello@acme-retail.example"}, "children": depts,
		}))
	for i, d := range depts {
		var children []string
		for j, t := range teams {
			if teamDept[j] == d {
				children = append(children, t)
			}
		}
		add("group", d, entity("Group", d, title(d), fmt.Sprintf("Department %d of Acme Retail engineering.", i), nil,
			orgAnn("departments/"+d+".yaml"), nil, map[string]any{
				"type": "department", "parent": "acme", "children": children,
				"profile": map[string]any{"displayName": title(d), "email": d + "@acme-retail.example"},
			}))
	}
	for i, t := range teams {
		ann := orgAnn("teams/" + t + ".yaml")
		ann["slack.com/channel"] = t
		ann["pagerduty.com/service-id"] = fmt.Sprintf("PT%05d", i)
		ann["github.com/team-slug"] = Org + "/" + t
		add("group", t, entity("Group", t, title(t), fmt.Sprintf("Builds and runs the %s capabilities of Acme Retail.", strings.Split(t, "-")[1]),
			nil, ann,
			[]any{map[string]any{"url": "https://chat.acme-retail.example/channels/" + t, "title": "Team channel", "icon": "chat"}},
			map[string]any{"type": "team", "parent": teamDept[i], "children": []string{},
				"profile": map[string]any{"displayName": title(t), "email": t + "@acme-retail.example"}}))
	}
	// Users, each a member of one team.
	for i := range nUsers {
		fn, ln := pick(firstNames), pick(lastNames)
		name := fmt.Sprintf("%s.%s%d", fn, ln, i)
		ann := map[string]any{"github.com/user-login": fmt.Sprintf("%s%s-%d", fn, ln, i)}
		add("user", name, entity("User", name, "", "", nil, ann, nil, map[string]any{
			"profile": map[string]any{"displayName": title(fn) + " " + title(ln), "email": name + "@acme-retail.example",
				"picture": "https://avatars.acme-retail.example/u/" + name + ".png"},
			"memberOf": []string{teams[i%nTeams]},
		}))
	}
	// Domains and systems, each described in its own repository.
	domains := make([]string, nDomains)
	for i := range domains {
		domains[i] = fmt.Sprintf("%s-domain-%03d", pick(words), i)
		add("domain", domains[i], entity("Domain", domains[i], title(domains[i]), "Systems that share the "+head(domains[i])+" business vocabulary.", nil,
			repoAnnotations("architecture", "domains/"+domains[i]+".yaml"), nil,
			map[string]any{"owner": depts[i%nDepts]}))
	}
	systems := make([]string, nSystems)
	systemTeam := make([]string, nSystems)
	for i := range systems {
		systems[i] = fmt.Sprintf("%s-system-%04d", pick(words), i)
		systemTeam[i] = teams[r.IntN(nTeams)]
		ann := repoAnnotations(systems[i], "catalog-info.yaml")
		ann["backstage.io/techdocs-ref"] = "dir:."
		add("system", systems[i], entity("System", systems[i], title(systems[i]), "Everything needed to run "+head(systems[i])+" for customers and stores.",
			[]string{pick(languages)}, ann, nil,
			map[string]any{"owner": systemTeam[i], "domain": domains[i%nDomains]}))
	}
	// Resources and APIs first, so components can refer to them.
	resources := make([]string, nResources)
	for i := range resources {
		suf := pick(resSuffix)
		resources[i] = fmt.Sprintf("%s-%s-%05d", pick(words), suf, i)
		s := r.IntN(nSystems)
		ann := repoAnnotations(systems[s], "catalog-info.yaml")
		add("resource", resources[i], entity("Resource", resources[i], "", "Stores the "+head(resources[i])+" data of its system.", []string{suf},
			ann, nil, map[string]any{"type": resType[suf], "owner": systemTeam[s], "system": systems[s]}))
	}
	apis := make([]string, nAPIs)
	apiSystem := make([]int, nAPIs)
	for i := range apis {
		apis[i] = fmt.Sprintf("%s-api-%05d", pick(words), i)
		apiSystem[i] = r.IntN(nSystems)
	}
	components := make([]string, nComponents)
	for i := range components {
		components[i] = fmt.Sprintf("%s-%s-%05d", pick(words), pick(compSuffix), i)
	}
	// Which component provides each API; the API lives in its repository.
	provides := map[int][]string{}
	for i := range apis {
		p := r.IntN(nComponents)
		provides[p] = append(provides[p], apis[i])
		typ := pick(apiTypes)
		s := apiSystem[i]
		ann := repoAnnotations(components[p], "catalog-info.yaml")
		add("api", apis[i], entity("API", apis[i], "", "Lets other teams work with "+head(apis[i])+" over the network.",
			[]string{pick([]string{"rest", "events", "internal", "public"})}, ann,
			[]any{map[string]any{"url": "https://developer.acme-retail.example/apis/" + apis[i], "title": "Developer portal", "icon": "docs"}},
			map[string]any{"type": typ, "lifecycle": pick(lifecycles), "owner": systemTeam[s], "system": systems[s], "definition": apiDefinition(r, apis[i], typ)}))
	}
	for i, name := range components {
		s := r.IntN(nSystems)
		owner := systemTeam[s]
		if r.IntN(4) == 0 {
			owner = teams[r.IntN(nTeams)]
		}
		typ := pick(compTypes)
		var consumes, depends []string
		for k := r.IntN(3); k > 0; k-- {
			consumes = append(consumes, apis[r.IntN(nAPIs)])
		}
		for k := r.IntN(3); k > 0; k-- {
			if r.IntN(2) == 0 {
				depends = append(depends, "resource:default/"+resources[r.IntN(nResources)])
			} else {
				depends = append(depends, "component:default/"+components[r.IntN(nComponents)])
			}
		}
		ann := repoAnnotations(name, "catalog-info.yaml")
		ann["backstage.io/techdocs-ref"] = "dir:."
		if r.IntN(3) == 0 {
			ann["pagerduty.com/service-id"] = fmt.Sprintf("P%06d", i)
		}
		spec := map[string]any{"type": typ, "lifecycle": pick(lifecycles), "owner": owner, "system": systems[s]}
		if p := provides[i]; len(p) > 0 {
			spec["providesApis"] = p
		}
		if len(consumes) > 0 {
			spec["consumesApis"] = dedupe(consumes)
		}
		if len(depends) > 0 {
			spec["dependsOn"] = dedupe(depends)
		}
		e := entity("Component", name, "", fmt.Sprintf("%s %s for the %s system.", title(head(name)), typ, systems[s]),
			[]string{pick(languages), pick(languages)}, ann,
			[]any{map[string]any{"url": "https://runbooks.acme-retail.example/" + name, "title": "Runbook", "icon": "docs"}}, spec)
		if i%200 == 0 {
			// A few components in PCI scope, marked as the demo's are (no
			// random draw, so the rest of the catalog is unchanged).
			e["metadata"].(map[string]any)["labels"] = map[string]any{"acme-retail.example/pci": "true"}
		}
		add("component", name, e)
	}
	return c, nil
}

// repoAnnotations are the annotations of an entity described in file of
// repository repo of the organisation's GitHub: the project slug, and the
// view, edit and source URLs Backstage derives from a location in GitHub.
func repoAnnotations(repo, file string) map[string]any {
	base := "https://github.com/" + Org + "/" + repo
	return map[string]any{
		"github.com/project-slug":      Org + "/" + repo,
		"backstage.io/view-url":        base + "/blob/main/" + file,
		"backstage.io/edit-url":        base + "/edit/main/" + file,
		"backstage.io/source-location": "url:" + base + "/tree/main/",
	}
}

// RepoLocation is the location ref of the file in the organisation's
// GitHub that describes e, as Backstage records it when it reads e from
// there (a url location).
func RepoLocation(e map[string]any) string {
	md, _ := e["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	if v, ok := ann["backstage.io/view-url"].(string); ok {
		return "url:" + v
	}
	name, _ := md["name"].(string)
	return "url:https://github.com/" + Org + "/org-data/blob/main/users/" + name + ".yaml"
}

// AddLocation adds the annotations Backstage adds to an entity it reads
// from location (a location ref, "url:https://…" or "file:/…"): where it
// is managed from, and the location it was first registered through (the
// same here: every file is registered on its own).
func AddLocation(e map[string]any, location string) {
	md := e["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		md["annotations"] = ann
	}
	ann["backstage.io/managed-by-location"] = location
	ann["backstage.io/managed-by-origin-location"] = location
}

func entity(kind, name, title, desc string, tags []string, ann map[string]any, links []any, spec map[string]any) map[string]any {
	md := map[string]any{"name": name}
	if title != "" {
		md["title"] = title
	}
	if desc != "" {
		md["description"] = desc
	}
	if len(tags) > 0 {
		md["tags"] = dedupe(tags)
	}
	if len(ann) > 0 {
		md["annotations"] = ann
	}
	if len(links) > 0 {
		md["links"] = links
	}
	return map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": md, "spec": spec}
}

func dedupe(l []string) []string {
	seen := map[string]bool{}
	out := l[:0:0]
	for _, s := range l {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// apiDefinition returns a small but complete definition of the given type.
func apiDefinition(r *rand.Rand, name, typ string) string {
	noun := strings.Split(name, "-")[0]
	var b strings.Builder
	switch typ {
	case "asyncapi":
		fmt.Fprintf(&b, "asyncapi: 2.6.0\ninfo:\n  title: %s events\n  version: 1.%d.0\nchannels:\n", noun, r.IntN(10))
		for _, ev := range []string{"created", "updated", "deleted"} {
			fmt.Fprintf(&b, "  %s.%s:\n    subscribe:\n      message:\n        payload:\n          type: object\n          properties:\n            id:\n              type: string\n            occurredAt:\n              type: string\n              format: date-time\n", noun, ev)
		}
	case "graphql":
		fmt.Fprintf(&b, "type Query {\n  %s(id: ID!): %s\n  %sList(first: Int, after: String): [%s!]!\n}\n\ntype %s {\n  id: ID!\n  name: String!\n  createdAt: String!\n  status: String\n}\n", noun, "Item", noun, "Item", "Item")
	case "grpc":
		fmt.Fprintf(&b, "syntax = \"proto3\";\npackage acme.%s.v1;\n\nservice %sService {\n  rpc Get(GetRequest) returns (Item);\n  rpc List(ListRequest) returns (ListResponse);\n}\n\nmessage GetRequest { string id = 1; }\nmessage ListRequest { int32 page_size = 1; string page_token = 2; }\nmessage ListResponse { repeated Item items = 1; string next_page_token = 2; }\nmessage Item { string id = 1; string name = 2; string status = 3; }\n", strings.ReplaceAll(noun, "-", "_"), "Item")
	default:
		fmt.Fprintf(&b, "openapi: 3.0.3\ninfo:\n  title: %s API\n  version: %d.%d.0\nservers:\n  - url: https://api.acme-retail.example/%s/v1\npaths:\n", noun, 1+r.IntN(3), r.IntN(10), noun)
		fmt.Fprintf(&b, "  /%s:\n    get:\n      summary: List %s.\n      parameters:\n        - name: cursor\n          in: query\n          schema:\n            type: string\n      responses:\n        \"200\":\n          description: A page of %s.\n", noun, noun, noun)
		fmt.Fprintf(&b, "  /%s/{id}:\n    get:\n      summary: Get one by id.\n      parameters:\n        - name: id\n          in: path\n          required: true\n          schema:\n            type: string\n      responses:\n        \"200\":\n          description: Found.\n          content:\n            application/json:\n              schema:\n                $ref: \"#/components/schemas/Item\"\n        \"404\":\n          description: Not found.\n", noun)
		b.WriteString("components:\n  schemas:\n    Item:\n      type: object\n      required: [id, name]\n      properties:\n        id:\n          type: string\n        name:\n          type: string\n        status:\n          type: string\n          enum: [active, retired]\n        updatedAt:\n          type: string\n          format: date-time\n")
	}
	return b.String()
}
