package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog/mirror"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the server's Prometheus registry (client_golang): tool calls,
// latencies, redactions, rate limits, upstream requests and audit
// failures, plus the Go runtime and process collectors. It is its own
// registry, never the global default one. Label values come from fixed
// sets (tool names, decisions, rule ids, limits), so series stay bounded.
type Metrics struct {
	reg        *prometheus.Registry
	calls      *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	redactions *prometheus.CounterVec
	limited    *prometheus.CounterVec
	upstream   *prometheus.CounterVec
	upLatency  prometheus.Histogram
	auditFails prometheus.Counter
	mirrorDur  *prometheus.HistogramVec
	mirrorChg  *prometheus.CounterVec
	evicted    *prometheus.CounterVec
	streamsEv  *prometheus.CounterVec
	ready      *prometheus.GaugeVec
}

var buckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewMetrics returns a registry with every server metric and the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backstage_mcp_tool_calls_total", Help: "Tool calls by tool and decision.",
		}, []string{"tool", "decision"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "backstage_mcp_tool_call_duration_seconds", Help: "Tool call latency.", Buckets: buckets,
		}, []string{"tool"}),
		redactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backstage_mcp_redactions_total", Help: "Secrets redacted, by rule.",
		}, []string{"rule"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backstage_mcp_rate_limited_total", Help: "Calls refused by a rate limit.",
		}, []string{"tool", "limit"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backstage_mcp_upstream_requests_total", Help: "Requests to Backstage by operation and outcome (ok: 2xx or 404; 4xx: other client errors; 5xx; transport_error).",
		}, []string{"op", "outcome"}),
		upLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "backstage_mcp_upstream_duration_seconds", Help: "Latency of requests to Backstage.", Buckets: buckets,
		}),
		auditFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "backstage_mcp_audit_failures_total", Help: "Audit appends that failed (the call was refused).",
		}),
		mirrorDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "backstage_mcp_catalog_mirror_sync_duration_seconds", Help: "Catalog mirror syncs by kind (full, delta) and outcome (ok, error).",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"kind", "outcome"}),
		mirrorChg: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backstage_mcp_catalog_mirror_changes_total", Help: "Entities added, changed and removed by catalog mirror delta syncs.",
		}, []string{"change"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backstage_mcp_sessions_evicted_total", Help: "Sessions ended to make room for a new one, by cap (user, service).",
		}, []string{"cap"}),
		streamsEv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backstage_mcp_streams_evicted_total", Help: "Standalone SSE streams (GET /mcp) ended to make room for a new one, by cap (session, user).",
		}, []string{"cap"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backstage_mcp_ready_check", Help: "1 when a readiness check passed at its last run, 0 when it failed, by check and scope (replica: fails /readyz; shared: reported only).",
		}, []string{"check", "scope"}),
	}
	m.reg.MustRegister(m.calls, m.latency, m.redactions, m.limited, m.upstream, m.upLatency, m.auditFails, m.mirrorDur, m.mirrorChg, m.evicted, m.streamsEv, m.ready,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the underlying registry, e.g. to add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) call(tool, decision string, d time.Duration, red map[string]int) {
	m.calls.WithLabelValues(tool, decision).Inc()
	m.latency.WithLabelValues(tool).Observe(d.Seconds())
	for k, v := range red {
		if v > 0 {
			m.redactions.WithLabelValues(k).Add(float64(v))
		}
	}
}

func (m *Metrics) rateLimited(tool, limit string) { m.limited.WithLabelValues(tool, limit).Inc() }

func (m *Metrics) auditFailure() { m.auditFails.Inc() }

func (m *Metrics) readyCheck(check, scope string, ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.ready.WithLabelValues(check, scope).Set(v)
}

func (m *Metrics) sessionEvicted(cap string) { m.evicted.WithLabelValues(cap).Inc() }

func (m *Metrics) streamEvicted(cap string) { m.streamsEv.WithLabelValues(cap).Inc() }

// Upstream records one call to Backstage. A 404 counts as "ok": Backstage
// answered, and an entity hidden by policy (fetched, 200) must move the
// same series as one that does not exist (404).
func (m *Metrics) Upstream(op string, status int, d time.Duration, err error) {
	outcome := "ok"
	switch {
	case status == http.StatusNotFound:
	case err != nil && status == 0:
		outcome = "transport_error"
	case status >= 500:
		outcome = "5xx"
	case status >= 400:
		outcome = "4xx"
	}
	m.upstream.WithLabelValues(op, outcome).Inc()
	m.upLatency.Observe(d.Seconds())
}

// mirrorSync records one catalog mirror sync.
func (m *Metrics) mirrorSync(r mirror.Report) {
	kind, outcome := "delta", "ok"
	if r.Full {
		kind = "full"
	}
	if r.Err != nil {
		outcome = "error"
	}
	m.mirrorDur.WithLabelValues(kind, outcome).Observe(r.Duration.Seconds())
	if r.Err == nil {
		m.mirrorChg.WithLabelValues("added").Add(float64(r.Added))
		m.mirrorChg.WithLabelValues("changed").Add(float64(r.Changed))
		m.mirrorChg.WithLabelValues("removed").Add(float64(r.Removed))
	}
}

// Gauge registers a value read at scrape time: a counter when its name
// ends in _total (it only grows), a gauge otherwise. Registering a name
// twice is a programming error and panics.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	if strings.HasSuffix(name, "_total") {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// ServeHTTP writes the metrics in the Prometheus exposition format (text,
// or OpenMetrics when the scraper asks for it).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
		Timeout:           10 * time.Second,
	}).ServeHTTP(w, r)
}
