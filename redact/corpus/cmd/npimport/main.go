// Command npimport builds an outside corpus of redaction test data from the
// rule files of Nosey Parker (praetorian-inc/noseyparker, Apache-2.0) or of
// Kingfisher (mongodb/kingfisher, Apache-2.0, whose rule files have the
// same shape; --rules-dir data/rules/): every
// string of a rule's examples becomes a labelled secret, every string of its
// negative_examples a labelled non-secret, and the rule file's base name is
// the family. Examples of rules not in Nosey Parker's "secret" category
// (identifiers: ARNs, bucket names, OAuth client ids, user names) are kept
// with the label "identifier" and not scored: they are ordinary catalog data.
// Kingfisher marks such rules "visible: false" (values another rule's check
// depends on, such as a product id) instead of by category. Only these
// strings are taken, as test data; see the NOTICE
// beside the output.
//
// Each rule's pattern is kept verbatim in a second file, so that the
// source's whole rule set can be asked whether it finds a secret in a
// negative example (corpus.SourceFlagged).
//
//	go run ./redact/corpus/cmd/npimport --git-dir /path/to/noseyparker.git \
//	    --out testdata/redact/outside/noseyparker.jsonl \
//	    --rules-out testdata/redact/outside/noseyparker-rules.jsonl
//	go run ./redact/corpus/cmd/npimport --git-dir /path/to/kingfisher.git \
//	    --rules-dir data/rules/ --out testdata/redact/outside/kingfisher.jsonl \
//	    --rules-out testdata/redact/outside/kingfisher-rules.jsonl
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
	"go.yaml.in/yaml/v3"
)

const defaultRulesDir = "crates/noseyparker/data/default/builtin/rules/"

type ruleFile struct {
	Rules []struct {
		ID               string   `yaml:"id"`
		Name             string   `yaml:"name"`
		Pattern          string   `yaml:"pattern"`
		Categories       []string `yaml:"categories"`
		Examples         []string `yaml:"examples"`
		NegativeExamples []string `yaml:"negative_examples"`
		Visible          *bool    `yaml:"visible"`
	} `yaml:"rules"`
}

func main() {
	gitDir := flag.String("git-dir", "", "git directory of a noseyparker clone")
	rev := flag.String("rev", "HEAD", "revision to read")
	out := flag.String("out", "testdata/redact/outside/noseyparker.jsonl", "output file of the examples")
	rulesOut := flag.String("rules-out", "testdata/redact/outside/noseyparker-rules.jsonl", "output file of the rules' patterns")
	rulesDir := flag.String("rules-dir", defaultRulesDir, "folder of the rule files in the repository")
	flag.Parse()
	if err := run(*gitDir, *rev, *rulesDir, *out, *rulesOut); err != nil {
		fmt.Fprintln(os.Stderr, "npimport:", err)
		os.Exit(1)
	}
}

func git(ctx context.Context, gitDir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir", gitDir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("npimport: git %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return b, nil
}

func run(gitDir, rev, rulesDir, out, rulesOut string) error {
	if gitDir == "" {
		return errors.New("npimport: --git-dir is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	commit, err := git(ctx, gitDir, "rev-parse", rev)
	if err != nil {
		return err
	}
	list, err := git(ctx, gitDir, "ls-tree", "--name-only", rev, rulesDir)
	if err != nil {
		return err
	}
	files := strings.Fields(string(list))
	sort.Strings(files)
	var cases []corpus.OutsideCase
	var rules []corpus.SourceRule
	seen := map[string]bool{}
	for _, f := range files {
		if !strings.HasSuffix(f, ".yml") && !strings.HasSuffix(f, ".yaml") {
			continue
		}
		b, err := git(ctx, gitDir, "show", rev+":"+f)
		if err != nil {
			return err
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			return fmt.Errorf("npimport: %s: %w", f, err)
		}
		family := strings.TrimSuffix(strings.TrimSuffix(path.Base(f), ".yml"), ".yaml")
		for _, r := range rf.Rules {
			rules = append(rules, corpus.SourceRule{Rule: r.ID, Pattern: r.Pattern})
			add := func(label string, texts []string) {
				for i, t := range texts {
					id := fmt.Sprintf("%s/%s/%d", r.ID, label, i)
					if seen[id] {
						id += "@" + family // two rule files reuse one rule id (Kingfisher's fullstory and fullstory_v2)
					}
					seen[id] = true
					cases = append(cases, corpus.OutsideCase{
						ID: id, Family: family, Rule: r.ID, Name: r.Name,
						Label: label, Text: t,
					})
				}
			}
			label := corpus.LabelIdentifier
			for _, c := range r.Categories {
				if c == "secret" {
					label = corpus.LabelSecret
				}
			}
			if strings.HasPrefix(r.ID, "kingfisher.") {
				// Kingfisher's categories are not kept up; a rule is
				// an identifier when it is hidden, a value another
				// rule's check depends on.
				label = corpus.LabelSecret
				if r.Visible != nil && !*r.Visible {
					label = corpus.LabelIdentifier
				}
			}
			add(label, r.Examples)
			add(corpus.LabelNegative, r.NegativeExamples)
		}
	}
	var buf bytes.Buffer
	if err := corpus.WriteOutside(&buf, cases); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("npimport: %w", err)
	}
	buf.Reset()
	if err := corpus.WriteSourceRules(&buf, rules); err != nil {
		return err
	}
	if err := os.WriteFile(rulesOut, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("npimport: %w", err)
	}
	fmt.Printf("%d cases and %d rules from %d rule files at %s", len(cases), len(rules), len(files), commit)
	return nil
}
