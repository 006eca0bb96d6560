package server

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/mark3labs/mcp-go/mcp"
)

// call sends one JSON-RPC tools/call through the MCP server (parsing,
// dispatch, middleware, tool, catalog client over the in-process
// catalog, redaction, shaping, result encoding).
func benchCall(b *testing.B, s *Server, tool, args string) int {
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, tool, args)
	b.ReportAllocs()
	b.ResetTimer()
	size := 0
	for b.Loop() {
		res := s.MCP().HandleMessage(context.Background(), json.RawMessage(msg))
		mustOK(b, res)
		out, err := json.Marshal(res)
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	return size
}

// newBenchServer is the demo server with rate limits off, so that the
// benchmarks measure the tool path and not the refusal of a spent bucket.
func newBenchServer(b testing.TB) *Server { b.Helper(); return newBenchServerMode(b, false) }

// newBenchServerMode is newBenchServer, in catalog mirror mode when mirror
// is set (the mirror filled from the demo catalog).
func newBenchServerMode(b testing.TB, mirror bool) *Server {
	b.Helper()
	conf := `rateLimits:
  classes:
    default: {unlimited: true}
    high: {unlimited: true}
  agent: {unlimited: true}
  global: {unlimited: true}
` + unlimitedIngress
	if mirror {
		conf += "catalog:\n  mode: mirror\n  syncInterval: 1h\n  maxStaleness: 2h\n"
	}
	cfg, err := ParseConfig([]byte(conf), "bench", func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(b.TempDir(), "audit.log")
	cfg.Audit.Sync = audit.SyncInterval
	var seams buildseam.Seams
	if !mirror {
		// Passthrough: the demo catalog as a Backstage served in
		// process, read through the catalog client.
		mc, err := newDemoCatalog(nil)
		if err != nil {
			b.Fatal(err)
		}
		seams.DemoUpstream = mc.Handler()
	}
	s, closeFn, err := BuildWithSeams(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"}, seams)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(closeFn)
	return s
}

// mustOK fails the benchmark when a call did not succeed.
func mustOK(b testing.TB, res mcp.JSONRPCMessage) {
	r, ok := res.(mcp.JSONRPCResponse)
	if !ok {
		b.Fatalf("not a result: %+v", res)
	}
	if ctr, ok := r.Result.(*mcp.CallToolResult); !ok || ctr.IsError {
		b.Fatalf("tool error: %+v", r.Result)
	}
}

func BenchmarkGetEntity(b *testing.B) {
	s := newBenchServer(b)
	initSession(b, s)
	b.Run("summary", func(b *testing.B) {
		benchCall(b, s, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	})
	b.Run("full", func(b *testing.B) {
		benchCall(b, s, "catalog_get_entity", `{"ref":"component:default/checkout-service","detail":"full"}`)
	})
}

func BenchmarkSearchEntities(b *testing.B) {
	s := newBenchServer(b)
	initSession(b, s)
	b.Run("kind=component,limit=20", func(b *testing.B) {
		benchCall(b, s, "catalog_search_entities", `{"kind":"Component","limit":20}`)
	})
	b.Run("owner", func(b *testing.B) {
		benchCall(b, s, "catalog_search_entities", `{"owner":"team-checkout"}`)
	})
}

func initSession(b testing.TB, s *Server) {
	s.MCP().HandleMessage(context.Background(), json.RawMessage(
		`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`))
}

// approxTokens approximates a BPE tokenizer's count: every run of letters
// or digits costs one token per 4 characters (rounded up), every other
// non-space character one token. On English prose and JSON it lands within
// about 15% of cl100k counts; it is used only for ratios.
var tokenRe = regexp.MustCompile(`[A-Za-z0-9]+|[^\sA-Za-z0-9]`)

func approxTokens(s string) int {
	n := 0
	for _, m := range tokenRe.FindAllString(s, -1) {
		n += (len(m) + 3) / 4
	}
	return n
}

// BenchmarkResponseSize reports, over every entity of the demo catalog,
// the size of the summary answer against the full answer and the raw
// entity JSON as stored in the catalog.
func BenchmarkResponseSize(b *testing.B) {
	s := newBenchServer(b)
	initSession(b, s)
	ents, err := demo.Entities()
	if err != nil {
		b.Fatal(err)
	}
	var sumB, fullB, rawB, sumT, fullT, rawT int
	for b.Loop() {
		sumB, fullB, rawB, sumT, fullT, rawT = 0, 0, 0, 0, 0, 0
		for _, e := range ents {
			ref := entityRef(e)
			for _, detail := range []string{"summary", "full"} {
				msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":%q,"detail":%q}}}`, ref, detail)
				res := s.MCP().HandleMessage(context.Background(), json.RawMessage(msg))
				r, ok := res.(mcp.JSONRPCResponse)
				if !ok {
					b.Fatalf("%s: %v", ref, res)
				}
				ctr, ok := r.Result.(*mcp.CallToolResult)
				if !ok || ctr.IsError {
					b.Fatalf("%s: %+v", ref, r.Result)
				}
				sc, _ := json.Marshal(ctr.StructuredContent)
				if detail == "summary" {
					sumB += len(sc)
					sumT += approxTokens(string(sc))
				} else {
					fullB += len(sc)
					fullT += approxTokens(string(sc))
				}
			}
			raw, _ := json.Marshal(e)
			rawB += len(raw)
			rawT += approxTokens(string(raw))
		}
	}
	b.ReportMetric(float64(sumB)/float64(len(ents)), "summary-bytes/entity")
	b.ReportMetric(float64(fullB)/float64(len(ents)), "full-bytes/entity")
	b.ReportMetric(float64(fullB)/float64(sumB), "full/summary-bytes")
	b.ReportMetric(float64(fullT)/float64(sumT), "full/summary-tokens")
	b.ReportMetric(float64(rawT)/float64(sumT), "rawyaml/summary-tokens")
}

func entityRef(e map[string]any) string {
	md, _ := e["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	if ns == "" {
		ns = "default"
	}
	return fmt.Sprintf("%s:%s/%s", e["kind"], ns, md["name"])
}
