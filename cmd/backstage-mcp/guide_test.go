package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGuide = flag.Bool("update", false, "rewrite the command outputs in docs/reviewing.md")

const (
	guideFile        = "../../docs/reviewing.md"
	guideTrail       = "../../testdata/audit/reviewer-trail.log"
	guidePrompt      = "$ backstage-mcp audit "
	guideFenceOpen   = "```text"
	guideFenceClose  = "```"
	guideTrailInDocs = "audit.log"
)

// TestReviewersGuide runs every "$ backstage-mcp audit …" command of the
// reviewer's guide on the committed trail (written by the server's
// TestReviewerTrail) and checks that the guide shows exactly its output,
// so the guide's samples stay true. With -update it rewrites them.
func TestReviewersGuide(t *testing.T) {
	doc, err := os.ReadFile(guideFile)
	if err != nil {
		t.Fatal(err)
	}
	trail, err := os.ReadFile(guideTrail)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(guideFile)
	if err != nil {
		t.Fatal(err)
	}
	// The commands name the trail audit.log, as a reviewer would, and
	// verify prints that name: run them where that is the trail.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, guideTrailInDocs), trail, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	var out []string
	lines := strings.Split(string(doc), "\n")
	commands := 0
	for i := 0; i < len(lines); i++ {
		out = append(out, lines[i])
		if strings.TrimSpace(lines[i]) != guideFenceOpen {
			continue
		}
		// A text block: commands, each followed by its output.
		var block []string
		j := i + 1
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != guideFenceClose; j++ {
			block = append(block, lines[j])
		}
		if len(block) == 0 || !strings.HasPrefix(block[0], guidePrompt) {
			out = append(out, block...)
			i = j - 1
			continue
		}
		var want, got []string
		for _, l := range block {
			if strings.HasPrefix(l, guidePrompt) {
				commands++
				want = append(want, l)
				got = append(got, l)
				got = append(got, runGuideCommand(t, strings.TrimPrefix(l, guidePrompt))...)
				continue
			}
			want = append(want, l)
		}
		if strings.Join(want, "\n") != strings.Join(got, "\n") && !*updateGuide {
			t.Errorf("docs/reviewing.md shows (run with -update to rewrite):\n%s\n\nthe commands print:\n%s",
				strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
		out = append(out, got...)
		i = j - 1
	}
	if commands < 10 {
		t.Errorf("the guide runs %d commands; it answers ten questions", commands)
	}
	if *updateGuide {
		if err := os.WriteFile(abs, []byte(strings.Join(out, "\n")), 0o644); err != nil { //nolint:gosec // documentation
			t.Fatal(err)
		}
	}
}

// runGuideCommand runs one audit command (the words after "backstage-mcp
// audit") and returns its output lines, trailing spaces trimmed.
func runGuideCommand(t *testing.T, cmd string) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := runAudit(context.Background(), strings.Fields(cmd), &stdout, &stderr); code != 0 {
		t.Errorf("%s: exit %d: %s", cmd, code, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
		lines = append(lines, strings.TrimRight(l, " "))
	}
	return lines
}
