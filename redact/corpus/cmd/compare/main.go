// Command compare prints, per family, the recall and precision of
// backstage-mcp's redaction and of gitleaks on the same files: the generated
// corpus (testdata/redact/corpus.jsonl), the outside corpus (Nosey Parker's
// rule examples, testdata/redact/outside) and private keys made by the real
// tools at run time. It is what `make redact-report` runs.
//
//	go run ./redact/corpus/cmd/compare --gitleaks .cache/bin/gitleaks [-v]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
	"github.com/backstage-mcp/backstage-mcp/redact/corpus/toolkeys"
)

func main() {
	own := flag.String("corpus", "testdata/redact/corpus.jsonl", "the generated corpus")
	outside := flag.String("outside", "testdata/redact/outside/noseyparker.jsonl", "the outside corpus")
	rules := flag.String("outside-rules", "testdata/redact/outside/noseyparker-rules.jsonl", "the outside corpus's source rules (their patterns decide which negatives are scored)")
	kf := flag.String("kingfisher", "testdata/redact/outside/kingfisher.jsonl", "the second outside corpus (Kingfisher's rule examples)")
	lookalike := flag.String("lookalike", "testdata/redact/lookalike", "public look-alike text that holds no secret (precision)")
	kfRules := flag.String("kingfisher-rules", "testdata/redact/outside/kingfisher-rules.jsonl", "its source rules")
	gitleaks := flag.String("gitleaks", "", "path of the gitleaks binary (required)")
	verbose := flag.Bool("v", false, "list every miss and false hit")
	readme := flag.String("readme", "", "rewrite the held-out table between the redact-report markers of this file (README.md)")
	halves := flag.String("halves", "", "rewrite the table of both halves between the redact-report markers of this file (docs/redaction.md)")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *own, *outside, *rules, *kf, *kfRules, *lookalike, *gitleaks, *verbose, *readme, *halves); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

type section struct {
	title string
	docs  []corpus.Doc
	// left are the negatives left out of the scores; how many of them each
	// detector flags is printed on its own line, so that the figures on
	// every negative can be added up too.
	left []corpus.Doc
}

func run(ctx context.Context, w io.Writer, ownPath, outsidePath, rulesPath, kingfisherPath, kingfisherRules, lookalikeDir, gitleaks string, verbose bool, readme, halves string) error {
	if gitleaks == "" {
		return errors.New("compare: --gitleaks is required")
	}
	r, err := redact.New()
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	var secs []section

	cases, err := readFile(ownPath, corpus.Read)
	if err != nil {
		return err
	}
	ownDocs, err := corpus.OwnDocs(r, cases)
	if err != nil {
		return err
	}
	secs = append(secs, section{title: "own corpus (" + ownPath + "; families are redact's)", docs: ownDocs})

	tmp, err := os.MkdirTemp("", "redact-compare")
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	defer os.RemoveAll(tmp)
	var rows []halfRow
	for _, oc := range []struct{ name, cases, rules string }{
		{"Kingfisher", kingfisherPath, kingfisherRules},
		{"Nosey Parker", outsidePath, rulesPath},
	} {
		rs, err := outsideTable(ctx, w, r, gitleaks, tmp, oc.name, oc.cases, oc.rules, verbose)
		if err != nil {
			return err
		}
		rows = append(rows, rs...)
	}
	look, err := lookalikeLine(ctx, w, r, gitleaks, tmp, lookalikeDir)
	if err != nil {
		return err
	}
	date := time.Now().UTC().Format("2006-01-02")
	if readme != "" {
		if err := rewriteMarked(readme, heldOutTable(rows, look, date, false)); err != nil {
			return err
		}
	}
	if halves != "" {
		if err := rewriteMarked(halves, heldOutTable(rows, look, date, true)); err != nil {
			return err
		}
	}
	keyDir := filepath.Join(tmp, "keys")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	keys, err := toolkeys.Generate(ctx, keyDir)
	if err != nil {
		return err
	}
	keyDocs, err := toolkeys.Docs(keys)
	if err != nil {
		return err
	}
	secs = append(secs, section{title: fmt.Sprintf("outside corpus: %d private keys made by ssh-keygen, openssl, gpg, puttygen, age-keygen, each in %d entity contexts", len(keys), len(toolkeys.Contexts())), docs: keyDocs})

	for i, s := range secs {
		ours, err := corpus.Detect(r, s.docs)
		if err != nil {
			return err
		}
		theirs, err := runGitleaks(ctx, gitleaks, filepath.Join(tmp, "scan"+strconv.Itoa(i)), s.docs)
		if err != nil {
			return err
		}
		to, tg := corpus.Score(s.docs, ours), corpus.Score(s.docs, theirs)
		fmt.Fprintf(w, "\n== %s\n", s.title)
		if err := corpus.PrintSideBySide(w, []string{"backstage-mcp", "gitleaks"}, []corpus.Table{to, tg}); err != nil {
			return err
		}
		fmt.Fprintf(w, "backstage-mcp: recall %.4f, precision %.4f, negatives flagged %d/%d (%.4f); gitleaks: recall %.4f, precision %.4f, negatives flagged %d/%d (%.4f)\n",
			to.Overall.Recall(), to.Overall.Precision(), to.Overall.Flagged, to.Overall.Negatives, to.Overall.FPRate(),
			tg.Overall.Recall(), tg.Overall.Precision(), tg.Overall.Flagged, tg.Overall.Negatives, tg.Overall.FPRate())
		if len(s.left) > 0 {
			lo, err := corpus.Detect(r, s.left)
			if err != nil {
				return err
			}
			lg, err := runGitleaks(ctx, gitleaks, filepath.Join(tmp, "left"+strconv.Itoa(i)), s.left)
			if err != nil {
				return err
			}
			fo, fg := corpus.Score(s.left, lo).Overall, corpus.Score(s.left, lg).Overall
			fmt.Fprintf(w, "negatives left out: backstage-mcp flags %d of %d, gitleaks %d; on all %d negatives: backstage-mcp %d, gitleaks %d\n",
				fo.Flagged, fo.Negatives, fg.Flagged, fo.Negatives+to.Overall.Negatives, fo.Flagged+to.Overall.Flagged, fg.Flagged+tg.Overall.Flagged)
		}
		if verbose {
			for _, x := range []struct {
				name string
				t    corpus.Table
			}{{"backstage-mcp", to}, {"gitleaks", tg}} {
				for _, m := range x.t.Missed {
					fmt.Fprintf(w, "%s MISS %s\n", x.name, m)
				}
				for _, m := range x.t.FalseHits {
					fmt.Fprintf(w, "%s FALSE %s\n", x.name, m)
				}
			}
		}
	}
	fmt.Fprintln(w, "\nrecall: labelled secrets fully covered (whole examples: anything found); precision: hits touching a label / all hits; neg flagged: negative examples with any hit.")
	return nil
}

// readFile opens path and reads it with read.
func readFile[T any](path string, read func(io.Reader) ([]T, error)) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	defer f.Close()
	return read(f)
}

type finding struct {
	RuleID                 string
	StartLine, EndLine     int
	StartColumn, EndColumn int
	Match, Secret, File    string
}

// runGitleaks writes one file per document, scans the directory with
// `gitleaks dir` and maps each finding back to byte offsets.
func runGitleaks(ctx context.Context, bin, dir string, docs []corpus.Doc) ([][]corpus.Hit, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	for i, d := range docs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("doc-%05d.txt", i)), []byte(d.Input), 0o600); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
	}
	report := filepath.Join(dir, "..", filepath.Base(dir)+".json")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	cmd := exec.CommandContext(ctx, abs, "dir", ".", "--no-banner", "--no-color", "--report-format", "json", "--report-path", report, "--exit-code", "0", "--log-level", "error")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("compare: gitleaks: %w: %s", err, stderr.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	var fs []finding
	if err := json.Unmarshal(b, &fs); err != nil {
		return nil, fmt.Errorf("compare: gitleaks report: %w", err)
	}
	hits := make([][]corpus.Hit, len(docs))
	for _, f := range fs {
		var i int
		if _, err := fmt.Sscanf(filepath.Base(f.File), "doc-%05d.txt", &i); err != nil || i < 0 || i >= len(docs) {
			return nil, fmt.Errorf("compare: gitleaks reported unknown file %q", f.File)
		}
		s, e := locate(docs[i].Input, f)
		hits[i] = append(hits[i], corpus.Hit{Start: s, End: e, Family: corpus.GitleaksFamily(f.RuleID)})
	}
	return hits, nil
}

// locate finds a gitleaks finding in the text: its secret (else its match)
// at or after the start of its first line, else the lines it names.
func locate(text string, f finding) (int, int) {
	lineStart := func(n int) int {
		off := 0
		for l := 1; l < n; l++ {
			j := strings.IndexByte(text[off:], '\n')
			if j < 0 {
				return len(text)
			}
			off += j + 1
		}
		return off
	}
	from := lineStart(f.StartLine)
	for _, s := range []string{f.Secret, f.Match} {
		if s == "" {
			continue
		}
		if j := strings.Index(text[from:], s); j >= 0 {
			return from + j, from + j + len(s)
		}
		if j := strings.Index(text, s); j >= 0 {
			return j, j + len(s)
		}
	}
	end := lineStart(f.EndLine + 1)
	return from, end
}

// outsideTable scores one outside corpus, split by vendor into its
// development and held-out halves, in every context of
// corpus.OutsideContexts, backstage-mcp beside gitleaks: one line per half
// and context (with -v, the per-family tables and every miss and false hit).
func outsideTable(ctx context.Context, w io.Writer, r *redact.Redactor, gitleaks, tmp, name, casesPath, rulesPath string, verbose bool) ([]halfRow, error) {
	oc, err := readFile(casesPath, corpus.ReadOutside)
	if err != nil {
		return nil, err
	}
	rules, err := readFile(rulesPath, corpus.ReadSourceRules)
	if err != nil {
		return nil, err
	}
	unscored, err := corpus.Unscored(oc, rules)
	if err != nil {
		return nil, err
	}
	var rows []halfRow
	fmt.Fprintf(w, "\n== outside corpus: %s rule examples (%s), split by vendor; %d negatives not scored (the source's own rule set finds a secret there)\n", name, casesPath, len(unscored))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "half\tcontext\tvendors\texamples\tnegatives\tbackstage-mcp recall\tprecision\tneg flagged\tgitleaks recall\tprecision\tneg flagged\trealistic examples\tbackstage-mcp recall\tgitleaks recall")
	for _, half := range []string{corpus.HalfDev, corpus.HalfHeldOut} {
		cases := corpus.SplitCases(oc, half)
		vendors := map[string]bool{}
		for _, c := range cases {
			vendors[c.Family] = true
		}
		base := corpus.OutsideDocs(cases, unscored)
		for _, cx := range corpus.OutsideContexts() {
			docs, err := corpus.PlaceDocs(base, cx)
			if err != nil {
				return nil, err
			}
			ours, err := corpus.Detect(r, docs)
			if err != nil {
				return nil, err
			}
			theirs, err := runGitleaks(ctx, gitleaks, filepath.Join(tmp, strings.ReplaceAll(name, " ", "")+"-"+half+"-"+cx), docs)
			if err != nil {
				return nil, err
			}
			to, tg := corpus.Score(docs, ours), corpus.Score(docs, theirs)
			// The same scores on the examples with realistic values (no
			// documentation sequence in them); base and docs are parallel.
			var rd []corpus.Doc
			var ro, rg [][]corpus.Hit
			for k, d := range base {
				if !d.Whole || corpus.Realistic(d.Input) {
					rd, ro, rg = append(rd, docs[k]), append(ro, ours[k]), append(rg, theirs[k])
				}
			}
			so, sg := corpus.Score(rd, ro), corpus.Score(rd, rg)
			rows = append(rows, halfRow{corpus: name, half: half, context: cx, vendors: len(vendors), examples: to.Overall.Labels,
				ours: to.Overall, theirs: tg.Overall, realistic: so.Overall.Labels, oursReal: so.Overall.Recall(), theirsReal: sg.Overall.Recall()})
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.4f\t%.4f\t%d\t%.4f\t%.4f\t%d\t%d\t%.4f\t%.4f\n", half, cx, len(vendors), to.Overall.Labels, to.Overall.Negatives,
				to.Overall.Recall(), to.Overall.Precision(), to.Overall.Flagged, tg.Overall.Recall(), tg.Overall.Precision(), tg.Overall.Flagged,
				so.Overall.Labels, so.Overall.Recall(), sg.Overall.Recall())
			if verbose {
				fmt.Fprintf(w, "\n-- %s, %s half, %s\n", name, half, cx)
				if err := corpus.PrintSideBySide(w, []string{"backstage-mcp", "gitleaks"}, []corpus.Table{to, tg}); err != nil {
					return nil, err
				}
				for _, m := range to.Missed {
					fmt.Fprintf(w, "backstage-mcp MISS %s\n", m)
				}
				for _, m := range to.FalseHits {
					fmt.Fprintf(w, "backstage-mcp FALSE %s\n", m)
				}
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	return rows, nil
}

// lookalikeLine scores the look-alike corpus: every finding there is false.
func lookalikeLine(ctx context.Context, w io.Writer, r *redact.Redactor, gitleaks, tmp, dir string) (lookalike, error) {
	docs, err := corpus.LookalikeDocs(dir)
	if err != nil {
		return lookalike{}, err
	}
	ours, err := corpus.Detect(r, docs)
	if err != nil {
		return lookalike{}, err
	}
	theirs, err := runGitleaks(ctx, gitleaks, filepath.Join(tmp, "lookalike"), docs)
	if err != nil {
		return lookalike{}, err
	}
	tokens, size, fo, fg := 0, 0, 0, 0
	for i, d := range docs {
		tokens += corpus.LookalikeTokens(d.Input)
		size += len(d.Input)
		fo += len(ours[i])
		fg += len(theirs[i])
	}
	fmt.Fprintf(w, "\n== look-alike text (%s: %d files, %d bytes, %d secret-shaped strings, no secret): false findings: backstage-mcp %d, gitleaks %d\n",
		dir, len(docs), size, tokens, fo, fg)
	return lookalike{bytes: size, tokens: tokens, ours: fo, theirs: fg}, nil
}
