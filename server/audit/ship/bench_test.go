package ship

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// benchSinks are the sinks measured by BenchmarkExport, each against the
// receiver the tests use.
func benchSinks(b *testing.B) map[string]func(*testing.B) SinkConfig {
	return map[string]func(*testing.B) SinkConfig{
		"stdout": func(*testing.B) SinkConfig { return SinkConfig{Type: SinkStdout} },
		"syslog-tcp": func(b *testing.B) SinkConfig {
			rs := startRsyslog(b, nil)
			return SinkConfig{Type: SinkSyslog, Address: rs.addr()}
		},
		"otlp-collector": func(b *testing.B) SinkConfig {
			col := startCollector(b)
			return SinkConfig{Type: SinkOTLP, URL: fmt.Sprintf("http://127.0.0.1:%d/v1/logs", col.port)}
		},
		"otlp": func(b *testing.B) SinkConfig {
			srv := httptest.NewServer(&otlpReceiver{})
			b.Cleanup(srv.Close)
			return SinkConfig{Type: SinkOTLP, URL: srv.URL + "/v1/logs"}
		},
		"hec-ack": func(b *testing.B) SinkConfig {
			srv := httptest.NewServer(newHECReceiver("t", true, 0))
			b.Cleanup(srv.Close)
			tok := filepath.Join(b.TempDir(), "tok")
			_ = os.WriteFile(tok, []byte("t"), 0o600)
			return SinkConfig{Type: SinkHEC, URL: srv.URL, TokenFile: tok, Ack: true}
		},
	}
}

// BenchmarkExport measures how fast each sink ships a trail already on
// disk, in OCSF: records per second until the last is acknowledged.
//
//	go test -run '^$' -bench Export -benchtime 20000x ./server/audit/ship/
func BenchmarkExport(b *testing.B) {
	for _, name := range []string{"stdout", "syslog-tcp", "otlp", "otlp-collector", "hec-ack"} {
		b.Run(name, func(b *testing.B) {
			if name == "syslog-tcp" {
				if _, err := os.Stat("/usr/sbin/rsyslogd"); err != nil {
					b.Skip("rsyslogd not installed")
				}
			}
			if _, err := exec.LookPath("otelcol-test"); err != nil && name == "otlp-collector" {
				b.Skip("otelcol-test not built (make test-tools)")
			}
			sc := benchSinks(b)[name](b)
			tr := newTrail(b, -1)
			tr.append(b, b.N)
			cfg := Config{Sinks: []SinkConfig{sc}, PollInterval: time.Millisecond}
			b.ResetTimer()
			start := time.Now()
			e, err := Start(context.Background(), Options{Path: tr.path, Format: FormatOCSF, Config: cfg, Stdout: io.Discard, Host: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			for e.Stats()[0].AckedSeq < uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			el := time.Since(start)
			b.StopTimer()
			_ = e.Close(context.Background())
			b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendLatency measures what a tool call waits for its record
// (audit.Append, synced on every record as by default) with and without an
// export running beside it: p50 and p99 per Append.
//
//	go test -run '^$' -bench AppendLatency -benchtime 3000x ./server/audit/ship/
func BenchmarkAppendLatency(b *testing.B) {
	for _, export := range []bool{false, true} {
		name := "no-export"
		if export {
			name = "export-hec-ack"
		}
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "audit.log")
			l, err := audit.Open(audit.Config{Path: path, Sync: audit.SyncEvery})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if export {
				sc := benchSinks(b)["hec-ack"](b)
				e, err := Start(context.Background(), Options{Path: path, Format: FormatOCSF,
					Config: Config{Sinks: []SinkConfig{sc}, PollInterval: time.Millisecond}})
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = e.Close(context.Background()) }()
			}
			lat := make([]time.Duration, 0, b.N)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if err := l.Append(ctx, callRecord(i)); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
