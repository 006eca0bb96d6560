package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// Bounds of the live-catalog reads of policy graph and policy explain.
const (
	graphPageSize        = 500
	defaultGraphEntities = 100000
	maxGroupDepth        = 8
	maxUserMatches       = 10
	maxOldReportBytes    = 16 << 20
)

// graphReportVersion is the format version of the JSON report.
const graphReportVersion = 1

// syntheticUser is the user ref of the representative subjects that stand
// for "some member" of a role. The '~' makes it an invalid Backstage name,
// so it can never own or be any real entity.
const syntheticUser = "user:default/~representative"

// GraphReport is the JSON form of `policy graph --json`: stable (sorted,
// no timestamps) so that two reports of the same policy over the same
// catalog are byte-identical and can be diffed.
type GraphReport struct {
	// Version is the report format, 1.
	Version int `json:"version"`
	// Policy is the short SHA-256 of the policy file.
	Policy string `json:"policy"`
	// Catalog counts the entities read from Backstage.
	Catalog GraphCatalog `json:"catalog"`
	// Tools lists every tool the policy knows.
	Tools []string `json:"tools"`
	// Roles holds one entry per role, in policy order.
	Roles []GraphRole `json:"roles"`
}

// GraphCatalog counts the entities of the live catalog by kind (lowercase).
type GraphCatalog struct {
	Entities  int            `json:"entities"`
	Kinds     map[string]int `json:"kinds"`
	Truncated bool           `json:"truncated,omitempty"`
}

// GraphRole is what one role, evaluated alone, gives its holders.
type GraphRole struct {
	Name string `json:"name"`
	// Subjects describes the representative subjects the role was
	// evaluated for (see graphUsage).
	Subjects []string `json:"subjects"`
	// Tools are the tools the role reaches, after the agent-scope
	// intersection with a token carrying every mapped OAuth scope.
	Tools []string `json:"tools"`
	// Entities counts, per kind, the entities at least one representative
	// subject may see. Every catalog kind is listed, zeros included.
	Entities map[string]int `json:"entities"`
	// Visible is the sum of Entities.
	Visible int `json:"visible"`
	// Masks lists the role's field masks as "kinds: fields".
	Masks []string `json:"masks"`
	// ReachesEverything is set when the role reaches every tool and every
	// entity of every kind in the catalog.
	ReachesEverything bool `json:"reachesEverything"`
	// OwnerScoped is set when an allow rule depends on the holder's
	// ownership ($ownershipRefs, $currentUser): then the counts are those of
	// the representative subjects and real holders may see more.
	OwnerScoped bool `json:"ownerScoped,omitempty"`
	// Notes explains anything the reader must know to read the numbers.
	Notes []string `json:"notes,omitempty"`
}

const graphUsage = `Usage: backstage-mcp policy graph --config FILE [--json] [--diff OLD.json]

Reads the live catalog through the config's Backstage (the server's own
credential) and reports, for every role of the config's policy file:

  TOOLS     the tools the role reaches, for an agent token that carries every
            OAuth scope of the policy's scopes table (agent scopes can only
            narrow this);
  per kind  how many entities of each kind the role lets its holders see,
            out of the catalog's total;
  MASKS     the field masks the role applies;
  FLAGS     EVERYTHING when the role reaches all tools and every entity;
            OWNER-SCOPED when an allow rule uses $ownershipRefs/$currentUser.

Each role is evaluated alone, as if it were the only role of the file: the
numbers say what the role grants by itself (deny rules of other roles a
holder also has can only narrow it). Entities are counted for representative
subjects of the role, and an entity counts when at least one can see it:
  users: [...]            each listed user, with their groups resolved in the
                          catalog as the server resolves them;
  backstageGroups: [...]  for each group, a synthetic member (user ref
                          ` + syntheticUser + `) whose ownership refs are the
                          group and its parents: what any member of the group
                          sees at least (a member also sees what they own
                          themselves, or through their other groups);
  authenticated, idpGroups, claims, agents
                          one synthetic signed-in user owning nothing: the
                          counts are what EVERY holder sees; ownership rules
                          add, for each holder, what they own (OWNER-SCOPED);
  anonymous               an unauthenticated caller (demo mode).

--json writes the report as stable JSON (keep it for the next review).
--diff OLD.json compares with an earlier --json report and lists, per role,
what widened (tools added, counts up, masks removed, newly EVERYTHING, new
roles) and what narrowed; a count can also move because the catalog changed,
so the catalog totals are shown too. Exit 0 when nothing widened, 1 when
something widened, 2 on errors.

Flags:
`

// policyGraph implements "backstage-mcp policy graph".
func policyGraph(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy graph", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "server config `FILE` (its policy.file and its Backstage)")
	policyFile := fs.String("policy", "", "policy `FILE`; overrides the config's policy.file")
	asJSON := fs.Bool("json", false, "write the report (or, with --diff, the differences) as JSON")
	diffFile := fs.String("diff", "", "an earlier --json report `OLD.json` to compare with")
	maxEntities := fs.Int("max-entities", defaultGraphEntities, "read at most `N` entities from the catalog")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), graphUsage)
		fs.PrintDefaults()
	}
	if code, done := parseCommand(fs, args, stdout); done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "backstage-mcp policy graph: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	if *configFile == "" {
		fmt.Fprintln(stderr, "backstage-mcp policy graph: --config FILE is required (the graph reads the live catalog)")
		return 2
	}
	if *maxEntities < 1 {
		return fail("--max-entities must be positive")
	}
	cfg, err := server.LoadConfig(*configFile, os.Getenv)
	if err != nil {
		return fail("%v", err)
	}
	if *policyFile == "" {
		*policyFile = cfg.Policy.File
	}
	if *policyFile == "" {
		return fail("%s sets no policy.file (or pass --policy FILE)", *configFile)
	}
	if cfg.Backstage.BaseURL == "" {
		return fail("%s sets no backstage.baseUrl: the graph needs the live catalog", *configFile)
	}
	var old *GraphReport
	if *diffFile != "" {
		raw, err := readBounded(*diffFile, maxOldReportBytes)
		if err != nil {
			return fail("%v", err)
		}
		old = &GraphReport{}
		if err := json.Unmarshal(raw, old); err != nil || old.Version != graphReportVersion {
			return fail("%s is not a policy graph --json report (version %d): %v", *diffFile, graphReportVersion, err)
		}
	}
	data, err := readBounded(*policyFile, policyfile.MaxSize)
	if err != nil {
		return fail("%v", err)
	}
	_, doc, err := policyfile.Parse(data, *policyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cat, err := server.NewCatalogClient(cfg, appVersion(), nil, nil)
	if err != nil {
		return fail("catalog client: %v", err)
	}
	rep, err := BuildGraph(ctx, doc, data, cat, *maxEntities)
	if err != nil {
		return fail("%v", err)
	}
	if old != nil {
		d := DiffGraphs(old, rep)
		if *asJSON {
			if err := writeJSON(stdout, d); err != nil {
				return fail("%v", err)
			}
		} else {
			fmt.Fprint(stdout, d.String())
		}
		if len(d.Widened) > 0 {
			return 1
		}
		return 0
	}
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return fail("%v", err)
		}
		return 0
	}
	fmt.Fprint(stdout, rep.String(*policyFile))
	return 0
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// graphCatalog is what BuildGraph needs from the catalog client.
type graphCatalog interface {
	Query(ctx context.Context, q catalog.Query) (*catalog.Page, error)
	GetByName(ctx context.Context, r catalog.Ref) (json.RawMessage, error)
}

// representative is one subject a role is evaluated for.
type representative struct {
	subject policy.Subject
	desc    string
}

// BuildGraph evaluates every role of doc against the live catalog. raw is
// the policy file (for its hash); at most maxEntities entities are read.
func BuildGraph(ctx context.Context, doc policy.Document, raw []byte, cat graphCatalog, maxEntities int) (*GraphReport, error) {
	full, err := policy.Compile(doc)
	if err != nil {
		return nil, fmt.Errorf("policy graph: %w", err)
	}
	sum := sha256.Sum256(raw)
	rep := &GraphReport{
		Version: graphReportVersion,
		Policy:  hex.EncodeToString(sum[:8]),
		Catalog: GraphCatalog{Kinds: map[string]int{}},
		Tools:   full.Tools(),
		Roles:   []GraphRole{},
	}
	var oauthScopes []string
	for s := range doc.Scopes {
		oauthScopes = append(oauthScopes, s)
	}
	sort.Strings(oauthScopes)

	type roleEval struct {
		grants []*policy.Grant
		out    *GraphRole
	}
	evals := make([]roleEval, len(doc.Roles))
	for i, r := range doc.Roles {
		alone, err := policy.Compile(policy.Document{Version: doc.Version, Scopes: doc.Scopes, ToolScopes: doc.ToolScopes, Roles: []policy.Role{r}})
		if err != nil {
			return nil, fmt.Errorf("policy graph: role %s: %w", r.Name, err)
		}
		reps, notes, err := representatives(ctx, cat, r.Bind, oauthScopes)
		if err != nil {
			return nil, fmt.Errorf("policy graph: role %s: %w", r.Name, err)
		}
		gr := &GraphRole{Name: r.Name, Subjects: []string{}, Tools: []string{}, Entities: map[string]int{}, Masks: masksOf(r), Notes: notes}
		tools := map[string]bool{}
		for _, rp := range reps {
			g := alone.Grant(rp.subject)
			if len(g.Roles()) == 0 {
				gr.Notes = append(gr.Notes, "representative subject "+rp.desc+" does not bind the role; it is not counted")
				continue
			}
			gr.Subjects = append(gr.Subjects, rp.desc)
			evals[i].grants = append(evals[i].grants, g)
			for _, t := range g.AllowedTools() {
				tools[t] = true
			}
		}
		for t := range tools {
			gr.Tools = append(gr.Tools, t)
		}
		sort.Strings(gr.Tools)
		gr.OwnerScoped = ownerScoped(r.Entities.Allow)
		if gr.OwnerScoped {
			gr.Notes = append(gr.Notes, "allow rules depend on the holder's ownership ($ownershipRefs/$currentUser): counts are those of the subjects above; each holder also sees what they own")
		}
		evals[i].out = gr
	}

	q := catalog.Query{Limit: graphPageSize}
	for {
		page, err := cat.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("policy graph: read the catalog: %w", err)
		}
		for _, it := range page.Items {
			if rep.Catalog.Entities >= maxEntities {
				rep.Catalog.Truncated = true
				break
			}
			var e map[string]any
			if err := json.Unmarshal(it, &e); err != nil {
				return nil, fmt.Errorf("policy graph: catalog entity: %w", err)
			}
			kind, _ := e["kind"].(string)
			kind = strings.ToLower(kind)
			if kind == "" {
				kind = "(none)"
			}
			rep.Catalog.Entities++
			rep.Catalog.Kinds[kind]++
			for _, ev := range evals {
				for _, g := range ev.grants {
					if g.Entity(e).Allowed {
						ev.out.Entities[kind]++
						ev.out.Visible++
						break
					}
				}
			}
		}
		if rep.Catalog.Truncated || page.NextCursor == "" || len(page.Items) == 0 {
			break
		}
		q = catalog.Query{Cursor: page.NextCursor, Limit: graphPageSize}
	}
	for _, ev := range evals {
		gr := ev.out
		every := len(gr.Tools) == len(rep.Tools) && rep.Catalog.Entities > 0
		for k, n := range rep.Catalog.Kinds {
			if _, ok := gr.Entities[k]; !ok {
				gr.Entities[k] = 0
			}
			if gr.Entities[k] != n {
				every = false
			}
		}
		gr.ReachesEverything = every
		if rep.Catalog.Truncated {
			gr.Notes = append(gr.Notes, fmt.Sprintf("the catalog was read only up to %d entities", maxEntities))
		}
		rep.Roles = append(rep.Roles, *gr)
	}
	return rep, nil
}

// representatives returns the subjects a role with binding b is evaluated
// for (see graphUsage), resolving users and groups in the catalog.
func representatives(ctx context.Context, cat graphCatalog, b policy.Binding, oauthScopes []string) ([]representative, []string, error) {
	var reps []representative
	var notes []string
	agent, agentDesc := "", ""
	if len(b.Agents) > 0 {
		agent = b.Agents[0]
		agentDesc = " via agent " + agent
	}
	base := func(userRef string, owners []string) policy.Subject {
		return policy.Subject{UserRef: userRef, OwnershipRefs: owners, ClientID: agent, Scopes: oauthScopes, Authenticated: true}
	}
	if b.Anonymous {
		reps = append(reps, representative{subject: policy.Subject{}, desc: "anonymous caller"})
	}
	for _, u := range b.Users {
		refs, err := ownershipOf(ctx, cat, u)
		switch {
		case errors.Is(err, errNoUser):
			notes = append(notes, u+" is not in the catalog: counted without groups")
			refs = []string{strings.ToLower(u)}
		case err != nil:
			return nil, nil, err
		}
		reps = append(reps, representative{subject: base(refs[0], refs), desc: fmt.Sprintf("%s (groups: %s)%s", refs[0], listOrNone(refs[1:]), agentDesc)})
	}
	for _, g := range b.BackstageGroups {
		chain, err := groupChain(ctx, cat, g)
		if err != nil {
			return nil, nil, err
		}
		if chain == nil {
			notes = append(notes, g+" is not in the catalog: nobody can hold the role through it")
			chain = []string{strings.ToLower(g)}
		}
		owners := append([]string{syntheticUser}, chain...)
		reps = append(reps, representative{subject: base(syntheticUser, owners), desc: fmt.Sprintf("a member of %s (ownership: %s)%s", chain[0], strings.Join(chain, ", "), agentDesc)})
	}
	userSide := b.Authenticated || len(b.IdPGroups) > 0 || len(b.Claims) > 0
	if userSide || (len(b.Agents) > 0 && len(b.Users) == 0 && len(b.BackstageGroups) == 0) {
		s := base(syntheticUser, []string{syntheticUser})
		var parts []string
		switch {
		case b.Authenticated:
			parts = append(parts, "any signed-in user")
		case len(b.IdPGroups) > 0:
			s.IdPGroups = []string{b.IdPGroups[0]}
			parts = append(parts, "a user in IdP group "+b.IdPGroups[0])
		case len(b.Claims) > 0:
			s.Claims = map[string][]string{}
			names := make([]string, 0, len(b.Claims))
			for k := range b.Claims {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				if len(b.Claims[k]) > 0 {
					s.Claims[k] = []string{b.Claims[k][0]}
					parts = append(parts, k+"="+b.Claims[k][0])
				}
			}
			parts = []string{"a user with claims " + strings.Join(parts, ", ")}
		default:
			parts = append(parts, "any signed-in user")
		}
		reps = append(reps, representative{subject: s, desc: parts[0] + " owning nothing" + agentDesc})
	}
	return reps, notes, nil
}

// ownerScoped reports whether a condition list uses the holder's ownership.
func ownerScoped(cs []policy.Condition) bool {
	for _, c := range cs {
		if c.Rule == policy.RuleIsEntityOwner {
			vs, _ := c.Params["claims"].([]string)
			if vs == nil {
				if anys, ok := c.Params["claims"].([]any); ok {
					for _, a := range anys {
						if s, ok := a.(string); ok {
							vs = append(vs, s)
						}
					}
				}
			}
			for _, v := range vs {
				if v == policy.ClaimOwnershipRefs || v == policy.ClaimCurrentUser {
					return true
				}
			}
		}
		if ownerScoped(c.AllOf) || ownerScoped(c.AnyOf) || (c.Not != nil && ownerScoped([]policy.Condition{*c.Not})) {
			return true
		}
	}
	return false
}

// masksOf renders a role's field masks as sorted "kinds: fields" strings.
func masksOf(r policy.Role) []string {
	out := []string{}
	for _, m := range r.FieldMasks {
		kinds := "*"
		if len(m.Kinds) > 0 {
			ks := make([]string, len(m.Kinds))
			for i, k := range m.Kinds {
				ks[i] = strings.ToLower(k)
			}
			sort.Strings(ks)
			kinds = strings.Join(ks, ",")
		}
		for _, f := range m.Fields {
			out = append(out, kinds+": "+f)
		}
	}
	sort.Strings(out)
	return dedupSorted(out)
}

func dedupSorted(xs []string) []string {
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// String renders the report as aligned tables.
func (r *GraphReport) String(policyFile string) string {
	var b strings.Builder
	kinds := sortedKinds(r.Catalog.Kinds)
	fmt.Fprintf(&b, "policy %s (sha256 %s); catalog: %d entities", policyFile, r.Policy, r.Catalog.Entities)
	if r.Catalog.Truncated {
		b.WriteString(" (TRUNCATED)")
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	head := []string{"ROLE", "TOOLS"}
	for _, k := range kinds {
		head = append(head, strings.ToUpper(k))
	}
	head = append(head, "MASKS", "FLAGS")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, gr := range r.Roles {
		row := []string{gr.Name, fmt.Sprintf("%d/%d", len(gr.Tools), len(r.Tools))}
		for _, k := range kinds {
			row = append(row, fmt.Sprintf("%d/%d", gr.Entities[k], r.Catalog.Kinds[k]))
		}
		row = append(row, fmt.Sprint(len(gr.Masks)), strings.Join(flagsOf(gr), ","))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
	for _, gr := range r.Roles {
		fmt.Fprintf(&b, "\nrole %s", gr.Name)
		if f := flagsOf(gr); len(f) > 0 {
			fmt.Fprintf(&b, " [%s]", strings.Join(f, ", "))
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "  subjects: %s\n", listOrNone(gr.Subjects))
		fmt.Fprintf(&b, "  tools:    %s\n", listOrNone(gr.Tools))
		fmt.Fprintf(&b, "  visible:  %d of %d entities\n", gr.Visible, r.Catalog.Entities)
		fmt.Fprintf(&b, "  masks:    %s\n", listOrNone(gr.Masks))
		for _, n := range gr.Notes {
			fmt.Fprintf(&b, "  note:     %s\n", n)
		}
	}
	return b.String()
}

func flagsOf(gr GraphRole) []string {
	var f []string
	if gr.ReachesEverything {
		f = append(f, "EVERYTHING")
	}
	if gr.OwnerScoped {
		f = append(f, "OWNER-SCOPED")
	}
	return f
}

func sortedKinds(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// GraphDiff lists what changed between two reports.
type GraphDiff struct {
	OldPolicy string   `json:"oldPolicy"`
	NewPolicy string   `json:"newPolicy"`
	Catalog   []string `json:"catalog"`
	Widened   []string `json:"widened"`
	Narrowed  []string `json:"narrowed"`
}

// DiffGraphs compares an earlier report with a new one.
func DiffGraphs(old, cur *GraphReport) *GraphDiff {
	d := &GraphDiff{OldPolicy: old.Policy, NewPolicy: cur.Policy, Catalog: []string{}, Widened: []string{}, Narrowed: []string{}}
	if old.Catalog.Entities != cur.Catalog.Entities {
		d.Catalog = append(d.Catalog, fmt.Sprintf("entities %d → %d", old.Catalog.Entities, cur.Catalog.Entities))
	}
	for _, k := range unionKeys(old.Catalog.Kinds, cur.Catalog.Kinds) {
		if a, b := old.Catalog.Kinds[k], cur.Catalog.Kinds[k]; a != b {
			d.Catalog = append(d.Catalog, fmt.Sprintf("%s %d → %d", k, a, b))
		}
	}
	oldRoles := map[string]GraphRole{}
	for _, r := range old.Roles {
		oldRoles[r.Name] = r
	}
	seen := map[string]bool{}
	for _, r := range cur.Roles {
		seen[r.Name] = true
		o, ok := oldRoles[r.Name]
		if !ok {
			d.Widened = append(d.Widened, fmt.Sprintf("role %s: new role (tools %s; %d entities visible)", r.Name, listOrNone(r.Tools), r.Visible))
			continue
		}
		added, removed := setDiff(o.Tools, r.Tools)
		for _, t := range added {
			d.Widened = append(d.Widened, fmt.Sprintf("role %s: tool %s added", r.Name, t))
		}
		for _, t := range removed {
			d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: tool %s removed", r.Name, t))
		}
		for _, k := range unionKeys(o.Entities, r.Entities) {
			a, b := o.Entities[k], r.Entities[k]
			switch {
			case b > a:
				d.Widened = append(d.Widened, fmt.Sprintf("role %s: %s %d → %d (+%d)", r.Name, k, a, b, b-a))
			case b < a:
				d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: %s %d → %d (-%d)", r.Name, k, a, b, a-b))
			}
		}
		madd, mrem := setDiff(o.Masks, r.Masks)
		for _, m := range mrem {
			d.Widened = append(d.Widened, fmt.Sprintf("role %s: field mask %q removed", r.Name, m))
		}
		for _, m := range madd {
			d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: field mask %q added", r.Name, m))
		}
		if r.ReachesEverything && !o.ReachesEverything {
			d.Widened = append(d.Widened, fmt.Sprintf("role %s: now reaches EVERYTHING", r.Name))
		}
		if !r.ReachesEverything && o.ReachesEverything {
			d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: no longer reaches everything", r.Name))
		}
	}
	for _, r := range old.Roles {
		if !seen[r.Name] {
			d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: removed", r.Name))
		}
	}
	return d
}

// String renders the diff for a terminal.
func (d *GraphDiff) String() string {
	var b strings.Builder
	if d.OldPolicy == d.NewPolicy {
		fmt.Fprintf(&b, "policy: unchanged (sha256 %s)\n", d.NewPolicy)
	} else {
		fmt.Fprintf(&b, "policy: sha256 %s → %s\n", d.OldPolicy, d.NewPolicy)
	}
	if len(d.Catalog) > 0 {
		fmt.Fprintf(&b, "catalog: %s\n", strings.Join(d.Catalog, "; "))
	} else {
		b.WriteString("catalog: same entity counts\n")
	}
	for _, w := range d.Widened {
		fmt.Fprintf(&b, "WIDENED   %s\n", w)
	}
	for _, n := range d.Narrowed {
		fmt.Fprintf(&b, "narrowed  %s\n", n)
	}
	fmt.Fprintf(&b, "%d widened, %d narrowed\n", len(d.Widened), len(d.Narrowed))
	return b.String()
}

func setDiff(old, cur []string) (added, removed []string) {
	o, c := map[string]bool{}, map[string]bool{}
	for _, x := range old {
		o[x] = true
	}
	for _, x := range cur {
		c[x] = true
		if !o[x] {
			added = append(added, x)
		}
	}
	for _, x := range old {
		if !c[x] {
			removed = append(removed, x)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

func unionKeys(a, b map[string]int) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// errNoUser reports a user that is not in the catalog.
var errNoUser = errors.New("no such user in the catalog")

// getEntity fetches one entity; a missing one is (nil, nil).
func getEntity(ctx context.Context, cat graphCatalog, r catalog.Ref) (map[string]any, error) {
	raw, err := cat.GetByName(ctx, r)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e map[string]any
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("entity %s: %w", r, err)
	}
	return e, nil
}

// findUserByEmail finds the one User entity whose spec.profile.email is
// email, as the server's emailMatchingUserEntityProfileEmail resolver does.
func findUserByEmail(ctx context.Context, cat graphCatalog, email string) (string, error) {
	if err := catalog.ValidateFilterValue(email); err != nil {
		return "", fmt.Errorf("--email: %w", err)
	}
	page, err := cat.Query(ctx, catalog.Query{
		Filters: []catalog.Filter{{"kind": {"user"}, "spec.profile.email": {email}}},
		Limit:   maxUserMatches,
	})
	if err != nil {
		return "", err
	}
	switch len(page.Items) {
	case 0:
		return "", errNoUser
	case 1:
	default:
		return "", fmt.Errorf("%d User entities have spec.profile.email=%s: the server refuses ambiguous users", len(page.Items), email)
	}
	var e map[string]any
	if err := json.Unmarshal(page.Items[0], &e); err != nil {
		return "", fmt.Errorf("user entity: %w", err)
	}
	ref := identity.EntityRef(e)
	if !strings.HasPrefix(ref, "user:") {
		return "", errors.New("the catalog returned a user entity without kind or name")
	}
	return ref, nil
}

// ownershipOf returns the user ref followed by the user's groups, resolved
// exactly as the server resolves them (identity.Resolver).
func ownershipOf(ctx context.Context, cat graphCatalog, userRef string) ([]string, error) {
	r, err := catalog.ParseRef(userRef, "user")
	if err != nil {
		return nil, err
	}
	refs, err := identity.NewResolver(server.IdentityCatalog(cat)).OwnershipRefs(ctx, strings.ToLower(r.String()))
	if errors.Is(err, identity.ErrUnknownUser) {
		return nil, errNoUser
	}
	return refs, err
}

// groupChain returns the group ref followed by its parents (childOf,
// transitively), or nil when the group is not in the catalog.
func groupChain(ctx context.Context, cat graphCatalog, groupRef string) ([]string, error) {
	r, err := catalog.ParseRef(groupRef, "group")
	if err != nil {
		return nil, err
	}
	g, err := getEntity(ctx, cat, r)
	if err != nil || g == nil {
		return nil, err
	}
	self := strings.ToLower(r.String())
	parents, err := walkGroups(ctx, cat, targets(g, "childOf"), map[string]bool{self: true})
	if err != nil {
		return nil, err
	}
	return append([]string{self}, parents...), nil
}

func walkGroups(ctx context.Context, cat graphCatalog, frontier []string, seen map[string]bool) ([]string, error) {
	var out []string
	for depth := 0; len(frontier) > 0 && depth < maxGroupDepth; depth++ {
		var next []string
		for _, g := range frontier {
			if seen[g] || !strings.HasPrefix(g, "group:") {
				continue
			}
			seen[g] = true
			out = append(out, g)
			r, err := catalog.ParseRef(g, "group")
			if err != nil {
				continue
			}
			e, err := getEntity(ctx, cat, r)
			if err != nil {
				return nil, err
			}
			if e != nil {
				next = append(next, targets(e, "childOf")...)
			}
		}
		frontier = next
	}
	sort.Strings(out)
	return out, nil
}

func targets(e map[string]any, typ string) []string {
	var out []string
	rels, _ := e["relations"].([]any)
	for _, r := range rels {
		m, _ := r.(map[string]any)
		if t, _ := m["type"].(string); t == typ {
			if ref, _ := m["targetRef"].(string); ref != "" {
				out = append(out, strings.ToLower(ref))
			}
		}
	}
	return out
}
