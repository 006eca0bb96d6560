package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func newTracedDemoServer(t testing.TB, tracing *Tracing, logs io.Writer) (*Server, string) {
	t.Helper()
	cfg, err := ParseConfig(nil, "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
	bo := BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart", Tracing: tracing}
	if logs != nil {
		bo.Logger, _ = NewLogger(logs, "debug", "json")
	}
	s, closeFn, err := BuildWithSeams(context.Background(), cfg, bo, passthroughSeams(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return s, cfg.Audit.Path
}

const callerTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestTracingSpans: one server span per MCP request, the root of the
// server's own trace, linked to the caller's traceparent; one span per tool call with the Backstage request
// and the audit append as children; the trace ID in the audit record and
// in the log lines.
func TestTracingSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var logs syncBuffer
	s, auditPath := newTracedDemoServer(t, NewTracing(tp), &logs)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	s.cfg.Server.PublicURL = hs.URL
	c, err := client.NewStreamableHttpClient(hs.URL+"/mcp", transport.WithHTTPHeaders(map[string]string{"traceparent": callerTraceparent}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	servertest.Connect(t, c)
	res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/orders-service"}`)
	if res.IsError {
		t.Fatalf("call failed: %s", servertest.Text(res))
	}

	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, sp := range spans {
		if _, seen := byName[sp.Name]; !seen || sp.Name != "mcp POST" {
			byName[sp.Name] = sp
		}
	}
	tool, ok := byName["tools/call catalog_get_entity"]
	if !ok {
		t.Fatalf("no tool span among %v", names(spans))
	}
	wantTrace := tool.SpanContext.TraceID().String()
	if wantTrace == "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("tool span trace %s is the caller's: the server must start its own", wantTrace)
	}
	var httpSpan *tracetest.SpanStub
	for i, sp := range spans {
		if sp.Name == "mcp POST" && sp.SpanContext.SpanID() == tool.Parent.SpanID() {
			httpSpan = &spans[i]
		}
	}
	if httpSpan == nil || httpSpan.SpanKind != trace.SpanKindServer || httpSpan.Parent.IsValid() ||
		len(httpSpan.Links) != 1 || httpSpan.Links[0].SpanContext.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("the tool span's parent is not the MCP request span, a root linked to the caller's context: %+v", httpSpan)
	}
	for _, child := range []string{"policy.authorize", "backstage GET", "redact.egress", "audit.append"} {
		sp, ok := byName[child]
		if !ok {
			t.Errorf("no %q span among %v", child, names(spans))
			continue
		}
		if sp.Parent.SpanID() != tool.SpanContext.SpanID() {
			t.Errorf("%q is not a child of the tool call span", child)
		}
	}
	if bs := byName["backstage GET"]; bs.SpanKind != trace.SpanKindClient {
		t.Errorf("backstage span kind %v, want client", bs.SpanKind)
	}

	// The audit record of the call names the trace.
	b, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct{ Type, Tool, TraceID string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Type == "call" && rec.Tool == "catalog_get_entity" {
			found = true
			if rec.TraceID != wantTrace {
				t.Errorf("audit record traceId %q, want %s", rec.TraceID, wantTrace)
			}
		}
	}
	if !found {
		t.Fatal("no audit record of the call")
	}
	// So does the call's log line.
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	logged := false
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "tool call" {
			logged = true
			if line["trace_id"] != wantTrace || line["span_id"] != tool.SpanContext.SpanID().String() {
				t.Errorf("log line %v lacks the call's trace and span", line)
			}
		}
	}
	if !logged {
		t.Fatalf("no tool call log line in %s", logs.String())
	}
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTracingPropagatesToBackstage: requests to Backstage carry a W3C
// traceparent naming the Backstage client span.
func TestTracingPropagatesToBackstage(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	var got string
	backstage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("traceparent")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(backstage.Close)
	hc := &http.Client{Transport: NewTracing(tp).Transport(http.DefaultTransport)}
	ctx, parent := tp.Tracer("t").Start(context.Background(), "tools/call x")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, backstage.URL+"/api/catalog/entities", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	parent.End()
	var client tracetest.SpanStub
	for _, sp := range exp.GetSpans() {
		if sp.Name == "backstage GET" {
			client = sp
		}
	}
	want := "00-" + client.SpanContext.TraceID().String() + "-" + client.SpanContext.SpanID().String() + "-01"
	if got != want {
		t.Fatalf("traceparent sent to Backstage %q, want %q", got, want)
	}
	if req.Header.Get("traceparent") != "" {
		t.Fatal("the caller's request was modified")
	}
}

// TestTracingOffByDefault: without OTEL_* settings nothing is set up;
// unsupported settings fail loudly instead of silently dropping spans.
func TestTracingFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		enabled bool
		wantErr string
	}{
		{"nothing set", nil, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, ""},
		{"exporter otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, ""},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, false, ""},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, ""},
		{"unsupported exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "only otlp and none"},
		{"grpc", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, "only http/protobuf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := TracingFromEnv(context.Background(), func(k string) string { return tc.env[k] }, "test")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Enabled() != tc.enabled {
				t.Fatalf("enabled = %v, want %v", tr.Enabled(), tc.enabled)
			}
			_ = tr.Shutdown(context.Background())
		})
	}
}

// TestTracingExportsOverOTLP runs the real OTLP/HTTP exporter, configured
// by the standard environment variables, against a receiver on loopback.
func TestTracingExportsOverOTLP(t *testing.T) {
	var (
		mu       sync.Mutex
		received []*collectortrace.ExportTraceServiceRequest
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req := &collectortrace.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		received = append(received, req)
		mu.Unlock()
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	t.Cleanup(receiver.Close)
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.URL,
		"OTEL_SERVICE_NAME":           "mcp-under-test",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	tr, err := TracingFromEnv(context.Background(), os.Getenv, "v9.9.9")
	if err != nil || !tr.Enabled() {
		t.Fatalf("TracingFromEnv = %v, %v", tr, err)
	}
	s, _ := newTracedDemoServer(t, tr, nil)
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/orders-service"}`)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	spanNames := map[string]bool{}
	service := ""
	for _, req := range received {
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					service = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					spanNames[sp.Name] = true
				}
			}
		}
	}
	for _, want := range []string{"tools/call catalog_get_entity", "backstage GET", "audit.append"} {
		if !spanNames[want] {
			t.Errorf("receiver lacks span %q; got %v", want, spanNames)
		}
	}
	if service != "mcp-under-test" {
		t.Errorf("service.name %q, want OTEL_SERVICE_NAME", service)
	}
}

// TestTracingMirrorSpans: in mirror mode a tool call's catalog reads are
// answered in process, and each leaves a "catalog mirror <op>" span, the
// child of the tool call's span, as a request to Backstage leaves a
// "backstage GET" span in pass-through mode; the call itself sends nothing
// to Backstage.
func TestTracingMirrorSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg, err := ParseConfig([]byte("catalog:\n  mode: mirror\n  syncInterval: 1h\n  maxStaleness: 2h\n"), "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
	s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart", Tracing: NewTracing(tp)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	c := inProcess(t, s)
	exp.Reset() // the first sync's requests to Backstage
	ctx, root := tp.Tracer("t").Start(context.Background(), "test")
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "catalog_get_entity",
		Arguments: map[string]any{"ref": "component:default/orders-service"}}})
	root.End()
	if err != nil || res.IsError {
		t.Fatalf("call failed: %v %s", err, servertest.Text(res))
	}
	spans := exp.GetSpans()
	var tool *tracetest.SpanStub
	for i, sp := range spans {
		if sp.Name == "tools/call catalog_get_entity" {
			tool = &spans[i]
		}
	}
	if tool == nil {
		t.Fatalf("no tool span among %v", names(spans))
	}
	mirrored, gets := 0, 0
	for _, sp := range spans {
		if sp.Name == "catalog mirror get" {
			gets++
		}
		switch {
		case sp.Name == "backstage GET" || sp.Name == "backstage POST":
			t.Errorf("a mirror-mode call sent a request to Backstage: %s", sp.Name)
		case strings.HasPrefix(sp.Name, "catalog mirror "):
			mirrored++
			if sp.Parent.SpanID() != tool.SpanContext.SpanID() {
				t.Errorf("%q is not a child of the tool call span", sp.Name)
			}
			if sp.Status.Code != 0 {
				t.Errorf("%q failed: %+v", sp.Name, sp.Status)
			}
		}
	}
	if mirrored == 0 || gets != 1 {
		t.Fatalf("want one catalog mirror get span among %v", names(spans))
	}
}
