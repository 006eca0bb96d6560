package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

const benchLimits = `rateLimits:
  classes:
    default: {unlimited: true}
    high: {unlimited: true}
  agent: {unlimited: true}
  global: {unlimited: true}
`

const halfNamespacesPolicy = `version: 1
roles:
  - name: everyone
    bind: { anonymous: true }
    tools: ["catalog:read"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [ns-0, ns-1, ns-2, ns-3, ns-4] }
`

// BenchmarkCompletion10k: completion/complete of an entity ref, through
// the whole chain (grant, rate limit with unlimited classes, authorization,
// audit write, search over the in-process catalog client, egress), on a
// 10,000-entity memcatalog of which the caller may see half. It reports
// p50 and p99 latency over the loop: warm (prefixes asked before, answered
// from the completion cache inside the tool stage) and cold (every prefix
// new, so every call searches the catalog).
func BenchmarkCompletion10k(b *testing.B) {
	var ents []map[string]any
	for i := range 10000 {
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": fmt.Sprintf("svc-%05d", i), "namespace": fmt.Sprintf("ns-%d", i%10),
				"description": "A service of the benchmark catalog."},
			"spec": map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/team-a"}})
	}
	cs := newChainServer(b, ents, halfNamespacesPolicy, benchLimits)
	s := cs.s
	s.MCP().HandleMessage(context.Background(), json.RawMessage(
		`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`))
	complete := func(prefix string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"who-owns"},"argument":{"name":"ref","value":%q}}}`, prefix))
	}
	run := func(b *testing.B, msg func(i int) json.RawMessage) {
		var lat []time.Duration
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			start := time.Now()
			mustComplete(b, s.MCP().HandleMessage(context.Background(), msg(i)))
			lat = append(lat, time.Since(start))
			i++
		}
		b.StopTimer()
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
	}
	// warm: a user typing asks for the same few prefixes again (each
	// asked once before the clock starts).
	warm := []string{"component:ns-3/svc-012", "component:ns-1/svc-00", "component:ns-7/svc-01", "component:svc-099", "component:ns-4/svc-1"}
	msgs := make([]json.RawMessage, len(warm))
	for i, p := range warm {
		msgs[i] = complete(p)
		mustComplete(b, s.MCP().HandleMessage(context.Background(), msgs[i]))
	}
	b.Run("warm", func(b *testing.B) { run(b, func(i int) json.RawMessage { return msgs[i%len(msgs)] }) })
	// cold: every prefix is new, so every call searches the catalog.
	n := 0 // across runs (-count), so that no prefix repeats
	b.Run("cold", func(b *testing.B) {
		run(b, func(int) json.RawMessage {
			n++
			return complete(fmt.Sprintf("component:ns-%d/svc-%04d", n%5, n%1000))
		})
	})
}

func mustComplete(b *testing.B, res mcp.JSONRPCMessage) {
	r, ok := res.(mcp.JSONRPCResponse)
	if !ok {
		b.Fatalf("not a result: %+v", res)
	}
	var values []string
	switch c := r.Result.(type) {
	case mcp.CompleteResult:
		values = c.Completion.Values
	case *mcp.CompleteResult:
		values = c.Completion.Values
	default:
		b.Fatalf("not a completion: %+v", r.Result)
	}
	_ = values
}
