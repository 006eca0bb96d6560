package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
	"github.com/backstage-mcp/backstage-mcp/policy/review"
	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

const policyUsage = `Usage:
  backstage-mcp policy check FILE
  backstage-mcp policy explain (--policy FILE | --config FILE) [subject flags] [--tool T]
                               [--entity-file ENTITY.json | --entity REF]
  backstage-mcp policy graph --config FILE [--json] [--diff OLD.json]

check    reports every problem in a policy file as FILE:LINE:COL: PATH: MESSAGE
         (unknown keys and rule names, invalid refs, roles that bind nobody,
         scopes no agent can reach). Exit 0 when valid (warnings allowed),
         1 when there are errors, 2 on usage errors or an unreadable file.

explain  decides for one subject, offline, and prints the chain behind the
         answer: which roles matched and why, the tool decision, every entity
         rule evaluated against the entity, field masks, the catalog filters
         pushed down to Backstage, the rate class. With --config the policy
         file is the config's policy.file (unless --policy is given), and
         --entity REF, --email E and --user REF (without --ownership) are
         looked up in the live catalog the way the server does it. Exit 0
         when allowed, 1 when denied, 2 on usage errors, an invalid policy
         or a failed catalog lookup.

graph    reads the live catalog through the config's Backstage and prints,
         for every role, the tools it reaches, how many entities of each
         kind it can see and its field masks; roles that reach everything
         are flagged. --json writes a stable report; --diff OLD.json shows
         what widened or narrowed since that report. Exit 0 when nothing
         widened, 1 when something widened (--diff), 2 on errors.

Examples:
  backstage-mcp policy check policy.yaml

  # May jane's IDE assistant read this component?
  backstage-mcp policy explain --policy policy.yaml \
    --user user:default/jane --groups engineering \
    --ownership group:default/team-a,group:default/platform \
    --agent vscode-copilot --scopes backstage-mcp:catalog \
    --tool catalog_get_entity --entity-file component.json

  # What can the CI bot do at all?
  backstage-mcp policy explain --policy policy.yaml --agent ci-bot \
    --scopes backstage-mcp:catalog --tool catalog_get_api_definition

  # Demo mode: an unauthenticated caller.
  backstage-mcp policy explain --policy policy.yaml --anonymous --tool catalog_search_entities

  # As the server would see ben: user and groups resolved in the live catalog.
  backstage-mcp policy explain --config config.yaml --email ben@example.com \
    --scopes backstage-mcp:catalog --tool catalog_get_entity --entity component:default/checkout-service

  # Monthly drift review.
  backstage-mcp policy graph --config config.yaml --json > graph-$(date +%Y-%m).json
  backstage-mcp policy graph --config config.yaml --diff graph-last-month.json

The policy format is documented in policy/doc.md (JSON Schema: policy/policy.schema.json).
`

// maxEntityFile bounds --entity-file.
const maxEntityFile = 4 << 20

// runPolicy implements "backstage-mcp policy".
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runGroup("policy", policyUsage, args, stdout, stderr, map[string]func([]string) int{
		"check":   func(args []string) int { return policyCheck(args, stdout, stderr) },
		"explain": func(args []string) int { return policyExplain(ctx, args, stdout, stderr) },
		"graph":   func(args []string) int { return policyGraph(ctx, args, stdout, stderr) },
	})
}

func policyCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: backstage-mcp policy check FILE\n\nExample:\n  backstage-mcp policy check policy.yaml\n")
	}
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	file := fs.Arg(0)
	data, err := server.ReadPolicyFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp policy check: %v\n", err)
		return 2
	}
	diags := policyfile.Check(data, file)
	errs, warns := 0, 0
	for _, d := range diags {
		fmt.Fprintln(stdout, d.String())
		if d.Severity == policy.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	if errs > 0 {
		fmt.Fprintf(stdout, "%s: %d error(s), %d warning(s)\n", file, errs, warns)
		return 1
	}
	if warns > 0 {
		fmt.Fprintf(stdout, "%s: ok, %d warning(s)\n", file, warns)
		return 0
	}
	fmt.Fprintf(stdout, "%s: ok\n", file)
	return 0
}

// listFlag collects comma-separated values; the flag may repeat.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// claimFlag collects repeated name=value claims.
type claimFlag map[string][]string

func (c claimFlag) String() string {
	var parts []string
	for k, vs := range c {
		for _, v := range vs {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ",")
}

func (c claimFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	c[k] = append(c[k], v)
	return nil
}

func policyExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		groups, ownership, scopes listFlag
		claims                    = claimFlag{}
	)
	policyFile := fs.String("policy", "", "policy `FILE` (YAML); overrides the config's policy.file")
	configFile := fs.String("config", "", "server config `FILE`: its policy.file, and its Backstage for --entity, --email and group lookups")
	user := fs.String("user", "", "the user's Backstage entity `REF`, e.g. user:default/jane (with --config and without --ownership, their groups are looked up)")
	email := fs.String("email", "", "the user's e-mail; with --config the User entity is found by spec.profile.email, as the server does")
	sub := fs.String("sub", "", "the token subject (informational)")
	fs.Var(&groups, "groups", "IdP groups from the token's groups claim, comma-separated")
	fs.Var(claims, "claim", "a token claim `NAME=VALUE` (repeatable)")
	fs.Var(&ownership, "ownership", "the user's Backstage groups (transitive), comma-separated full refs")
	agent := fs.String("agent", "", "the agent's OAuth client `ID`")
	fs.Var(&scopes, "scopes", "OAuth scopes of the agent's token, comma-separated")
	anonymous := fs.Bool("anonymous", false, "an unauthenticated caller (demo mode)")
	tool := fs.String("tool", "", "the tool `NAME` to decide for, e.g. catalog_get_entity")
	entityFile := fs.String("entity-file", "", "a Backstage entity as JSON (as the catalog API returns it) to decide for")
	entityRef := fs.String("entity", "", "an entity `REF` fetched from the live catalog (needs --config), e.g. component:default/checkout-service")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: backstage-mcp policy explain (--policy FILE | --config FILE) [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\n"+policyUsage[strings.Index(policyUsage, "Examples:"):])
	}
	fail := failer("policy explain", stderr)
	if code, done := parseFlagsOnly(fs, args, stdout, stderr, fail); done {
		return code
	}
	if *tool == "" && *entityFile == "" && *entityRef == "" {
		return fail("give --tool, --entity-file or --entity, or several")
	}
	if *entityFile != "" && *entityRef != "" {
		return fail("give --entity-file or --entity, not both")
	}
	if *anonymous && (*user != "" || *email != "" || len(groups) > 0 || len(ownership) > 0 || len(scopes) > 0 || len(claims) > 0) {
		return fail("--anonymous takes no user, email, groups, ownership, claims or scopes")
	}
	var cfg *server.Config
	if *configFile != "" {
		c, err := server.LoadConfig(*configFile, os.Getenv)
		if err != nil {
			return fail("%v", err)
		}
		cfg = c
		if *policyFile == "" {
			if cfg.Policy.File == "" {
				return fail("%s sets no policy.file; pass the policy with --policy FILE", *configFile)
			}
			*policyFile = cfg.Policy.File
		}
	}
	if *policyFile == "" {
		fmt.Fprintln(stderr, "backstage-mcp policy explain: --policy FILE or --config FILE is required")
		fs.Usage()
		return 2
	}
	if *entityRef != "" && cfg == nil {
		return fail("--entity REF needs --config FILE (to reach Backstage); offline, use --entity-file")
	}
	_, pol, _, ok := loadPolicyFile(*policyFile, stderr, fail)
	if !ok {
		return 2
	}
	q := review.Question{
		Tool: *tool, UserRef: *user, Email: *email, Sub: *sub,
		IdPGroups: groups, Claims: claims, OwnershipRefs: ownership,
		ClientID: *agent, Scopes: scopes, Anonymous: *anonymous,
	}
	switch {
	case *entityFile != "":
		raw, err := readBounded(*entityFile, maxEntityFile)
		if err != nil {
			return fail("%v", err)
		}
		if err := json.Unmarshal(raw, &q.Entity); err != nil || q.Entity == nil {
			return fail("%s: not a JSON object: %v", *entityFile, err)
		}
	case *entityRef != "":
		r, err := catalog.ParseRef(*entityRef, "")
		if err != nil {
			return fail("--entity: %v", err)
		}
		q.EntityRef = r.String()
	}
	var cat review.Catalog
	if cfg != nil && q.NeedsCatalog() {
		if cfg.Backstage.BaseURL == "" {
			return fail("%s sets no backstage.baseUrl: cannot look up %s in the catalog", *configFile, q.Lookup())
		}
		client, err := server.NewCatalogClient(cfg, version, nil, nil)
		if err != nil {
			return fail("catalog client: %v", err)
		}
		cat = server.ReviewCatalog(client)
	}
	a, err := review.Explain(ctx, pol, cat, q)
	if err != nil {
		return fail("%v", err)
	}
	notesTo := stdout
	if *asJSON {
		notesTo = stderr
	}
	for _, n := range a.Notes {
		fmt.Fprintln(notesTo, "note: "+n)
	}
	if *asJSON {
		if err := writeJSON(stdout, a.Explanation); err != nil {
			return fail("%v", err)
		}
	} else {
		fmt.Fprint(stdout, a.Explanation.String())
	}
	if a.Explanation.Allowed {
		return 0
	}
	return 1
}

// loadPolicyFile reads and parses a policy file. A read error is reported
// with fail, parse errors are printed as they are (FILE:LINE:COL lines);
// ok is false after either, and the command exits 2.
func loadPolicyFile(path string, stderr io.Writer, fail func(format string, a ...any) int) (data []byte, pol *policy.Policy, doc policy.Document, ok bool) {
	data, err := server.ReadPolicyFile(path)
	if err != nil {
		fail("%v", err)
		return nil, nil, doc, false
	}
	pol, doc, err = policyfile.Parse(data, path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, doc, false
	}
	return data, pol, doc, true
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}
