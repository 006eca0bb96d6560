package gencatalog

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// TestRefsSurviveIngressRedaction: every entity ref of a generated 30,000-
// entity catalog passes the redaction a caller's arguments get (ingress:
// the JSON of the arguments, the ref under its key) unchanged. The bench
// found 147 of them redacted whole by the assigned-value layer
// ("resource:default/recommendations-db-00252" read as a random value
// assigned to "resource"), which made the call fail with an invalid ref.
func TestRefsSurviveIngressRedaction(t *testing.T) {
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Generate(30000, 1)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, e := range c.Entities {
		md, _ := e["metadata"].(map[string]any)
		kind, _ := e["kind"].(string)
		name, _ := md["name"].(string)
		for _, ref := range []string{kind + ":default/" + name, strings.ToLower(kind) + ":" + name} {
			doc := []byte(`{"ref":"` + ref + `"}`)
			out, rep, err := r.JSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Total() > 0 {
				if bad++; bad <= 5 {
					t.Errorf("%s redacted: %s", ref, out)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d refs redacted", bad)
	}
}

// TestGeneratedCatalogHasNoFindings: the generated catalog holds no secret,
// only the look-alikes a real catalog is full of (refs, ids, URLs, API
// definitions, annotations): redacting every entity as an answer would be
// redacted finds nothing.
func TestGeneratedCatalogHasNoFindings(t *testing.T) {
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Generate(10000, 1)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, e := range c.Entities {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out, rep, err := r.JSON(b)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range rep.Counts {
			if found[k] == 0 {
				t.Errorf("%s: %s", k, redact.Clip(string(out), 400))
			}
			found[k] += v
		}
	}
	if len(found) > 0 {
		t.Errorf("findings in a catalog without secrets: %v", found)
	}
}
