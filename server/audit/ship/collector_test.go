package ship

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/testtools"
)

// otelcol is a real OpenTelemetry Collector (testdata/otelcol: the otlp
// receiver and the file exporter, from the collector's Go modules), which
// writes every request it accepted as a line of OTLP JSON.
type otelcol struct {
	bin, conf, out, dir string
	port                int
	cmd                 *exec.Cmd
}

func startCollector(t testing.TB) *otelcol {
	t.Helper()
	bin := testtools.Need(t, "otelcol-test", "built by `make test-tools` from testdata/otelcol")
	c := &otelcol{bin: bin, dir: t.TempDir(), port: freePort(t)}
	c.out = filepath.Join(c.dir, "logs.jsonl")
	c.conf = filepath.Join(c.dir, "otelcol.yaml")
	conf := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  file:
    path: %s
    append: true
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file]
`, c.port, c.out)
	if err := os.WriteFile(c.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start(t)
	t.Cleanup(c.stop)
	return c
}

func (c *otelcol) start(t testing.TB) {
	t.Helper()
	c.cmd = exec.Command(c.bin, "--config", "file:"+c.conf)
	logf, _ := os.Create(filepath.Join(c.dir, "otelcol.log"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.port), 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(c.dir, "otelcol.log"))
			t.Fatalf("the collector did not listen: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *otelcol) stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	c.cmd = nil
}

// OTLP JSON, as far as the test reads it.
type (
	otlpJSONValue struct {
		StringValue *string `json:"stringValue"`
		IntValue    *string `json:"intValue"`
		KvlistValue *struct {
			Values []otlpJSONKV `json:"values"`
		} `json:"kvlistValue"`
	}
	otlpJSONKV struct {
		Key   string        `json:"key"`
		Value otlpJSONValue `json:"value"`
	}
	otlpJSONRecord struct {
		SeverityText string        `json:"severityText"`
		EventName    string        `json:"eventName"`
		TraceID      string        `json:"traceId"`
		Body         otlpJSONValue `json:"body"`
		Attributes   []otlpJSONKV  `json:"attributes"`
	}
	otlpJSONLine struct {
		ResourceLogs []struct {
			Resource struct {
				Attributes []otlpJSONKV `json:"attributes"`
			} `json:"resource"`
			ScopeLogs []struct {
				LogRecords []otlpJSONRecord `json:"logRecords"`
			} `json:"scopeLogs"`
		} `json:"resourceLogs"`
	}
)

func jsonKV(list []otlpJSONKV, key string) *otlpJSONValue {
	for i := range list {
		if list[i].Key == key {
			return &list[i].Value
		}
	}
	return &otlpJSONValue{}
}

// records returns the log records the collector wrote, with its resources.
func (c *otelcol) records(t *testing.T) ([]otlpJSONRecord, [][]otlpJSONKV) {
	t.Helper()
	f, err := os.Open(c.out)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	var recs []otlpJSONRecord
	var res [][]otlpJSONKV
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 8<<20), 8<<20)
	for sc.Scan() {
		var l otlpJSONLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue // a line still being written
		}
		for _, rl := range l.ResourceLogs {
			res = append(res, rl.Resource.Attributes)
			for _, sl := range rl.ScopeLogs {
				recs = append(recs, sl.LogRecords...)
			}
		}
	}
	return recs, res
}

func (c *otelcol) seqs(t *testing.T) []uint64 {
	recs, _ := c.records(t)
	var out []uint64
	for _, r := range recs {
		if v := jsonKV(r.Attributes, "audit.seq").IntValue; v != nil {
			n, _ := strconv.ParseUint(*v, 10, 64)
			out = append(out, n)
		}
	}
	return out
}

func TestOTLPToOpenTelemetryCollector(t *testing.T) {
	col := startCollector(t)
	tr := newTrail(t, 16<<10)
	tr.append(t, 40)
	e := runExporter(t, tr.path, FormatECS, SinkConfig{Type: SinkOTLP, URL: fmt.Sprintf("http://127.0.0.1:%d/v1/logs", col.port)})
	waitFor(t, "40 records in the collector", 20*time.Second, func() bool { return len(col.seqs(t)) >= 40 })
	checkSeqs(t, col.seqs(t), 40)
	recs, res := col.records(t)
	r := recs[0]
	if r.EventName != "backstage_mcp.audit.call" || r.SeverityText != "INFO" || r.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("record: %+v", r)
	}
	ev := jsonKV(r.Body.KvlistValue.Values, "event").KvlistValue
	if ev == nil || *jsonKV(ev.Values, "action").StringValue != "catalog_get_entity" {
		t.Fatalf("body: %+v", r.Body)
	}
	if v := jsonKV(res[0], "service.name").StringValue; v == nil || *v != "backstage-mcp" {
		t.Fatalf("resource: %+v", res[0])
	}

	// The collector stops and comes back: every record still arrives.
	col.stop()
	tr.append(t, 30)
	waitFor(t, "a failed export", 10*time.Second, func() bool { return e.Stats()[0].Failures > 0 })
	col.start(t)
	waitFor(t, "70 records", 30*time.Second, func() bool { return len(col.seqs(t)) >= 70 })
	checkSeqs(t, col.seqs(t), 70)
}
