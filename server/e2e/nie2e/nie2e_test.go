//go:build e2e

// Package nie2e runs a fixed subset of the non-interference harness
// against real Backstage backends (one per catalog of a pair), and checks
// the one list of ref-valued spec fields (catalog.RefFields) against the
// real Backstage's relation processing.
package nie2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
	"github.com/backstage-mcp/backstage-mcp/server/internal/noninterference"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// start boots a real Backstage whose only location is a file holding ents,
// and waits until every entity is in and its relations are stable. It
// returns the directory of the file too (Backstage's location annotations
// name it).
func start(t *testing.T, ents []map[string]any) (*harness.Backstage, string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "catalog.yaml")
	var b strings.Builder
	for _, e := range ents {
		j, err := json.Marshal(e) // JSON is YAML
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(j)
		b.WriteString("\n")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	locs, _ := json.Marshal([]map[string]string{{"type": "file", "target": file}})
	t.Setenv("APP_CONFIG_catalog_locations", string(locs))
	logFile := filepath.Join(dir, "backstage.log")
	bs := harness.StartWith(t, context.Background(), harness.Options{LogFile: logFile, MinEntities: len(ents) + 1})
	waitStable(t, bs)
	return bs, dir
}

// waitStable polls the whole catalog until two reads a second apart agree
// (relations are stitched after the entities are in).
func waitStable(t *testing.T, bs *harness.Backstage) {
	t.Helper()
	var last string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var page struct {
			Items []map[string]any `json:"items"`
		}
		if err := bs.GetJSON(context.Background(), "/api/catalog/entities/by-query?limit=1000&fields=metadata.name,kind,relations&orderField=metadata.name,asc", &page); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(page.Items)
		if string(b) == last {
			return
		}
		last = string(b)
		time.Sleep(1500 * time.Millisecond)
	}
	t.Fatal("the catalog's relations did not settle")
}

// e2eSeeds and e2eSteps: the fixed subset run against real Backstage.
var e2eSeeds = []uint64{1, 2}

const e2eSteps = 40

// TestNonInterferenceRealBackstage runs seeded pairs (one of each policy
// variant) against two real Backstage backends and requires identical
// observations, as the unit test does against the in-memory catalog.
// Searches are ordered by name: without an order, and among entities that
// tie on the order key, Backstage sorts by uid, which it draws at random
// per ingestion.
func TestNonInterferenceRealBackstage(t *testing.T) {
	for _, seed := range e2eSeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := noninterference.NewWorld(seed)
			a, b := w.Catalogs()
			bsA, dirA := start(t, a)
			bsB, dirB := start(t, b)
			calls := w.Calls(e2eSteps)
			for i, c := range calls {
				if c.Tool != "catalog_search_entities" {
					continue
				}
				if !strings.Contains(c.Args, `"order"`) {
					calls[i].Args = strings.Replace(c.Args, "{", `{"order":"metadata.name",`, 1)
				}
				// Backstage sorts on one orderField and breaks ties by uid,
				// so entities of one kind come in a random order per
				// ingestion: order by name instead (the in-memory harness,
				// with fixed uids, covers kind orders).
				calls[i].Args = strings.NewReplacer(`"order":"kind"`, `"order":"metadata.name"`,
					`"order":"-kind"`, `"order":"-metadata.name"`).Replace(calls[i].Args)
			}
			ctx := context.Background()
			side := func(bs *harness.Backstage) *noninterference.Side {
				s, err := noninterference.NewSideWith(ctx, t.TempDir(), nil, w.Variant.Policy(), func(o *noninterference.SideOptions) {
					o.BackstageURL, o.BackstageToken = bs.BaseURL, bs.Token
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				return s
			}
			sa, sb := side(bsA), side(bsB)
			var all []noninterference.Observation
			diffs := 0
			for i, c := range calls {
				oa, err := sa.Do(ctx, calls, c)
				if err != nil {
					t.Fatal(err)
				}
				ob, err := sb.Do(ctx, calls, c)
				if err != nil {
					t.Fatal(err)
				}
				// The location annotations name each side's own file.
				oa.Result = strings.ReplaceAll(oa.Result, dirA, "<dir>")
				ob.Result = strings.ReplaceAll(ob.Result, dirB, "<dir>")
				all = append(all, oa, ob)
				if oa != ob {
					diffs++
					if diffs <= 5 {
						t.Errorf("%s", noninterference.Difference{Step: i, Call: c, A: oa, B: ob})
					}
				}
			}
			if leaks := noninterference.Leaks(w, all); len(leaks) > 0 {
				t.Errorf("secrets in answers: %q", leaks)
			}
			t.Logf("seed %d (%s): %d calls per side, %d differences", seed, w.Variant, len(calls), diffs)
		})
	}
}

// listFields are the ref-valued fields that hold a list.
var listFields = map[string]bool{"providesApis": true, "consumesApis": true, "dependsOn": true, "dependencyOf": true,
	"memberOf": true, "children": true, "members": true}

// TestRefFieldsMatchBackstage checks catalog.RefFields, the one list of
// ref-valued spec fields, against the real Backstage: for every row, an
// entity of that kind with that field naming a target gets the Outgoing
// relation, and the target gets the Incoming one.
func TestRefFieldsMatchBackstage(t *testing.T) {
	required := map[string]map[string]any{
		"Component": {"type": "service", "lifecycle": "production", "owner": "rf-owner"},
		"API":       {"type": "openapi", "lifecycle": "production", "owner": "rf-owner", "definition": "openapi: 3.0.0"},
		"Resource":  {"type": "database", "owner": "rf-owner"},
		"System":    {"owner": "rf-owner"},
		"Domain":    {"owner": "rf-owner"},
		"Group":     {"type": "team", "children": []any{}},
		"User":      {"memberOf": []any{}},
	}
	ents := []map[string]any{{"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
		"metadata": map[string]any{"name": "rf-owner"}, "spec": map[string]any{"type": "team", "children": []any{}}}}
	type want struct{ source, typ, target string }
	var wants []want
	for i, f := range catalog.RefFields {
		targetKind := f.DefaultKind
		if targetKind == "" {
			targetKind = "Component"
		}
		src := fmt.Sprintf("rf-src-%d", i)
		tgt := fmt.Sprintf("rf-tgt-%d", i)
		spec := map[string]any{}
		for k, v := range required[f.Kind] {
			spec[k] = v
		}
		var value any = tgt
		if f.DefaultKind == "" {
			value = strings.ToLower(targetKind) + ":" + tgt
		}
		if listFields[f.Field] {
			value = []any{value}
		}
		spec[f.Field] = value
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": f.Kind, "metadata": map[string]any{"name": src}, "spec": spec})
		tspec := map[string]any{}
		for k, v := range required[targetKind] {
			tspec[k] = v
		}
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": targetKind, "metadata": map[string]any{"name": tgt}, "spec": tspec})
		srcRef := strings.ToLower(f.Kind) + ":default/" + src
		tgtRef := strings.ToLower(targetKind) + ":default/" + tgt
		wants = append(wants, want{srcRef, f.Outgoing, tgtRef}, want{tgtRef, f.Incoming, srcRef})
	}
	bs, _ := start(t, ents)
	got := map[want]bool{}
	var page struct {
		Items []struct {
			Kind      string `json:"kind"`
			Metadata  struct{ Name, Namespace string }
			Relations []struct{ Type, TargetRef string }
		} `json:"items"`
	}
	if err := bs.GetJSON(context.Background(), "/api/catalog/entities/by-query?limit=1000&fields=kind,metadata.name,metadata.namespace,relations", &page); err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Items {
		src := strings.ToLower(e.Kind) + ":default/" + e.Metadata.Name
		for _, r := range e.Relations {
			got[want{src, r.Type, r.TargetRef}] = true
		}
	}
	var missing []string
	for _, w := range wants {
		if !got[w] {
			missing = append(missing, fmt.Sprintf("%s %s %s", w.source, w.typ, w.target))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("relations catalog.RefFields predicts but Backstage did not store:\n%s", strings.Join(missing, "\n"))
	}
	// Every relation Backstage stored on the sources comes from a row.
	var extra []string
	for w := range got {
		if !strings.Contains(w.source, "rf-src-") {
			continue
		}
		found := false
		for _, x := range wants {
			found = found || reflect.DeepEqual(x, w)
		}
		if !found && !strings.HasSuffix(w.target, "/rf-owner") {
			extra = append(extra, fmt.Sprintf("%s %s %s", w.source, w.typ, w.target))
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("relations Backstage stored that catalog.RefFields does not list:\n%s", strings.Join(extra, "\n"))
	}
}

// specPolicy reads annotations, spec and metadata fields and masks fields
// that summaries read, so that projections must fetch what it reads.
const specPolicy = `version: 1
scopes:
  "mcp:catalog": ["catalog:read", "catalog:api-definitions"]
roles:
  - name: nia
    bind: { users: ["` + noninterference.Caller + `"] }
    tools: ["catalog:read", "catalog:api-definitions"]
    entities:
      allow:
        - HAS_ANNOTATION: { annotation: github.com/project-slug }
        - HAS_SPEC: { key: type, value: openapi }
        - IS_ENTITY_KIND: { kinds: [system, domain, group] }
      deny:
        - HAS_SPEC: { key: lifecycle, value: experimental }
    fieldMasks:
      - kinds: [api]
        fields: ["spec.owner", "metadata.title"]
      - fields: ["metadata.annotations.acme.io/*", "spec.system"]
`

// TestProjectionExactRealBackstage is the projection differential
// (noninterference.TestProjectionExact) against a real Backstage, whose
// fields parameter the projections rely on: the same calls through a
// server that asks Backstage for fields and one that fetches whole
// entities give identical answers.
func TestProjectionExactRealBackstage(t *testing.T) {
	w := noninterference.NewWorld(2)
	a, _ := w.Catalogs()
	bs, _ := start(t, a)
	calls := w.Calls(e2eSteps)
	for i, c := range calls {
		if c.Tool == "catalog_search_entities" {
			// Ties on kind are broken by random uids: order by name.
			calls[i].Args = strings.NewReplacer(`"order":"kind"`, `"order":"metadata.name"`,
				`"order":"-kind"`, `"order":"-metadata.name"`).Replace(c.Args)
		}
	}
	ctx := context.Background()
	for name, pol := range map[string]string{"world": w.Variant.Policy(), "spec": specPolicy} {
		side := func(whole bool) *noninterference.Side {
			s, err := noninterference.NewSideWith(ctx, t.TempDir(), nil, pol, func(o *noninterference.SideOptions) {
				o.BackstageURL, o.BackstageToken, o.WholeEntities = bs.BaseURL, bs.Token, whole
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			return s
		}
		proj, whole := side(false), side(true)
		diffs := 0
		for i, c := range calls {
			op, err := proj.Do(ctx, calls, c)
			if err != nil {
				t.Fatal(err)
			}
			ow, err := whole.Do(ctx, calls, c)
			if err != nil {
				t.Fatal(err)
			}
			if op.Result != ow.Result {
				diffs++
				if diffs <= 5 {
					t.Errorf("%s step %d %s:\nprojected: %s\nwhole:     %s", name, i, c, op.Result, ow.Result)
				}
			}
		}
		t.Logf("%s policy: %d calls, %d differences", name, len(calls), diffs)
	}
}
