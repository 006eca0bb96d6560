package corpus

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// gluePrefixes are what a token is pasted after in identifiers, argument
// names and concatenated config: an underscore, letters, digits, both.
var gluePrefixes = []string{"bogus_", "bogus", "x9", "9", "_", "ENV_PROD", "acme.io/x_"}

// TestGluedSeededSecrets glues every seeded secret kind (every kind of the
// own corpus that redact finds with no key as context, the ones the seeded
// channel test plants) to a word, a digit or an underscore, and requires all
// of it to be redacted as a value (Text, KeyedValue), as a JSON key and as
// a JSON value.
func TestGluedSeededSecrets(t *testing.T) {
	cases := loadCorpus(t)
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	kinds, variants := 0, 0
	for _, c := range cases {
		for _, s := range c.Secrets {
			if seen[s.Type] {
				continue
			}
			if v, _, err := r.KeyedValue("", s.Value); err != nil || v == s.Value {
				continue // found only with a key as context: not standalone
			}
			seen[s.Type] = true
			kinds++
			tail := s.Value[len(s.Value)/2:]
			for _, g := range gluePrefixes {
				variants++
				in := g + s.Value
				if out, _ := r.Text(in); strings.Contains(out, tail) {
					t.Errorf("%s: Text(%q) = %q", s.Type, in, out)
				}
				if out, _, err := r.KeyedValue("note", in); err != nil || strings.Contains(out.(string), tail) {
					t.Errorf("%s: KeyedValue(%q) = %q, %v", s.Type, in, out, err)
				}
				doc, _ := json.Marshal(map[string]string{in: "x", "value": in})
				if out, _, err := r.JSON(doc); err != nil || strings.Contains(string(out), tail) {
					t.Errorf("%s: JSON(%s) = %s, %v", s.Type, doc, out, err)
				}
			}
		}
	}
	if kinds < 40 {
		t.Fatalf("only %d standalone kinds in the corpus", kinds)
	}
	t.Logf("%d seeded kinds × %d glue prefixes = %d variants, each as text, keyed value, JSON key and JSON value", kinds, len(gluePrefixes), variants)
}
