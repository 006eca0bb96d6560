package noninterference

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// benchCatalog is 10,000 components over 50 teams (the caller's team-a
// owns 200), with titles and descriptions of random words.
func benchCatalog() []map[string]any {
	r := rand.New(rand.NewPCG(10000, 1))
	team := func(i int) string {
		if i == 0 {
			return "team-a"
		}
		return fmt.Sprintf("team-%d", i)
	}
	ents := []map[string]any{entity("User", "nia", md("", "", nil, nil), map[string]any{"memberOf": []any{"team-a"}})}
	for i := range 50 {
		ents = append(ents, entity("Group", team(i), md("", "", nil, nil), map[string]any{"type": "team", "children": []any{}}))
	}
	prose := func(n int) string {
		s := ""
		for i := range n {
			if i > 0 {
				s += " "
			}
			s += words[r.IntN(len(words))]
		}
		return s
	}
	for i := range 10000 {
		ents = append(ents, entity("Component", fmt.Sprintf("svc-%05d", i), md("Service "+prose(2), "Handles "+prose(8), nil, nil),
			map[string]any{"type": "service", "lifecycle": "production", "owner": team(i % 50),
				"dependsOn": []any{fmt.Sprintf("component:default/svc-%05d", (i+1)%10000)}}))
	}
	return ents
}

// benchPolicies: everyone reads every component (the text is matched
// over all 10,000), or a team reads what it owns (200).
var benchPolicies = map[string]string{
	"everyone": `version: 1
scopes:
  "mcp:catalog": ["catalog:read"]
roles:
  - name: all
    bind: { authenticated: true }
    tools: ["catalog:read"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [component, group] }
`,
	"team": `version: 1
scopes:
  "mcp:catalog": ["catalog:read"]
roles:
  - name: team
    bind: { authenticated: true }
    tools: ["catalog:read"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
`,
}

// BenchmarkSearchText10k measures catalog_search_entities with text on a
// 10,000-entity in-memory catalog through the whole server, upstream cache
// off, and reports the p50 latency. The texts rotate so that no two
// consecutive calls are alike.
func BenchmarkSearchText10k(b *testing.B) {
	ents := benchCatalog()
	for _, name := range []string{"everyone", "team"} {
		b.Run(name, func(b *testing.B) {
			sd, err := newBenchSide(b, ents, benchPolicies[name])
			if err != nil {
				b.Fatal(err)
			}
			defer sd.Close()
			texts := []string{"aurora", "cobalt dyn", "lumen", "svc-0012", "prism", "jade"}
			var lat []time.Duration
			i := 0
			for b.Loop() {
				args, _ := json.Marshal(map[string]any{"text": texts[i%len(texts)], "kind": "Component", "limit": 20})
				i++
				start := time.Now()
				o, err := sd.Do(context.Background(), nil, Call{Op: "call", Tool: "catalog_search_entities", Args: string(args)})
				lat = append(lat, time.Since(start))
				if err != nil || o.Class == "" {
					b.Fatal(err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
		})
	}
}

func newBenchSide(b *testing.B, ents []map[string]any, policy string) (*Side, error) {
	b.Helper()
	return NewSideWith(context.Background(), b.TempDir(), clone(ents), policy, func(o *SideOptions) { o.NoCache = true })
}
