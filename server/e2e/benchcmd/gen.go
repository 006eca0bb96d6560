package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

// entityRef names one entity of the generated catalog.
type entityRef struct {
	Kind      string // lower case: component, api, …
	Namespace string
	Name      string
}

// String returns kind:namespace/name.
func (r entityRef) String() string { return r.Kind + ":" + r.Namespace + "/" + r.Name }

// seededSecret is a format-valid fake secret planted in the catalog.
type seededSecret struct {
	Type   string `json:"type"`
	Entity string `json:"entity"`
	Value  string `json:"value"`
}

// genCatalog is a generated catalog written to disk.
type genCatalog struct {
	// Files are the catalog files (absolute paths), one Backstage location each.
	Files []string
	// Entities is how many entities the files hold.
	Entities int
	// ByKind lists the refs of each kind.
	ByKind map[string][]entityRef
	// Teams are the names of the team groups (owners).
	Teams []string
	// Secrets are the secrets planted in generated entities.
	Secrets []seededSecret
}

// All returns every ref, kinds in a fixed order.
func (g *genCatalog) All() []entityRef {
	var out []entityRef
	for _, k := range kindOrder {
		out = append(out, g.ByKind[k]...)
	}
	return out
}

var kindOrder = []string{"domain", "system", "group", "user", "component", "api", "resource"}

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

// generate builds a catalog of about n entities (n ≥ 100) from seed and
// writes it to dir as JSON documents (valid YAML), in files of at most
// 1000 entities. A handful of entities carry secrets from the redaction
// corpus generator in their descriptions.
func generate(dir string, n int, seed uint64) (*genCatalog, error) {
	if n < 100 {
		return nil, fmt.Errorf("benchcmd: --entities must be at least 100 (got %d)", n)
	}
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	g := &genCatalog{ByKind: map[string][]entityRef{}}

	nDomains := max(3, n/1000)
	nSystems := max(5, n/50)
	nTeams := max(6, n/70)
	nDepts := max(2, nTeams/8)
	nUsers := n * 12 / 100
	nAPIs := n * 18 / 100
	nResources := n * 12 / 100
	nComponents := n - nDomains - nSystems - nTeams - nDepts - 1 - nUsers - nAPIs - nResources

	var docs []map[string]any
	add := func(kind, name string, e map[string]any) {
		g.ByKind[kind] = append(g.ByKind[kind], entityRef{Kind: kind, Namespace: "default", Name: name})
		docs = append(docs, e)
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
	g.Teams = teams
	add("group", "acme", entity("Group", "acme", "Acme Retail", "Acme Retail, an online and in-store retailer of home and garden goods.", nil, nil, nil, map[string]any{
		"type": "organization", "profile": map[string]any{"displayName": "Acme Retail", "email": "hello@acme-retail.example"}, "children": depts,
	}))
	for i, d := range depts {
		var children []string
		for j, t := range teams {
			if teamDept[j] == d {
				children = append(children, t)
			}
		}
		add("group", d, entity("Group", d, title(d), fmt.Sprintf("Department %d of Acme Retail engineering.", i), nil, nil, nil, map[string]any{
			"type": "department", "parent": "acme", "children": children,
			"profile": map[string]any{"displayName": title(d), "email": d + "@acme-retail.example"},
		}))
	}
	for i, t := range teams {
		add("group", t, entity("Group", t, title(t), fmt.Sprintf("Builds and runs the %s capabilities of Acme Retail.", strings.Split(t, "-")[1]),
			nil, map[string]any{"slack.com/channel": t, "pagerduty.com/service-id": fmt.Sprintf("PT%05d", i)},
			[]any{map[string]any{"url": "https://chat.acme-retail.example/channels/" + t, "title": "Team channel", "icon": "chat"}},
			map[string]any{"type": "team", "parent": teamDept[i], "children": []string{},
				"profile": map[string]any{"displayName": title(t), "email": t + "@acme-retail.example"}}))
	}
	// Users, each a member of one team.
	for i := 0; i < nUsers; i++ {
		fn, ln := pick(firstNames), pick(lastNames)
		name := fmt.Sprintf("%s.%s%d", fn, ln, i)
		add("user", name, entity("User", name, "", "", nil, nil, nil, map[string]any{
			"profile":  map[string]any{"displayName": title(fn) + " " + title(ln), "email": name + "@acme-retail.example"},
			"memberOf": []string{teams[i%nTeams]},
		}))
	}
	// Domains and systems.
	domains := make([]string, nDomains)
	for i := range domains {
		domains[i] = fmt.Sprintf("%s-domain-%03d", pick(words), i)
		add("domain", domains[i], entity("Domain", domains[i], title(domains[i]), "Systems that share the "+strings.Split(domains[i], "-")[0]+" business vocabulary.", nil, nil, nil,
			map[string]any{"owner": depts[i%nDepts]}))
	}
	systems := make([]string, nSystems)
	systemTeam := make([]string, nSystems)
	for i := range systems {
		systems[i] = fmt.Sprintf("%s-system-%04d", pick(words), i)
		systemTeam[i] = teams[r.IntN(nTeams)]
		add("system", systems[i], entity("System", systems[i], title(systems[i]), "Everything needed to run "+strings.Split(systems[i], "-")[0]+" for customers and stores.", []string{pick(languages)}, nil, nil,
			map[string]any{"owner": systemTeam[i], "domain": domains[i%nDomains]}))
	}
	// Resources and APIs first, so components can refer to them.
	resources := make([]string, nResources)
	for i := range resources {
		suf := pick(resSuffix)
		resources[i] = fmt.Sprintf("%s-%s-%05d", pick(words), suf, i)
		s := r.IntN(nSystems)
		add("resource", resources[i], entity("Resource", resources[i], title(resources[i]), "Stores the "+strings.Split(resources[i], "-")[0]+" data of its system.", []string{suf}, nil, nil,
			map[string]any{"type": resType[suf], "owner": systemTeam[s], "system": systems[s]}))
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
	// Which component provides each API.
	provider := make([]int, nAPIs)
	provides := map[int][]string{}
	for i := range apis {
		provider[i] = r.IntN(nComponents)
		provides[provider[i]] = append(provides[provider[i]], apis[i])
	}
	for i, a := range apis {
		typ := pick(apiTypes)
		s := apiSystem[i]
		add("api", a, entity("API", a, title(a), "Lets other teams work with "+strings.Split(a, "-")[0]+" over the network.", []string{pick([]string{"rest", "events", "internal", "public"})}, nil,
			[]any{map[string]any{"url": "https://developer.acme-retail.example/apis/" + a, "title": "Developer portal", "icon": "docs"}},
			map[string]any{"type": typ, "lifecycle": pick(lifecycles), "owner": systemTeam[s], "system": systems[s], "definition": apiDefinition(r, a, typ)}))
	}
	// Secrets from the redaction corpus generator: text documents with
	// format-valid fake credentials, used as descriptions.
	var secretDocs []corpus.Case
	for _, c := range corpus.Generate(corpus.DefaultSeed) {
		if c.Mode == "text" && len(c.Secrets) > 0 && len(c.Input) < 1500 {
			secretDocs = append(secretDocs, c)
		}
		if len(secretDocs) == 24 {
			break
		}
	}
	secretEvery := max(1, nComponents/(len(secretDocs)+1))
	for i, c := range components {
		s := r.IntN(nSystems)
		owner := systemTeam[s]
		if r.IntN(4) == 0 {
			owner = teams[r.IntN(nTeams)]
		}
		typ := pick(compTypes)
		var consumes, depends []string
		for k := r.IntN(4); k > 0; k-- {
			consumes = append(consumes, apis[r.IntN(nAPIs)])
		}
		for k := r.IntN(4); k > 0; k-- {
			if r.IntN(2) == 0 {
				depends = append(depends, "resource:default/"+resources[r.IntN(nResources)])
			} else {
				depends = append(depends, "component:default/"+components[r.IntN(nComponents)])
			}
		}
		desc := fmt.Sprintf("%s %s for the %s system.", title(strings.Split(c, "-")[0]), typ, systems[s])
		if j := i / secretEvery; i%secretEvery == secretEvery/2 && j < len(secretDocs) {
			desc = secretDocs[j].Input
			for _, sec := range secretDocs[j].Secrets {
				g.Secrets = append(g.Secrets, seededSecret{Type: sec.Type, Entity: "component:default/" + c, Value: sec.Value})
			}
		}
		ann := map[string]any{
			"github.com/project-slug":   "acme-retail/" + c,
			"backstage.io/techdocs-ref": "dir:.",
		}
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
		e := entity("Component", c, title(c), desc, []string{pick(languages), pick(languages)}, ann,
			[]any{
				map[string]any{"url": "https://grafana.acme-retail.example/d/" + c, "title": "Dashboard", "icon": "dashboard"},
				map[string]any{"url": "https://runbooks.acme-retail.example/" + c, "title": "Runbook", "icon": "docs"},
			}, spec)
		e["metadata"].(map[string]any)["labels"] = map[string]any{"acme-retail.example/tier": fmt.Sprintf("tier-%d", 1+r.IntN(3))}
		add("component", c, e)
	}
	g.Entities = len(docs)

	// Write files of at most 1000 entities.
	const perFile = 1000
	for i := 0; i < len(docs); i += perFile {
		end := min(i+perFile, len(docs))
		var b strings.Builder
		b.WriteString("# Generated by server/e2e/benchcmd; fictional data.\n")
		for _, d := range docs[i:end] {
			raw, err := json.Marshal(d)
			if err != nil {
				return nil, fmt.Errorf("benchcmd: encode entity: %w", err)
			}
			b.WriteString("---\n")
			b.Write(raw)
			b.WriteByte('\n')
		}
		p := filepath.Join(dir, fmt.Sprintf("catalog-%04d.yaml", i/perFile))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("benchcmd: write catalog: %w", err)
		}
		g.Files = append(g.Files, p)
	}
	return g, nil
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
		fmt.Fprintf(&b, "  /%s:\n    get:\n      summary: List %s.\n      parameters:\n        - name: cursor\n          in: query\n          schema:\n            type: string\n      responses:\n        \"200\":\n          description: A page of %s.\n    post:\n      summary: Create one.\n      responses:\n        \"201\":\n          description: Created.\n", noun, noun, noun)
		fmt.Fprintf(&b, "  /%s/{id}:\n    get:\n      summary: Get one by id.\n      parameters:\n        - name: id\n          in: path\n          required: true\n          schema:\n            type: string\n      responses:\n        \"200\":\n          description: Found.\n          content:\n            application/json:\n              schema:\n                $ref: \"#/components/schemas/Item\"\n        \"404\":\n          description: Not found.\n", noun)
		b.WriteString("components:\n  schemas:\n    Item:\n      type: object\n      required: [id, name]\n      properties:\n        id:\n          type: string\n        name:\n          type: string\n        status:\n          type: string\n          enum: [active, retired]\n        updatedAt:\n          type: string\n          format: date-time\n")
	}
	return b.String()
}
