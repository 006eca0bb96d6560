package server

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Metrics is a small Prometheus registry: counters and latency histograms
// written in the text exposition format at /metrics. Label values come
// from fixed sets (tool names, decisions, rule ids, limits), so series
// stay bounded.
type Metrics struct {
	mu         sync.Mutex
	calls      map[[2]string]uint64 // tool, decision
	latency    map[string]*histogram
	redactions map[string]uint64
	limited    map[[2]string]uint64 // tool, limit
	upstream   map[[2]string]uint64 // op, outcome
	upLatency  *histogram
	auditFails uint64
	gauges     map[string]func() float64
}

var buckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type histogram struct {
	counts []uint64
	sum    float64
	n      uint64
}

func (h *histogram) observe(v float64) {
	for i, b := range buckets {
		if v <= b {
			h.counts[i]++
		}
	}
	h.sum += v
	h.n++
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics {
	return &Metrics{
		calls: map[[2]string]uint64{}, latency: map[string]*histogram{}, redactions: map[string]uint64{},
		limited: map[[2]string]uint64{}, upstream: map[[2]string]uint64{},
		upLatency: &histogram{counts: make([]uint64, len(buckets))}, gauges: map[string]func() float64{},
	}
}

func (m *Metrics) call(tool, decision string, d time.Duration, red map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[[2]string{tool, decision}]++
	h := m.latency[tool]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(buckets))}
		m.latency[tool] = h
	}
	h.observe(d.Seconds())
	for k, v := range red {
		if v > 0 {
			m.redactions[k] += uint64(v)
		}
	}
}

func (m *Metrics) rateLimited(tool, limit string) {
	m.mu.Lock()
	m.limited[[2]string{tool, limit}]++
	m.mu.Unlock()
}

func (m *Metrics) auditFailure() {
	m.mu.Lock()
	m.auditFails++
	m.mu.Unlock()
}

// Upstream records one call to Backstage.
func (m *Metrics) Upstream(op string, status int, d time.Duration, err error) {
	outcome := "ok"
	switch {
	case err != nil && status == 0:
		outcome = "transport_error"
	case status >= 500:
		outcome = "5xx"
	case status >= 400:
		outcome = "4xx"
	}
	m.mu.Lock()
	m.upstream[[2]string{op, outcome}]++
	m.upLatency.observe(d.Seconds())
	m.mu.Unlock()
}

// Gauge registers a gauge read at scrape time.
func (m *Metrics) Gauge(name string, f func() float64) {
	m.mu.Lock()
	m.gauges[name] = f
	m.mu.Unlock()
}

// ServeHTTP writes the metrics in Prometheus text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.write(w)
}

func (m *Metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintln(w, "# HELP backstage_mcp_tool_calls_total Tool calls by tool and decision.")
	fmt.Fprintln(w, "# TYPE backstage_mcp_tool_calls_total counter")
	for _, k := range sortedPairs(m.calls) {
		fmt.Fprintf(w, "backstage_mcp_tool_calls_total{tool=%q,decision=%q} %d\n", k[0], k[1], m.calls[k])
	}
	fmt.Fprintln(w, "# HELP backstage_mcp_tool_call_duration_seconds Tool call latency.")
	fmt.Fprintln(w, "# TYPE backstage_mcp_tool_call_duration_seconds histogram")
	for _, t := range slices.Sorted(maps.Keys(m.latency)) {
		writeHist(w, "backstage_mcp_tool_call_duration_seconds", fmt.Sprintf("tool=%q", t), m.latency[t])
	}
	fmt.Fprintln(w, "# HELP backstage_mcp_redactions_total Secrets redacted, by rule.")
	fmt.Fprintln(w, "# TYPE backstage_mcp_redactions_total counter")
	for _, r := range slices.Sorted(maps.Keys(m.redactions)) {
		fmt.Fprintf(w, "backstage_mcp_redactions_total{rule=%q} %d\n", r, m.redactions[r])
	}
	fmt.Fprintln(w, "# HELP backstage_mcp_rate_limited_total Calls refused by a rate limit.")
	fmt.Fprintln(w, "# TYPE backstage_mcp_rate_limited_total counter")
	for _, k := range sortedPairs(m.limited) {
		fmt.Fprintf(w, "backstage_mcp_rate_limited_total{tool=%q,limit=%q} %d\n", k[0], k[1], m.limited[k])
	}
	fmt.Fprintln(w, "# HELP backstage_mcp_upstream_requests_total Requests to Backstage by operation and outcome.")
	fmt.Fprintln(w, "# TYPE backstage_mcp_upstream_requests_total counter")
	for _, k := range sortedPairs(m.upstream) {
		fmt.Fprintf(w, "backstage_mcp_upstream_requests_total{op=%q,outcome=%q} %d\n", k[0], k[1], m.upstream[k])
	}
	fmt.Fprintln(w, "# HELP backstage_mcp_upstream_duration_seconds Latency of requests to Backstage.")
	fmt.Fprintln(w, "# TYPE backstage_mcp_upstream_duration_seconds histogram")
	writeHist(w, "backstage_mcp_upstream_duration_seconds", "", m.upLatency)
	fmt.Fprintln(w, "# HELP backstage_mcp_audit_failures_total Audit appends that failed (the call was refused).")
	fmt.Fprintln(w, "# TYPE backstage_mcp_audit_failures_total counter")
	fmt.Fprintf(w, "backstage_mcp_audit_failures_total %d\n", m.auditFails)
	for _, n := range slices.Sorted(maps.Keys(m.gauges)) {
		fmt.Fprintf(w, "# TYPE %s gauge\n%s %g\n", n, n, m.gauges[n]())
	}
}

func writeHist(w io.Writer, name, labels string, h *histogram) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	for i, b := range buckets {
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"%g\"} %d\n", name, labels, sep, b, h.counts[i])
	}
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, h.n)
	lb := ""
	if labels != "" {
		lb = "{" + labels + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %g\n%s_count%s %d\n", name, lb, h.sum, name, lb, h.n)
}

func sortedPairs(m map[[2]string]uint64) [][2]string {
	out := make([][2]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Join(out[i][:], "\x00") < strings.Join(out[j][:], "\x00")
	})
	return out
}
