package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

const redactUsage = `Usage:
  backstage-mcp redact scan [--json|--text] [FILE|-]
  backstage-mcp redact report [--corpus FILE | --generate [--seed N]] [--verbose]
  backstage-mcp redact rules

scan     redacts a file (or standard input with "-" or no argument) exactly as
         the server redacts tool results, and writes the result to standard
         output. Input that parses as JSON is walked leaf by leaf (keys give
         context: "password": "..." is judged with its key); anything else is
         treated as free text, YAML or an API definition. Invisible Unicode
         (tag characters, bidi controls, zero-width) is removed. Counts per
         rule go to standard error. Exit 0 on success, 1 if the input could
         not be read or redacted, 2 on usage errors.

report   measures precision, recall and F1 per rule family on the labelled
         corpus (JSON Lines: id, mode, input, secrets with start/end/type).
         Default corpus: testdata/redact/corpus.jsonl, or the generated one
         when that file is absent. Exit 0, or 1 if the corpus is unreadable.

rules    lists every rule: id, family and what it detects.

Examples:
  backstage-mcp redact scan catalog-info.yaml
  curl -s "$BACKSTAGE/api/catalog/entities" | backstage-mcp redact scan - > clean.json
  backstage-mcp redact report --verbose
  backstage-mcp redact report --generate --seed 42

Secrets become [REDACTED:<rule-id>]; only the secret part is replaced (a URL
keeps its host, a connection string its database). See redact/doc.md.
`

// maxScanInput bounds what "redact scan" reads.
const maxScanInput = 64 << 20

// runRedact implements "backstage-mcp redact".
func runRedact(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runGroup("redact", redactUsage, args, stdout, stderr, map[string]func([]string) int{
		"scan":   func(args []string) int { return redactScan(ctx, args, stdin, stdout, stderr) },
		"report": func(args []string) int { return redactReport(ctx, args, stdout, stderr) },
		"rules":  func(args []string) int { return redactRules(args, stdout, stderr) },
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

const defaultCorpus = "testdata/redact/corpus.jsonl"

func redactReport(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := redactFlagSet("report", stderr)
	path := fs.String("corpus", "", "labelled corpus in JSON Lines (default "+defaultCorpus+", or the generated corpus when absent)")
	generate := fs.Bool("generate", false, "measure on a freshly generated corpus instead of a file")
	seed := fs.Uint64("seed", corpus.DefaultSeed, "seed for --generate")
	verbose := fs.Bool("verbose", false, "list every missed secret and every false positive")
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 || (*generate && *path != "") {
		fs.Usage()
		return 2
	}
	var cases []corpus.Case
	source := ""
	switch {
	case *generate:
		cases, source = corpus.Generate(*seed), fmt.Sprintf("generated corpus (seed %d)", *seed)
	default:
		p := *path
		if p == "" {
			p = defaultCorpus
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				cases, source = corpus.Generate(corpus.DefaultSeed), fmt.Sprintf("generated corpus (seed %d)", corpus.DefaultSeed)
				break
			}
		}
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintf(stderr, "backstage-mcp redact report: %v\n", err)
			return 1
		}
		defer f.Close()
		cases, err = corpus.Read(bufio.NewReader(f))
		if err != nil {
			fmt.Fprintf(stderr, "backstage-mcp redact report: %v\n", err)
			return 1
		}
		source = p
	}
	r, err := redact.New()
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp redact report: %v\n", err)
		return 1
	}
	res, err := corpus.Evaluate(r, cases)
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp redact report: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Redaction report on %s (%d rules)\n\n", source, len(r.Rules()))
	if err := res.Print(stdout, *verbose); err != nil {
		fmt.Fprintf(stderr, "backstage-mcp redact report: %v\n", err)
		return 1
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
