package corpus

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/url"
	"regexp"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// Halves of an outside corpus. The split is by vendor (the source's rule
// file), so no vendor's examples are on both sides: rules are tuned on the
// development half only, and the held-out half says how well they
// generalise to vendors no one looked at.
const (
	HalfDev     = "dev"
	HalfHeldOut = "held-out"
)

// Half returns the half a vendor (an outside family) belongs to: a fixed
// hash of its name, so the split does not move when examples are added.
func Half(family string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(family))
	if h.Sum32()%2 == 0 {
		return HalfDev
	}
	return HalfHeldOut
}

// SplitCases returns the cases of one half.
func SplitCases(cases []OutsideCase, half string) []OutsideCase {
	var out []OutsideCase
	for _, c := range cases {
		if Half(c.Family) == half {
			out = append(out, c)
		}
	}
	return out
}

// OutsideContexts are the places of an entity an outside example is put in
// for scoring: as raw text, as an annotation's value, inside a description,
// inside an API definition (YAML in spec.definition) and in a URL's query.
func OutsideContexts() []string {
	return []string{"text", "annotation", "description", "api-definition", "url"}
}

// PlaceDocs puts every document of docs (text documents of an outside
// corpus) in context: "text" leaves them as they are; the others make a
// catalog entity (JSON, read with its keys) that holds the text there. A
// whole example stays whole; a negative stays a negative.
func PlaceDocs(docs []Doc, context string) ([]Doc, error) {
	if context == "text" {
		return docs, nil
	}
	out := make([]Doc, 0, len(docs))
	for _, d := range docs {
		meta := map[string]any{"name": "payments-api", "namespace": "default", "annotations": map[string]any{
			"backstage.io/source-location": "url:https://git.acme.invalid/payments/payments-api/",
		}}
		spec := map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/payments"}
		ent := map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": meta, "spec": spec}
		switch context {
		case "annotation":
			meta["annotations"].(map[string]any)["acme.io/setup-notes"] = d.Input
		case "description":
			meta["description"] = "Payments API. Setup notes from the runbook:\n" + d.Input + "\nAsk #payments-oncall before changing them."
		case "api-definition":
			ent["kind"] = "API"
			spec["type"] = "openapi"
			spec["definition"] = "openapi: 3.0.3\ninfo:\n  title: payments\n  version: 1.0.0\n  description: |\n    Setup notes:\n    " +
				strings.ReplaceAll(d.Input, "\n", "\n    ") + "\npaths: {}\n"
		case "url":
			meta["links"] = []any{map[string]any{"title": "setup notes", "url": "https://wiki.acme.invalid/setup?note=" + url.QueryEscape(d.Input)}}
		default:
			return nil, fmt.Errorf("corpus: unknown context %q", context)
		}
		b, err := json.MarshalIndent(ent, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		out = append(out, Doc{ID: d.ID + "@" + context, Family: d.Family, Mode: "json", Input: string(b), Whole: d.Whole})
	}
	return out, nil
}

// shapedToken finds the credential-shaped strings of an example.
var shapedToken = regexp.MustCompile(`[A-Za-z0-9+/=_.~-]{16,}`)

// Realistic reports whether an example's secret-shaped strings hold no
// documentation sequence ("abcdef1234567890…", "a1b2c3d4…"): such
// stand-ins are kept by the generic rules on purpose, so recall is also
// reported on the examples without them.
func Realistic(text string) bool {
	for _, t := range shapedToken.FindAllString(text, -1) {
		if redact.HoldsSequence(t) {
			return false
		}
	}
	return true
}

// RealisticDocs returns the whole examples of docs whose text is Realistic,
// and every negative.
func RealisticDocs(docs []Doc) []Doc {
	var out []Doc
	for _, d := range docs {
		if !d.Whole || Realistic(d.Input) {
			out = append(out, d)
		}
	}
	return out
}
