package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/backstage-mcp/backstage-mcp/policy/review"
	"github.com/backstage-mcp/backstage-mcp/server"
)

// Bounds of the live-catalog reads of policy graph.
const (
	defaultGraphEntities = 100000
	maxOldReportBytes    = 16 << 20
)

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
                          ` + review.SyntheticUser + `) whose ownership refs are the
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
	fail := failer("policy graph", stderr)
	if code, done := parseFlagsOnly(fs, args, stdout, stderr, fail); done {
		return code
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
	var old *review.Report
	if *diffFile != "" {
		raw, err := readBounded(*diffFile, maxOldReportBytes)
		if err != nil {
			return fail("%v", err)
		}
		old = &review.Report{}
		if err := json.Unmarshal(raw, old); err != nil || old.Version != review.ReportVersion {
			return fail("%s is not a policy graph --json report (version %d): %v", *diffFile, review.ReportVersion, err)
		}
	}
	data, _, doc, ok := loadPolicyFile(*policyFile, stderr, fail)
	if !ok {
		return 2
	}
	cat, err := server.NewCatalogClient(cfg, appVersion(), nil, nil)
	if err != nil {
		return fail("catalog client: %v", err)
	}
	rep, err := review.Graph(ctx, doc, data, server.ReviewCatalog(cat), *maxEntities)
	if err != nil {
		return fail("%v", err)
	}
	if old != nil {
		d := review.Compare(old, rep)
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
