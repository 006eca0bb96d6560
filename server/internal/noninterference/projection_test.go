package noninterference

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// projectionPolicies are the policies under which projected answers must
// equal whole ones: the two variants of the differential test, and three
// whose conditions read annotations, labels, spec and metadata fields
// (deny included) and whose masks remove fields that summaries and
// searches read (title, owner, relations, whole subtrees by glob).
var projectionPolicies = map[string]string{
	"exact": Exact.Policy(),
	"deny":  Deny.Policy(),
	"fields": `version: 1
scopes:
  "mcp:catalog": ["catalog:read", "catalog:api-definitions"]
roles:
  - name: nia
    bind: { users: ["` + Caller + `"] }
    tools: ["catalog:read", "catalog:api-definitions"]
    entities:
      allow:
        - HAS_ANNOTATION: { annotation: github.com/project-slug }
        - allOf:
            - HAS_SPEC: { key: type, value: openapi }
            - not: { HAS_METADATA: { key: tags } }
        - anyOf:
            - IS_ENTITY_KIND: { kinds: [system, domain, group] }
            - HAS_SPEC: { key: profile.email }
      deny:
        - HAS_SPEC: { key: lifecycle, value: experimental }
        - HAS_LABEL: { label: confidential }
    fieldMasks:
      - kinds: [api]
        fields: ["spec.owner", "metadata.title"]
      - kinds: [system]
        fields: ["relations"]
      - fields: ["metadata.annotations.acme.io/*", "spec.system"]
`,
	"globs": `version: 1
scopes:
  "mcp:catalog": ["catalog:read", "catalog:api-definitions"]
roles:
  - name: nia
    bind: { users: ["` + Caller + `"] }
    tools: ["catalog:read", "catalog:api-definitions"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default] }
    fieldMasks:
      - kinds: [component]
        fields: ["spec.*", "metadata.tags"]
      - kinds: [resource]
        fields: ["metadata.*"]
      - fields: ["*.description"]
`,
	"owner-values": `version: 1
scopes:
  "mcp:catalog": ["catalog:read", "catalog:api-definitions"]
roles:
  - name: nia
    bind: { users: ["` + Caller + `"] }
    tools: ["catalog:read", "catalog:api-definitions"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
        - HAS_METADATA: { key: title }
    fieldMasks:
      - fields: ["spec.env"]
`,
}

// secretPairs are entities whose secrets are told apart only by a sibling
// name ("value" judged with "name" as context), at the top of spec and
// deeper, so that a projection that kept a value without its name would
// redact differently.
func secretPairs() []map[string]any {
	pw := "Xq7" + "v9TzL2mWk8RbN4"
	return []map[string]any{
		entity("Component", "pairs", md("Pairs", "Named values", nil, map[string]any{"github.com/project-slug": "acme/pairs"}),
			map[string]any{"type": "service", "lifecycle": "production", "owner": "team-a",
				"name": "DB_PASSWORD", "value": pw, "key": "k",
				"vars": []any{map[string]any{"name": "API_TOKEN", "value": pw}}}),
		entity("Component", "pairs-key", md("Pairs by key", "", nil, map[string]any{"github.com/project-slug": "acme/pairs-key"}),
			map[string]any{"type": "service", "lifecycle": "production", "owner": "team-a",
				"key": "client_secret", "secretValue": pw}),
	}
}

// extraCalls read fields whose redaction depends on a sibling, and
// projections of every kind, on top of the seeded sequence.
var extraCalls = []Call{
	{Op: "call", Tool: "catalog_get_entity", Args: `{"ref":"component:default/pairs","fields":["spec.value"]}`},
	{Op: "call", Tool: "catalog_get_entity", Args: `{"ref":"component:default/pairs-key","fields":["spec.secretValue","spec.type"]}`},
	{Op: "call", Tool: "catalog_get_entity", Args: `{"ref":"component:default/pairs","fields":["spec.vars","metadata.annotations.github.com/project-slug"]}`},
	{Op: "call", Tool: "catalog_get_entity", Args: `{"ref":"component:default/pairs"}`},
	{Op: "call", Tool: "catalog_search_entities", Args: `{"kind":"Component","fields":["spec.value","spec.secretValue","relations.length","metadata.tags.length"],"limit":50}`},
	{Op: "call", Tool: "catalog_search_entities", Args: `{"fields":["metadata","kind"],"limit":7}`},
	{Op: "call", Tool: "catalog_search_entities", Args: `{"limit":100}`},
	{Op: "call", Tool: "catalog_search_entities", Args: `{"text":"a","limit":3}`},
	{Op: "cursor", Limit: 4},
	{Op: "call", Tool: "catalog_search_entities", Args: `{"kind":"API","fields":["spec.owner","metadata.title","relations"],"limit":2}`},
	{Op: "cursor", Limit: 2},
	{Op: "call", Tool: "catalog_get_entity", Args: `{"ref":"system:default/sys-0","fields":["relations","spec"]}`},
}

// TestProjectionExact proves the tools' projections exact: for several
// policies, one catalog answers the same calls through a server that
// projects (fetching and processing only the fields answers return) and
// through one that fetches whole entities, and every answer (result,
// error, text and structured content, cursors reduced to their presence)
// must be identical. Timing classes are not compared: the two servers send
// different requests, so the upstream cache serves them differently.
func TestProjectionExact(t *testing.T) {
	ctx := context.Background()
	compared, redacted := 0, 0
	for name, pol := range projectionPolicies {
		for seed := uint64(1); seed <= 3; seed++ {
			w := NewWorld(seed)
			ents, _ := w.Catalogs()
			ents = append(ents, secretPairs()...)
			calls := append(w.Calls(steps), extraCalls...)
			proj, err := NewSide(ctx, t.TempDir(), ents, pol)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := NewSideWith(ctx, t.TempDir(), clone(ents), pol, func(o *SideOptions) { o.WholeEntities = true })
			if err != nil {
				t.Fatal(err)
			}
			var all []Observation
			for i, c := range calls {
				op, err := proj.Do(ctx, calls, c)
				if err != nil {
					t.Fatal(err)
				}
				ow, err := whole.Do(ctx, calls, c)
				if err != nil {
					t.Fatal(err)
				}
				compared++
				all = append(all, op)
				if op.Result != ow.Result {
					t.Errorf("%s seed %d call %d %s:\nprojected: %s\nwhole:     %s", name, seed, i, c, op.Result, ow.Result)
				}
				if strings.Contains(op.Result, "REDACTED") && !strings.Contains(op.Result, `\"isError\":true`) {
					redacted++
				}
			}
			if leaks := Leaks(w, all); len(leaks) > 0 {
				t.Errorf("%s seed %d: secrets in answers: %q", name, seed, leaks)
			}
			proj.Close()
			whole.Close()
		}
	}
	if redacted == 0 {
		t.Error("no answer carried a redaction: the comparison says nothing about redaction")
	}
	t.Logf("%d policies, %d calls compared, %d answers with redactions", len(projectionPolicies), compared, redacted)
}

// TestProjectionRequests checks that the projecting side does ask
// Backstage for fields (so TestProjectionExact compares two different
// paths) and the whole side does not.
func TestProjectionRequests(t *testing.T) {
	ctx := context.Background()
	w := NewWorld(1)
	ents, _ := w.Catalogs()
	for _, whole := range []bool{false, true} {
		sd, err := NewSideWith(ctx, t.TempDir(), ents, projectionPolicies["fields"], func(o *SideOptions) { o.WholeEntities = whole })
		if err != nil {
			t.Fatal(err)
		}
		sd.mu.Lock()
		sd.keys = nil
		sd.mu.Unlock()
		req := `{"kind":"Component","limit":3}`
		if _, err := sd.call(ctx, "catalog_search_entities", req); err != nil {
			t.Fatal(err)
		}
		sd.mu.Lock()
		keys := strings.Join(sd.keys, "\n")
		sd.mu.Unlock()
		sd.Close()
		b, _ := json.Marshal(keys)
		asked := strings.Contains(keys, "by-query") && strings.Contains(keys, "fields=")
		if asked == whole {
			t.Errorf("whole=%v: upstream requests %s", whole, b)
		}
	}
}
