package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/mirror"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const tracerName = "github.com/backstage-mcp/backstage-mcp/server"

// Tracing is the server's OpenTelemetry set-up: a tracer provider and the
// W3C trace-context propagator. The zero value and nil are "off": spans
// are no-ops and nothing is exported. It is passed explicitly; the global
// otel provider is never set.
type Tracing struct {
	tp       trace.TracerProvider
	prop     propagation.TextMapPropagator
	shutdown func(context.Context) error
}

// NewTracing wraps a tracer provider (e.g. an SDK provider with an
// in-memory exporter in tests).
func NewTracing(tp trace.TracerProvider) *Tracing {
	return &Tracing{tp: tp, prop: propagation.TraceContext{}}
}

// TracingFromEnv configures tracing from the standard OTEL_* variables.
// Tracing is off unless OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
// set; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off.
// The exporter speaks OTLP over HTTP (http/protobuf) and reads its
// endpoint, headers, timeout and TLS settings from the same variables; the
// sampler comes from OTEL_TRACES_SAMPLER(_ARG) (default: parent-based,
// always on) and the resource from OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES.
func TracingFromEnv(ctx context.Context, getenv func(string) string, version string) (*Tracing, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return nil, nil
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return nil, nil
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return nil, nil
		}
	case "otlp":
	default:
		return nil, fmt.Errorf("server: OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", exp)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return nil, fmt.Errorf("server: OTLP protocol %q: only http/protobuf is supported", proto)
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("server: OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", Name), attribute.String("service.version", version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("server: trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	t := NewTracing(tp)
	t.shutdown = tp.Shutdown
	return t, nil
}

// Enabled reports whether spans are recorded.
func (t *Tracing) Enabled() bool { return t != nil && t.tp != nil }

// Tracer returns the server's tracer (a no-op one when off).
func (t *Tracing) Tracer() trace.Tracer {
	if !t.Enabled() {
		return noop.NewTracerProvider().Tracer(tracerName)
	}
	return t.tp.Tracer(tracerName)
}

// Shutdown flushes and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("server: tracing shutdown: %w", err)
	}
	return nil
}

// HTTP starts one server span per request to the MCP endpoint: the root
// of a new trace of this server's own, never a child of the caller's
// context, so a caller cannot choose the trace ID the audit trail records
// (nor whether the request is sampled). A caller's well-formed
// traceparent, kept by withCallerTrace, becomes a link on that span.
func (t *Tracing) HTTP(next http.Handler) http.Handler {
	if !t.Enabled() {
		return next
	}
	tracer := t.Tracer()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path))}
		if ct, ok := callerTraceFrom(r.Context()); ok {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: ct.sc,
				Attributes: []attribute.KeyValue{attribute.String("link.origin", "caller traceparent")}}))
		}
		ctx, span := tracer.Start(r.Context(), "mcp "+r.Method, opts...)
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Tool is tool middleware: one span per tool call, the parent of the
// audit append and of every Backstage request the call makes.
func (t *Tracing) Tool(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	if !t.Enabled() {
		return next
	}
	tracer := t.Tracer()
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ctx, span := tracer.Start(ctx, "tools/call "+req.Params.Name,
			trace.WithAttributes(attribute.String("mcp.method.name", "tools/call"), attribute.String("gen_ai.tool.name", req.Params.Name)))
		defer span.End()
		res, err := next(ctx, req)
		switch {
		case err != nil:
			span.SetStatus(codes.Error, "protocol error")
		case res != nil && res.IsError:
			span.SetStatus(codes.Error, "tool error")
		}
		return res, err
	}
}

// Transport wraps an outbound transport: one client span per request to
// Backstage, with the W3C traceparent header so Backstage's own traces
// join the call's. The caller's tracestate is added only when
// withCallerTrace kept it (server.forwardCallerTracestate).
func (t *Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	if !t.Enabled() {
		return base
	}
	return &tracingTransport{base: base, tracer: t.Tracer(), prop: t.prop}
}

type tracingTransport struct {
	base   http.RoundTripper
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

func (tt *tracingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := tt.tracer.Start(r.Context(), "backstage "+r.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("server.address", r.URL.Host),
			attribute.String("url.path", r.URL.Path)))
	defer span.End()
	r = r.Clone(ctx)
	tt.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	if ct, ok := callerTraceFrom(ctx); ok && ct.tracestate != "" {
		r.Header.Set("tracestate", ct.tracestate)
	}
	resp, err := tt.base.RoundTrip(r)
	if err != nil {
		span.SetStatus(codes.Error, "transport error")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}

// MirrorSpan is the catalog mirror's span hook (mirror.Config.Span): one
// span per call the mirror answers in process, the child of the tool
// call's span, as Transport makes one per request to Backstage. It is
// named "catalog mirror <op>" (query, get, refs, facets); a failed call
// sets the span's status to the error's kind (never its text, which may
// name entities) and, when the error carries one, the HTTP status the
// client would have reported. Nil when tracing is off.
func (t *Tracing) MirrorSpan() mirror.SpanFunc {
	if !t.Enabled() {
		return nil
	}
	tracer := t.Tracer()
	return func(ctx context.Context, op string) (context.Context, func(error)) {
		ctx, span := tracer.Start(ctx, "catalog mirror "+op, trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(attribute.String("backstage_mcp.catalog.operation", op)))
		return ctx, func(err error) {
			if err != nil {
				var ue *catalog.UpstreamError
				switch {
				case errors.As(err, &ue):
					if ue.Status != 0 {
						span.SetAttributes(attribute.Int("http.response.status_code", ue.Status))
					}
					span.SetStatus(codes.Error, ue.Kind.Error())
				case errors.Is(err, context.Canceled):
					span.SetStatus(codes.Error, "canceled")
				default:
					span.SetStatus(codes.Error, "refused")
				}
			}
			span.End()
		}
	}
}

// traceLogHandler adds trace_id and span_id to every log line written
// with a context that carries a span.
type traceLogHandler struct{ slog.Handler }

func (h traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceLogHandler{h.Handler.WithAttrs(as)}
}

func (h traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{h.Handler.WithGroup(name)}
}
