// Command report measures the redactor's precision, recall and F1 per
// rule family on a labelled corpus (JSON Lines: id, mode, input, secrets
// with start/end/type). It is the project's own evaluation tool and is not
// part of the backstage-mcp binary.
//
//	go run ./redact/corpus/cmd/report [--corpus FILE | --generate [--seed N]] [--verbose]
//
// Default corpus: testdata/redact/corpus.jsonl (run from the repository
// root), or the generated one when that file is absent. Exit 0, 1 if the
// corpus is unreadable, 2 on usage errors.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

const defaultCorpus = "testdata/redact/corpus.jsonl"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("corpus", "", "labelled corpus in JSON Lines (default "+defaultCorpus+", or the generated corpus when absent)")
	generate := fs.Bool("generate", false, "measure on a freshly generated corpus instead of a file")
	seed := fs.Uint64("seed", corpus.DefaultSeed, "seed for --generate")
	verbose := fs.Bool("verbose", false, "list every missed secret and every false positive")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || (*generate && *path != "") {
		fmt.Fprintln(stderr, "report: give --corpus FILE or --generate, not both, and no other arguments")
		return 2
	}
	cases, source, err := load(*path, *generate, *seed)
	if err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return 1
	}
	r, err := redact.New()
	if err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return 1
	}
	res, err := corpus.Evaluate(r, cases)
	if err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Redaction report on %s (%d rules)\n\n", source, len(r.Rules()))
	if err := res.Print(stdout, *verbose); err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return 1
	}
	return 0
}

func load(path string, generate bool, seed uint64) ([]corpus.Case, string, error) {
	if generate {
		return corpus.Generate(seed), fmt.Sprintf("generated corpus (seed %d)", seed), nil
	}
	if path == "" {
		path = defaultCorpus
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return corpus.Generate(corpus.DefaultSeed), fmt.Sprintf("generated corpus (seed %d)", corpus.DefaultSeed), nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	cases, err := corpus.Read(bufio.NewReader(f))
	if err != nil {
		return nil, "", err
	}
	return cases, path, nil
}
