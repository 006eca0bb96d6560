package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit/ship"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
)

// lockedBuffer is a bytes.Buffer safe for the shipper's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAuditExportShipsEveryRecord: with audit.export set, the records of a
// running server reach the sink in the configured format — server_start,
// the calls and, drained at close, server_stop — and the export's metrics
// are served.
func TestAuditExportShipsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	yaml := "audit:\n  path: " + filepath.Join(dir, "audit.log") + "\n  format: ecs\n  export:\n    pollInterval: 10ms\n    sinks:\n      - type: stdout\n"
	cfg, err := ParseConfig([]byte(yaml), "config.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart", Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"action":"catalog_get_entity"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the call's record was not shipped: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`backstage_mcp_audit_export_records_total{sink="stdout"}`,
		`backstage_mcp_audit_export_lag_records{sink="stdout"}`,
		`backstage_mcp_audit_export_up{sink="stdout"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	closeFn()
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var doc struct {
			Event struct {
				Action   string `json:"action"`
				Sequence int    `json:"sequence"`
			} `json:"event"`
			User struct {
				Name string `json:"name"`
			} `json:"user"`
		}
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("not an ECS document: %q", line)
		}
		if doc.Event.Sequence != len(actions)+1 {
			t.Fatalf("sequence %d at position %d", doc.Event.Sequence, len(actions)+1)
		}
		actions = append(actions, doc.Event.Action)
		if doc.Event.Action == "catalog_get_entity" && doc.User.Name != "user:default/amelia.hart" {
			t.Errorf("user.name = %q", doc.User.Name)
		}
	}
	if len(actions) != 3 || actions[0] != "server_start" || actions[2] != "server_stop" {
		t.Fatalf("shipped %v, want server_start, the call, server_stop", actions)
	}
}

func TestAuditExportConfigErrors(t *testing.T) {
	for yaml, want := range map[string]string{
		"audit:\n  sink: stdout\n  export:\n    sinks:\n      - type: stdout\n": "needs audit.sink file",
		"audit:\n  format: cef\n":                                                     "audit.format",
		"audit:\n  export:\n    sinks:\n      - type: syslog\n":                       "needs address",
		"audit:\n  export:\n    sinks:\n      - type: hec\n        url: http://h:1\n": "tokenFile",
	} {
		_, err := ParseConfig([]byte(yaml), "config.yaml", func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", yaml, err, want)
		}
	}
	cfg, err := ParseConfig([]byte("audit:\n  export:\n    sinks:\n      - type: stdout\n"), "config.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
	if _, _, err := Build(context.Background(), cfg, BuildOptions{Demo: true, Stdio: true, LocalUser: "user:default/amelia.hart"}); err == nil ||
		!strings.Contains(err.Error(), "stdout carries the protocol") {
		t.Fatalf("stdout sink with --stdio: %v", err)
	}
}

func TestAuditExportFilesRelativeToConfig(t *testing.T) {
	c := &Config{}
	c.Audit.Export.Sinks = []ship.SinkConfig{{Type: ship.SinkHEC, TokenFile: "secrets/hec", HeaderFiles: map[string]string{"X-A": "a"},
		TLS: ship.TLSConfig{CAFile: "/abs/ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}}}
	c.resolvePaths("/etc/bmcp", func(string) string { return "" })
	sk := c.Audit.Export.Sinks[0]
	if sk.TokenFile != "/etc/bmcp/secrets/hec" || sk.HeaderFiles["X-A"] != "/etc/bmcp/a" || sk.TLS.CAFile != "/abs/ca.pem" ||
		sk.TLS.CertFile != "/etc/bmcp/c.pem" || sk.TLS.KeyFile != "/etc/bmcp/k.pem" {
		t.Fatalf("resolved %+v", sk)
	}
}

// BenchmarkToolCallAuditExport measures what the audit export adds to a
// tool call: catalog_get_entity through the whole chain, its record synced
// (audit.sync every, the default), without an export and with one shipping
// every record in OCSF beside it. It reports p50 and p99 per call.
//
//	go test -run '^$' -bench ToolCallAuditExport -benchtime 3000x ./server/
func BenchmarkToolCallAuditExport(b *testing.B) {
	for _, export := range []bool{false, true} {
		name := "no-export"
		if export {
			name = "export-ocsf"
		}
		b.Run(name, func(b *testing.B) {
			yaml := "rateLimits:\n  classes:\n    default: {unlimited: true}\n    high: {unlimited: true}\n  agent: {unlimited: true}\n  global: {unlimited: true}\n"
			if export {
				yaml += "audit:\n  format: ocsf\n  export:\n    pollInterval: 5ms\n    sinks:\n      - type: stdout\n"
			}
			cfg, err := ParseConfig([]byte(yaml), "bench", func(string) string { return "" })
			if err != nil {
				b.Fatal(err)
			}
			cfg.Audit.Path = filepath.Join(b.TempDir(), "audit.log")
			s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart", Stdout: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			defer closeFn()
			initSession(b, s)
			msg := json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":"component:default/checkout-service"}}}`)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				mustOK(b, s.MCP().HandleMessage(context.Background(), msg))
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
