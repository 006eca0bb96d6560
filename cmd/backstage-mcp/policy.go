package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
)

const policyUsage = `Usage:
  backstage-mcp policy check FILE
  backstage-mcp policy explain --policy FILE [subject flags] [--tool T] [--entity-file ENTITY.json]

check    reports every problem in a policy file as FILE:LINE:COL: PATH: MESSAGE
         (unknown keys and rule names, invalid refs, roles that bind nobody,
         scopes no agent can reach). Exit 0 when valid (warnings allowed),
         1 when there are errors, 2 on usage errors or an unreadable file.

explain  decides for one subject, offline, and prints the chain behind the
         answer: which roles matched and why, the tool decision, every entity
         rule evaluated against the entity, field masks, the catalog filters
         pushed down to Backstage, the rate class. Exit 0 when allowed,
         1 when denied, 2 on usage errors or an invalid policy.

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

The policy format is documented in policy/doc.md (JSON Schema: policy/policy.schema.json).
`

// maxEntityFile bounds --entity-file.
const maxEntityFile = 4 << 20

// runPolicy implements "backstage-mcp policy".
func runPolicy(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, policyUsage)
		return 0
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "explain":
		return policyExplain(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "backstage-mcp policy: unknown subcommand %q\n\n%s", args[0], policyUsage)
	return 2
}

func policyCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: backstage-mcp policy check FILE\n\nExample:\n  backstage-mcp policy check policy.yaml\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	file := fs.Arg(0)
	data, err := readBounded(file, policyfile.MaxSize)
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

func policyExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		groups, ownership, scopes listFlag
		claims                    = claimFlag{}
	)
	policyFile := fs.String("policy", "", "policy `FILE` (YAML)")
	configFile := fs.String("config", "", "server config `FILE` (not yet supported here: use --policy)")
	user := fs.String("user", "", "the user's Backstage entity `REF`, e.g. user:default/jane")
	email := fs.String("email", "", "the user's e-mail (informational offline: give --user and --ownership, as the server would resolve them)")
	sub := fs.String("sub", "", "the token subject (informational)")
	fs.Var(&groups, "groups", "IdP groups from the token's groups claim, comma-separated")
	fs.Var(claims, "claim", "a token claim `NAME=VALUE` (repeatable)")
	fs.Var(&ownership, "ownership", "the user's Backstage groups (transitive), comma-separated full refs")
	agent := fs.String("agent", "", "the agent's OAuth client `ID`")
	fs.Var(&scopes, "scopes", "OAuth scopes of the agent's token, comma-separated")
	anonymous := fs.Bool("anonymous", false, "an unauthenticated caller (demo mode)")
	tool := fs.String("tool", "", "the tool `NAME` to decide for, e.g. catalog_get_entity")
	entityFile := fs.String("entity-file", "", "a Backstage entity as JSON (as the catalog API returns it) to decide for")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: backstage-mcp policy explain --policy FILE [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\n"+policyUsage[strings.Index(policyUsage, "Examples:"):])
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "backstage-mcp policy explain: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *configFile != "" && *policyFile == "" {
		fmt.Fprintln(stderr, "backstage-mcp policy explain: --config is not supported yet; pass the policy file with --policy FILE")
		return 2
	}
	if *policyFile == "" {
		fmt.Fprintln(stderr, "backstage-mcp policy explain: --policy FILE is required")
		fs.Usage()
		return 2
	}
	if *tool == "" && *entityFile == "" {
		fmt.Fprintln(stderr, "backstage-mcp policy explain: give --tool, --entity-file, or both")
		return 2
	}
	if *anonymous && (*user != "" || *email != "" || len(groups) > 0 || len(ownership) > 0 || len(scopes) > 0 || len(claims) > 0) {
		fmt.Fprintln(stderr, "backstage-mcp policy explain: --anonymous takes no user, groups, ownership, claims or scopes")
		return 2
	}
	data, err := readBounded(*policyFile, policyfile.MaxSize)
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp policy explain: %v\n", err)
		return 2
	}
	pol, _, err := policyfile.Parse(data, *policyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	var entity map[string]any
	if *entityFile != "" {
		raw, err := readBounded(*entityFile, maxEntityFile)
		if err != nil {
			fmt.Fprintf(stderr, "backstage-mcp policy explain: %v\n", err)
			return 2
		}
		if err := json.Unmarshal(raw, &entity); err != nil || entity == nil {
			fmt.Fprintf(stderr, "backstage-mcp policy explain: %s: not a JSON object: %v\n", *entityFile, err)
			return 2
		}
	}
	s := policy.Subject{
		UserRef:       *user,
		Email:         *email,
		Sub:           *sub,
		IdPGroups:     groups,
		Claims:        claims,
		OwnershipRefs: ownership,
		ClientID:      *agent,
		Scopes:        scopes,
		Authenticated: !*anonymous,
	}
	if s.UserRef != "" {
		s.OwnershipRefs = append([]string{s.UserRef}, s.OwnershipRefs...)
	}
	x := pol.Explain(s, *tool, entity)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(x); err != nil {
			fmt.Fprintf(stderr, "backstage-mcp policy explain: %v\n", err)
			return 2
		}
	} else {
		if *email != "" && *user == "" {
			fmt.Fprintln(stdout, "note: offline, --email is not resolved to a Backstage user; give --user and --ownership as the server would resolve them")
		}
		fmt.Fprint(stdout, x.String())
	}
	if x.Allowed {
		return 0
	}
	return 1
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
