package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
)

// sizeRow sums the answers of one path to one question type.
type sizeRow struct {
	Question string `json:"question"`
	Path     string `json:"path"`
	Answers  int    `json:"answers"`
	Errors   int    `json:"errors"`
	// Text is what an MCP client hands its model (text content); Raw the
	// whole result as sent (content plus structuredContent for MCP).
	TextBytes   int64 `json:"text_bytes"`
	RawBytes    int64 `json:"raw_bytes"`
	TextO200k   int64 `json:"text_tokens_o200k"`
	TextCl100k  int64 `json:"text_tokens_cl100k"`
	TextApprox  int64 `json:"text_tokens_approx"`
	RawO200k    int64 `json:"raw_tokens_o200k"`
	texts, raws []string
}

// sizes asks a sample of lookups and searches once on every path and
// measures the answers.
func (b *bench) sizes(ctx context.Context, paths []*pathSet, qs questionSet) error {
	n := min(b.o.sizeSample, len(qs.distinct))
	start := len(qs.distinct) / 2
	if start+n > len(qs.distinct) {
		start = 0
	}
	refs := qs.distinct[start : start+n]
	searches := qs.searches[:min(max(1, n/5), len(qs.searches))]
	type variant struct {
		label string
		path  *pathSet
		full  bool
	}
	var variants []variant
	for _, p := range paths {
		switch p.name {
		case "ours":
			variants = append(variants, variant{"ours (summary, default)", p, false}, variant{"ours (detail=full)", p, true})
		case "peer":
			variants = append(variants, variant{"peer (Backstage MCP)", p, false})
		case "rest":
			variants = append(variants, variant{"rest (Backstage REST)", p, false})
		}
	}
	var rows []*sizeRow
	for _, qt := range []string{qGet, qSearch} {
		for _, v := range variants {
			if qt == qSearch && v.full {
				continue
			}
			row := &sizeRow{Question: qt, Path: v.label}
			var list []question
			if qt == qGet {
				for _, r := range refs {
					list = append(list, question{Kind: qGet, Ref: r, Full: v.full})
				}
			} else {
				list = searches
			}
			for _, q := range list {
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				a, err := v.path.callers[0].call(cctx, q, true)
				cancel()
				if err != nil || a.ToolError {
					row.Errors++
					continue
				}
				row.Answers++
				row.TextBytes += int64(len(a.Text))
				row.RawBytes += int64(len(a.Raw))
				row.TextApprox += int64(approxTokens(a.Text))
				row.texts = append(row.texts, a.Text)
				row.raws = append(row.raws, string(a.Raw))
			}
			rows = append(rows, row)
		}
	}
	// Real BPE counts through the tokenizer package, when node can run it.
	var all []string
	for _, r := range rows {
		all = append(all, r.texts...)
		all = append(all, r.raws...)
	}
	counts, err := b.countTokens(ctx, all)
	if err != nil {
		b.log.Warn("BPE tokenizer unavailable; only the approximation is reported", "err", err)
		b.res.TokenizerNote = "BPE tokenizer unavailable (" + err.Error() + "); only the approximation is reported"
	} else {
		b.res.TokenizerNote = "o200k_base and cl100k_base counts from the gpt-tokenizer npm package (testdata/bench/tokenizer); approx = the regex approximation of server/bench_test.go"
		i := 0
		for _, r := range rows {
			for range r.texts {
				r.TextO200k += int64(counts.O200k[i])
				r.TextCl100k += int64(counts.Cl100k[i])
				i++
			}
			for range r.raws {
				r.RawO200k += int64(counts.O200k[i])
				i++
			}
		}
	}
	for _, r := range rows {
		b.res.Sizes = append(b.res.Sizes, *r)
	}
	return nil
}

type tokenCounts struct {
	O200k  []int `json:"o200k_base"`
	Cl100k []int `json:"cl100k_base"`
}

// countTokens runs testdata/bench/tokenizer/count.js on texts, installing
// its one npm package first if needed.
func (b *bench) countTokens(ctx context.Context, texts []string) (*tokenCounts, error) {
	dir := filepath.Join(b.root, "testdata", "bench", "tokenizer")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "gpt-tokenizer", "package.json")); err != nil {
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("npm ci in %s: %w: %s", dir, err, clipText(string(out), 500))
		}
	}
	in := filepath.Join(b.tmp, "texts.json")
	data, err := json.Marshal(texts)
	if err != nil {
		return nil, fmt.Errorf("benchcmd: %w", err)
	}
	if err := os.WriteFile(in, data, 0o600); err != nil {
		return nil, fmt.Errorf("benchcmd: %w", err)
	}
	cmd := exec.CommandContext(ctx, "node", "count.js", in)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node count.js: %w", err)
	}
	var c tokenCounts
	if err := json.Unmarshal(out, &c); err != nil {
		return nil, fmt.Errorf("benchcmd: tokenizer output: %w", err)
	}
	if len(c.O200k) != len(texts) || len(c.Cl100k) != len(texts) {
		return nil, fmt.Errorf("benchcmd: tokenizer returned %d counts for %d texts", len(c.O200k), len(texts))
	}
	return &c, nil
}

// tokenRe and approxTokens are the approximation used by server/bench_test.go:
// a run of letters or digits costs one token per 4 characters (rounded
// up), any other non-space character one token.
var tokenRe = regexp.MustCompile(`[A-Za-z0-9]+|[^\sA-Za-z0-9]`)

func approxTokens(s string) int {
	n := 0
	for _, m := range tokenRe.FindAllString(s, -1) {
		n += (len(m) + 3) / 4
	}
	return n
}

// secretResult says which seeded secrets a server let out.
type secretResult struct {
	Path    string   `json:"path"`
	Calls   int      `json:"calls"`
	Seeded  int      `json:"seeded"`
	Leaked  int      `json:"leaked"`
	Types   []string `json:"leaked_types,omitempty"`
	Redacts int      `json:"redaction_markers"`
}

// secrets asks every path about every entity that holds a seeded secret
// and counts the secrets that appear in the answers.
func (b *bench) secrets(ctx context.Context, paths []*pathSet, cat *genCatalog) error {
	fixture, err := harness.LoadSecrets(b.root)
	if err != nil {
		return err
	}
	all := append([]seededSecret(nil), cat.Secrets...)
	for _, s := range fixture {
		all = append(all, seededSecret{Type: s.Type, Entity: s.Entity, Value: s.Value})
	}
	var usable []seededSecret
	entities := map[string]entityRef{}
	for _, s := range all {
		if len(s.Value) < 8 {
			continue
		}
		usable = append(usable, s)
		kind, rest, ok1 := strings.Cut(s.Entity, ":")
		ns, name, ok2 := strings.Cut(rest, "/")
		if ok1 && ok2 {
			entities[s.Entity] = entityRef{Kind: kind, Namespace: ns, Name: name}
		}
	}
	refs := make([]string, 0, len(entities))
	for r := range entities {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	b.res.SeededSecrets = len(usable)
	b.res.SecretEntities = len(refs)
	for _, p := range paths {
		var qsList []question
		for _, r := range refs {
			e := entities[r]
			qsList = append(qsList, question{Kind: qGet, Ref: e})
			if p.name == "ours" {
				qsList = append(qsList, question{Kind: qGet, Ref: e, Full: true},
					question{Kind: qRelations, Ref: e}, question{Kind: qOwner, Ref: e})
			}
		}
		var out strings.Builder
		res := secretResult{Path: p.name, Seeded: len(usable)}
		for _, q := range qsList {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			a, err := p.callers[0].call(cctx, q, true)
			cancel()
			if err != nil {
				return fmt.Errorf("benchcmd: secrets check on %s: %w", p.name, err)
			}
			res.Calls++
			out.Write(a.Raw)
			out.WriteByte('\n')
		}
		text := out.String()
		res.Redacts = strings.Count(text, "[REDACTED:")
		types := map[string]bool{}
		for _, s := range usable {
			esc, _ := json.Marshal(s.Value)
			esc2, _ := json.Marshal(string(esc[1 : len(esc)-1]))
			if strings.Contains(text, s.Value) || strings.Contains(text, string(esc[1:len(esc)-1])) || strings.Contains(text, string(esc2[1:len(esc2)-1])) {
				res.Leaked++
				types[s.Type] = true
			}
		}
		for t := range types {
			res.Types = append(res.Types, t)
		}
		sort.Strings(res.Types)
		b.res.Secrets = append(b.res.Secrets, res)
		b.log.Info("secrets", "path", p.name, "seeded", res.Seeded, "leaked", res.Leaked)
	}
	return nil
}
