package redact_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

// entityPage builds a catalog page of realistic entities in which about one
// entity in twenty carries a secret.
func entityPage(tb testing.TB) []byte {
	tb.Helper()
	var clean, dirty []string
	for _, c := range corpus.Generate(corpus.DefaultSeed) {
		if c.Mode != "json" {
			continue
		}
		if len(c.Secrets) == 0 {
			clean = append(clean, c.Input)
		} else {
			dirty = append(dirty, c.Input)
		}
	}
	var items []string
	for i := 0; i < 200; i++ {
		if i%20 == 19 {
			items = append(items, dirty[i%len(dirty)])
		} else {
			items = append(items, clean[i%len(clean)])
		}
	}
	return []byte(`{"items":[` + strings.Join(items, ",") + `],"totalItems":200,"pageInfo":{}}`)
}

func BenchmarkJSONEntities(b *testing.B) {
	r := newRedactor(b)
	doc := entityPage(b)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := r.JSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTextDefinition(b *testing.B) {
	r := newRedactor(b)
	var parts []string
	for _, c := range corpus.Generate(corpus.DefaultSeed) {
		if c.Mode == "text" && len(c.Secrets) == 0 {
			parts = append(parts, c.Input)
		}
	}
	text := strings.Join(parts, "\n\n")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		r.Text(text)
	}
	reportCPU(b, cpu0, len(text))
}

// BenchmarkValueEntities measures the path the server takes: a decoded
// entity page (maps and slices) walked by Value. MB/s is relative to the
// page's JSON size.
func BenchmarkValueEntities(b *testing.B) {
	r := newRedactor(b)
	doc := entityPage(b)
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, _, err := r.Value(v); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0, len(doc))
}

// reportCPU adds "MB/cpu-s": bytes processed per second of CPU time used by
// the process (the benchmark and its garbage collection), which does not
// count the time the process waited for a core. With -cpu 1 it is the
// single-core throughput even when other work shares the machine.
func reportCPU(b *testing.B, cpu0 time.Duration, size int) {
	b.Helper()
	if d := cpuTime() - cpu0; cpu0 > 0 && d > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/d.Seconds()/1e6, "MB/cpu-s")
	}
}

// BenchmarkTextOpenAPI measures free text at its largest: Kubernetes'
// OpenAPI definition (4.7 MB of JSON, testdata/redact/lookalike) read as
// text, the way an API entity's spec.definition is redacted.
func BenchmarkTextOpenAPI(b *testing.B) {
	r := newRedactor(b)
	text := openAPIText(b)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		r.Text(text)
	}
	reportCPU(b, cpu0, len(text))
}

func openAPIText(tb testing.TB) string {
	tb.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "redact", "lookalike", "kubernetes-openapi.json.gz"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
