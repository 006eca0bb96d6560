package main

import (
	"strings"
	"testing"
)

// TestReport: the committed corpus is measured (every family at
// precision and recall 1 is what make test's corpus test asserts; here the
// command's output and exit codes).
func TestReport(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"--corpus", "../../../../testdata/redact/corpus.jsonl"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "precision  recall") || !strings.Contains(out.String(), "rules)") {
		t.Fatalf("output:\n%s", out.String())
	}
	if code := run([]string{"--corpus", "x", "--generate"}, &out, &errOut); code != 2 {
		t.Fatalf("--corpus with --generate: exit %d, want 2", code)
	}
	if code := run([]string{"--corpus", "no-such-file.jsonl"}, &out, &errOut); code != 1 {
		t.Fatalf("missing corpus: exit %d, want 1", code)
	}
}
