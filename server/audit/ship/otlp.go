package ship

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// otlpSink sends log records over OTLP/HTTP with the OpenTelemetry Go log
// SDK. Records are made by the SDK's logger (so they carry the resource and
// the instrumentation scope), gathered by a processor of ours, and handed to
// the otlploghttp exporter synchronously, so that the exporter's answer
// decides whether the batch was delivered (the SDK's batch processor would
// drop records on failure).
type otlpSink struct {
	provider *sdklog.LoggerProvider
	logger   otellog.Logger
	exporter sdklog.Exporter
	gather   *gatherer
	mu       sync.Mutex
}

// gatherer is a Processor that keeps the records emitted during one Send.
type gatherer struct {
	mu   sync.Mutex
	recs []sdklog.Record
}

func (g *gatherer) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (g *gatherer) OnEmit(_ context.Context, r *sdklog.Record) error {
	g.mu.Lock()
	g.recs = append(g.recs, r.Clone())
	g.mu.Unlock()
	return nil
}
func (g *gatherer) Shutdown(context.Context) error   { return nil }
func (g *gatherer) ForceFlush(context.Context) error { return nil }

func (g *gatherer) take() []sdklog.Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.recs
	g.recs = nil
	return r
}

func newOTLPSink(ctx context.Context, sc SinkConfig, cfg Config, opts Options) (*otlpSink, error) {
	u, err := url.Parse(sc.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	eo := []otlploghttp.Option{
		otlploghttp.WithEndpointURL(sc.URL),
		otlploghttp.WithTimeout(cfg.SendTimeout),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}), // the shipper retries
		otlploghttp.WithCompression(otlploghttp.GzipCompression),
	}
	if u.Scheme == "https" {
		c, err := tlsConfig(sc.TLS, u.Hostname())
		if err != nil {
			return nil, err
		}
		eo = append(eo, otlploghttp.WithTLSClientConfig(c))
	}
	h, err := headerValues(sc.HeaderFiles)
	if err != nil {
		return nil, err
	}
	if len(h) > 0 {
		eo = append(eo, otlploghttp.WithHeaders(h))
	}
	exp, err := otlploghttp.New(ctx, eo...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", product),
		attribute.String("service.version", opts.Version),
		attribute.String("service.instance.id", opts.Host),
	)
	g := &gatherer{}
	p := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(g),
		sdklog.WithAttributeValueLengthLimit(-1))
	return &otlpSink{provider: p, logger: p.Logger("github.com/backstage-mcp/backstage-mcp/server/audit"), exporter: exp, gather: g}, nil
}

// otlpSeverity maps a record to an OpenTelemetry severity.
func otlpSeverity(r *audit.Record) (otellog.Severity, string) {
	switch syslogSeverity(r) {
	case 4:
		return otellog.SeverityWarn, "WARN"
	case 5:
		return otellog.SeverityInfo2, "NOTICE"
	}
	return otellog.SeverityInfo, "INFO"
}

func (s *otlpSink) Send(ctx context.Context, batch []Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gather.take()
	now := time.Now()
	for _, e := range batch {
		r := e.Record
		var lr otellog.Record
		lr.SetTimestamp(r.Time)
		lr.SetObservedTimestamp(now)
		sev, text := otlpSeverity(r)
		lr.SetSeverity(sev)
		lr.SetSeverityText(text)
		lr.SetEventName("backstage_mcp.audit." + string(r.Type))
		body, err := jsonValue(e.Body)
		if err != nil {
			body = attribute.StringValue(string(e.Body))
		}
		lr.SetBody(body)
		lr.AddAttributes(
			attribute.String("audit.id", r.ID),
			attribute.Int64("audit.seq", int64(min(r.Seq, math.MaxInt64))),
			attribute.String("audit.hash", r.Hash),
		)
		ectx := ctx
		if tid, err := hex.DecodeString(r.TraceID); err == nil && len(tid) == 16 {
			ectx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID(tid)}))
		}
		s.logger.Emit(ectx, lr)
	}
	recs := s.gather.take()
	if len(recs) != len(batch) {
		return fmt.Errorf("ship: otlp: %d of %d records made", len(recs), len(batch))
	}
	if err := s.exporter.Export(ctx, recs); err != nil {
		return fmt.Errorf("ship: otlp: %w", err)
	}
	return nil
}

func (s *otlpSink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.provider.Shutdown(ctx)
	if e := s.exporter.Shutdown(ctx); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("ship: otlp: close: %w", err)
	}
	return nil
}

// jsonValue converts one JSON object into an OpenTelemetry map value, so
// the receiver gets structured fields rather than a string to parse.
func jsonValue(b []byte) (attribute.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return attribute.Value{}, fmt.Errorf("ship: otlp: body: %w", err)
	}
	return anyValue(v), nil
}

func anyValue(v any) attribute.Value {
	switch x := v.(type) {
	case string:
		return attribute.StringValue(x)
	case bool:
		return attribute.BoolValue(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return attribute.Int64Value(i)
		}
		f, _ := x.Float64()
		return attribute.Float64Value(f)
	case []any:
		vs := make([]attribute.Value, len(x))
		for i, e := range x {
			vs[i] = anyValue(e)
		}
		return attribute.SliceValue(vs...)
	case map[string]any:
		kvs := make([]attribute.KeyValue, 0, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			kvs = append(kvs, attribute.KeyValue{Key: attribute.Key(k), Value: anyValue(x[k])})
		}
		return attribute.MapValue(kvs...)
	}
	return attribute.Value{} // null
}
