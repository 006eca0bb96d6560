package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

const redactUsage = `Usage:
  backstage-mcp redact scan [--json|--text] [FILE|-]
  backstage-mcp redact rules

scan     redacts a file (or standard input with "-" or no argument) exactly as
         the server redacts tool results, and writes the result to standard
         output. Input that parses as JSON is walked leaf by leaf (keys give
         context: "password": "..." is judged with its key); anything else is
         treated as free text, YAML or an API definition. Invisible Unicode
         (tag characters, bidi controls, zero-width) is removed. Counts per
         rule go to standard error. Exit 0 on success, 1 if the input could
         not be read or redacted, 2 on usage errors.

rules    lists every rule: id, family and what it detects.

Examples:
  backstage-mcp redact scan catalog-info.yaml
  curl -s "$BACKSTAGE/api/catalog/entities" | backstage-mcp redact scan - > clean.json

Secrets become [REDACTED:<rule-id>]; only the secret part is replaced (a URL
keeps its host, a connection string its database). See redact/doc.md.
`

// maxScanInput bounds what "redact scan" reads.
const maxScanInput = 64 << 20

// runRedact implements "backstage-mcp redact".
func runRedact(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runGroup("redact", redactUsage, args, stdout, stderr, map[string]func([]string) int{
		"scan":  func(args []string) int { return redactScan(ctx, args, stdin, stdout, stderr) },
		"rules": func(args []string) int { return redactRules(args, stdout, stderr) },
	})
}

func redactFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("redact "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), redactUsage+"\nFlags of "+name+":\n")
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses fs; it returns -1 to continue, else the exit code.

func redactScan(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := redactFlagSet("scan", stderr)
	forceJSON := fs.Bool("json", false, "treat the input as JSON (fail if it is not)")
	forceText := fs.Bool("text", false, "treat the input as text even if it parses as JSON")
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 1 || (*forceJSON && *forceText) {
		fs.Usage()
		return 2
	}
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "backstage-mcp redact scan: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, maxScanInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp redact scan: read %s: %v\n", name, err)
		return 1
	}
	if len(data) > maxScanInput {
		fmt.Fprintf(stderr, "backstage-mcp redact scan: %s is larger than %d bytes\n", name, maxScanInput)
		return 1
	}
	r, err := redact.New()
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp redact scan: %v\n", err)
		return 1
	}
	var out []byte
	var rep redact.Report
	mode := "text"
	if *forceJSON || (!*forceText && json.Valid(data)) {
		mode = "json"
		out, rep, err = r.JSON(data)
		if err != nil {
			// Fail closed: print nothing of the input.
			fmt.Fprintf(stderr, "backstage-mcp redact scan: %v\n", err)
			return 1
		}
	} else {
		s, rp := r.Text(string(data))
		out, rep = []byte(s), rp
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "backstage-mcp redact scan: write: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "%s (%s): %d redaction(s), %d invisible character(s) removed\n", name, mode, rep.Total(), rep.Invisible)
	ids := make([]string, 0, len(rep.Counts))
	for id := range rep.Counts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(stderr, "  %-34s %d\n", id, rep.Counts[id])
	}
	return 0
}

func redactRules(args []string, stdout, stderr io.Writer) int {
	fs := redactFlagSet("rules", stderr)
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code
	}
	r, err := redact.New()
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp redact rules: %v\n", err)
		return 1
	}
	var b strings.Builder
	for _, ri := range r.Rules() {
		fmt.Fprintf(&b, "%-34s %-18s %s\n", ri.ID, ri.Family, ri.Description)
	}
	fmt.Fprint(stdout, b.String())
	return 0
}
