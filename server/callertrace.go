package server

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Caller trace context. A caller's W3C traceparent and tracestate are
// caller input like any other: they never choose the trace this server
// records (the audit record's traceId, the spans' trace), so correlation in
// the audit trail cannot be forged. A well-formed traceparent is kept
// apart, as the record's callerTraceparent and as a link on the server's
// request span, so the caller's trace can still be found from ours. The
// caller's tracestate goes to Backstage only when
// server.forwardCallerTracestate says so.

// traceparentLen is the length of a version-00 traceparent, and of the
// part of a later version's that this server reads and keeps.
const traceparentLen = 55

type callerTraceKey struct{}

// callerTrace is the caller's validated trace context.
type callerTrace struct {
	traceparent string            // normalised, traceparentLen characters
	sc          trace.SpanContext // the caller's span, for a span link
	tracestate  string            // set only when forwarding is configured
}

// withCallerTrace keeps the caller's well-formed traceparent (and, with
// forwardTracestate, its well-formed tracestate) in the request context.
// It runs whether or not tracing is on: the audit record names the
// caller's traceparent either way.
func withCallerTrace(next http.Handler, forwardTracestate bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp, sc, ok := parseTraceparent(r.Header.Values("traceparent"))
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		ct := callerTrace{traceparent: tp, sc: sc}
		if forwardTracestate {
			if vs := r.Header.Values("tracestate"); len(vs) > 0 {
				if ts, err := trace.ParseTraceState(strings.Join(vs, ",")); err == nil && ts.Len() > 0 {
					ct.tracestate = ts.String()
					ct.sc = ct.sc.WithTraceState(ts)
				}
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerTraceKey{}, ct)))
	})
}

// callerTraceFrom returns the caller's trace context kept by
// withCallerTrace.
func callerTraceFrom(ctx context.Context) (callerTrace, bool) {
	ct, ok := ctx.Value(callerTraceKey{}).(callerTrace)
	return ct, ok
}

// callerTraceparentOf is the caller's well-formed traceparent, or "".
func callerTraceparentOf(ctx context.Context) string {
	ct, _ := callerTraceFrom(ctx)
	return ct.traceparent
}

// parseTraceparent validates a traceparent header as W3C Trace Context
// level 1 prescribes: exactly one header; version-traceid-parentid-flags
// in lowercase hex; version ff, an all-zero trace id or parent id are
// invalid; version 00 is exactly 55 characters; a later version may carry
// more fields after a '-', which are dropped. It returns the normalised
// header and the caller's span context.
func parseTraceparent(values []string) (string, trace.SpanContext, bool) {
	if len(values) != 1 {
		return "", trace.SpanContext{}, false
	}
	v := strings.TrimSpace(values[0])
	if len(v) < traceparentLen || (len(v) > traceparentLen && (v[:2] == "00" || v[traceparentLen] != '-')) {
		return "", trace.SpanContext{}, false
	}
	v = v[:traceparentLen]
	if v[2] != '-' || v[35] != '-' || v[52] != '-' || v[:2] == "ff" {
		return "", trace.SpanContext{}, false
	}
	for i := range len(v) {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if c := v[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", trace.SpanContext{}, false
		}
	}
	tid, err1 := trace.TraceIDFromHex(v[3:35])
	sid, err2 := trace.SpanIDFromHex(v[36:52])
	if err1 != nil || err2 != nil { // also refuses all-zero ids
		return "", trace.SpanContext{}, false
	}
	var flags trace.TraceFlags
	if v[54] == '1' || v[54] == '3' || v[54] == '5' || v[54] == '7' || v[54] == '9' || v[54] == 'b' || v[54] == 'd' || v[54] == 'f' {
		flags = trace.FlagsSampled
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
	return v, sc, true
}
