package corpus

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

var update = flag.Bool("update", false, "rewrite testdata/redact/corpus.jsonl from the generator")

var corpusPath = filepath.Join("..", "..", "testdata", "redact", "corpus.jsonl")

func loadCorpus(t *testing.T) []Case {
	t.Helper()
	if *update {
		var buf bytes.Buffer
		if err := Write(&buf, Generate(DefaultSeed)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(corpusPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return readTestFile(t, corpusPath, Read)
}

func TestCommittedCorpusMatchesGenerator(t *testing.T) {
	cases := loadCorpus(t)
	var want, got bytes.Buffer
	if err := Write(&want, Generate(DefaultSeed)); err != nil {
		t.Fatal(err)
	}
	if err := Write(&got, cases); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want.Bytes(), got.Bytes()) {
		t.Fatal("testdata/redact/corpus.jsonl is stale: run go test ./redact/corpus/ -run TestCommitted -update")
	}
}

func TestGeneratorIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	_ = Write(&a, Generate(7))
	_ = Write(&b, Generate(7))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed gave different corpora")
	}
}

func TestCorpusShape(t *testing.T) {
	cases := loadCorpus(t)
	types := map[string]int{}
	for _, c := range cases {
		if c.Mode == "json" && !json.Valid([]byte(c.Input)) {
			t.Errorf("%s: input is not valid JSON", c.ID)
		}
		for _, s := range c.Secrets {
			types[s.Type]++
			if strings.HasPrefix(c.ID, "sample-") {
				continue // a hand-written documentation sample (ghp_xxxx…): prefix and length, no checksum
			}
			if strings.HasPrefix(s.Type, "github-") && s.Type != "github-fine-grained-pat" && s.Type != "github-refresh-token" && !ValidChecksum(s.Value) {
				t.Errorf("%s: %s has a bad checksum: %s", c.ID, s.Type, s.Value)
			}
			if s.Type == "npm-token" && !ValidChecksum(s.Value) {
				t.Errorf("%s: npm token has a bad checksum", c.ID)
			}
		}
	}
	if len(types) < 50 {
		t.Errorf("corpus covers %d secret types, want at least 50", len(types))
	}
}

// TestReportThresholds asserts the targets of the redaction work on the
// committed corpus.
func TestReportThresholds(t *testing.T) {
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Evaluate(r, loadCorpus(t))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_ = res.Print(&buf, true)
	t.Log("\n" + buf.String())
	if p := res.Overall.Precision(); p < 0.98 {
		t.Errorf("overall precision %.4f < 0.98", p)
	}
	if rc := res.Overall.Recall(); rc < 0.97 {
		t.Errorf("overall recall %.4f < 0.97", rc)
	}
	must := map[string]bool{"github": true, "gitlab": true, "slack": true, "payment": true, "messaging": true, "registry": true,
		"ai": true, "vault": true, "saas": true, "gcp": true, "jwt": true, "private-key": true, "url-credentials": true}
	for _, s := range res.Families {
		if must[s.Family] && s.Recall() < 1 {
			t.Errorf("family %s: recall %.4f, want 1", s.Family, s.Recall())
		}
	}
}

// TestNoCorpusSecretSurvives redacts every document and checks that no
// labelled secret is left in the output, and that JSON stays valid.
func TestNoCorpusSecretSurvives(t *testing.T) {
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range loadCorpus(t) {
		var out string
		if c.Mode == "json" {
			b, _, err := r.JSON([]byte(c.Input))
			if err != nil {
				t.Fatalf("%s: %v", c.ID, err)
			}
			if !json.Valid(b) {
				t.Fatalf("%s: output is not valid JSON", c.ID)
			}
			out = string(b)
		} else {
			out, _ = r.Text(c.Input)
		}
		for _, s := range c.Secrets {
			if len(s.Value) >= 8 && strings.Contains(out, s.Value) && s.Type != "generic-keyword-entropy" {
				t.Errorf("%s: %s survived redaction", c.ID, s.Type)
			}
		}
	}
}
