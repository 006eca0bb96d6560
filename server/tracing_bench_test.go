package server

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkToolCallTracing measures one tools/call with tracing off and
// on (every span sampled, batched to an exporter that drops them), and
// reports the median per call besides the mean:
//
//	go test -run '^$' -bench ToolCallTracing -benchtime 3000x ./server/
func BenchmarkToolCallTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			var tracing *Tracing
			if on {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
					sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				tracing = NewTracing(tp)
			}
			cfg, err := ParseConfig([]byte("rateLimits:\n  classes:\n    default: {unlimited: true}\n    high: {unlimited: true}\n"+
				"  agent: {unlimited: true}\n  global: {unlimited: true}\n"), "bench", func(string) string { return "" })
			if err != nil {
				b.Fatal(err)
			}
			cfg.Audit.Path = filepath.Join(b.TempDir(), "audit.log")
			cfg.Audit.Sync = audit.SyncInterval
			s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart", Tracing: tracing})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(closeFn)
			msg := json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":"component:default/orders-service"}}}`)
			durs := make([]time.Duration, 0, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				res := s.MCP().HandleMessage(context.Background(), msg)
				durs = append(durs, time.Since(start))
				mustOK(b, res)
			}
			b.StopTimer()
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns/call")
		})
	}
}
