package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/audit/ship"
)

// auditExportDrain bounds how long a stopping server keeps shipping the
// records still on disk (its server_stop record among them); what is left
// goes out at the next start.
const auditExportDrain = 5 * time.Second

// startAuditExport starts shipping the audit file to the sinks of
// audit.export, if any, and registers their metrics. stop drains and stops
// it; call it after the audit log is closed, so the last record goes too.
func startAuditExport(ctx context.Context, cfg AuditConfig, acfg audit.Config, alog *audit.Log, bo BuildOptions, m *Metrics, log *slog.Logger) (stop func(), err error) {
	if len(cfg.Export.Sinks) == 0 {
		return func() {}, nil
	}
	if acfg.Sink != audit.SinkFile {
		return nil, errors.New("server: audit.export needs audit.sink file")
	}
	for _, s := range cfg.Export.Sinks {
		if s.Type == ship.SinkStdout && bo.Stdio {
			return nil, errors.New("server: audit.export sink stdout cannot be used with --stdio: stdout carries the protocol")
		}
	}
	host := acfg.Replica
	if host == "" {
		host, _ = os.Hostname()
	}
	exp, err := ship.Start(ctx, ship.Options{
		Path: acfg.Path, Format: cfg.Format, Config: cfg.Export, Logger: log,
		Head:   func() uint64 { seq, _ := alog.Head(); return seq },
		Stdout: bo.Stdout, Host: host, Version: bo.Version,
	})
	if err != nil {
		return nil, fmt.Errorf("server: audit.export: %w", err)
	}
	for i, s := range exp.Stats() {
		registerExportMetrics(m, s.Name, func() ship.Stats { return exp.Stats()[i] })
		log.Info("audit export", "sink", s.Name, "acknowledgedSeq", s.AckedSeq)
	}
	return func() {
		dctx, cancel := context.WithTimeout(context.Background(), auditExportDrain)
		defer cancel()
		if err := exp.Close(dctx); err != nil {
			log.Warn("audit export", "err", err)
		}
	}, nil
}

// registerExportMetrics registers one sink's gauges and counters, labelled
// sink=NAME.
func registerExportMetrics(m *Metrics, name string, stats func() ship.Stats) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"sink": name}
	counter := func(n, help string, f func(ship.Stats) float64) {
		m.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: n, Help: help, ConstLabels: labels},
			func() float64 { return f(stats()) }))
	}
	gauge := func(n, help string, f func(ship.Stats) float64) {
		m.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: n, Help: help, ConstLabels: labels},
			func() float64 { return f(stats()) }))
	}
	counter("backstage_mcp_audit_export_records_total", "Audit records a sink acknowledged since start (a resent record counts again).",
		func(s ship.Stats) float64 { return float64(s.Sent) })
	counter("backstage_mcp_audit_export_failures_total", "Failed attempts to send a batch of audit records to a sink.",
		func(s ship.Stats) float64 { return float64(s.Failures) })
	counter("backstage_mcp_audit_export_gaps_total", "Runs of audit records deleted from disk before a sink got them.",
		func(s ship.Stats) float64 { return float64(s.Gaps) })
	gauge("backstage_mcp_audit_export_lag_records", "Audit records written but not yet acknowledged by a sink.",
		func(s ship.Stats) float64 { return float64(s.Lag) })
	gauge("backstage_mcp_audit_export_lag_seconds", "Age of the last audit record a sink acknowledged, while records are waiting; 0 when it is up to date.",
		func(s ship.Stats) float64 {
			if s.Lag == 0 || s.AckedTime.IsZero() {
				return 0
			}
			return time.Since(s.AckedTime).Seconds()
		})
	gauge("backstage_mcp_audit_export_up", "1 when a sink's last send succeeded (or none failed yet), 0 while it fails.",
		func(s ship.Stats) float64 {
			if s.Failing {
				return 0
			}
			return 1
		})
}
