package ship

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP logs endpoint that decodes requests with
// the official protobuf types; it answers 503 to the first fail requests.
type otlpReceiver struct {
	mu       sync.Mutex
	fail     int
	requests int
	auth     []string
	res      []*commonpb.KeyValue
	scope    string
	recs     []*logspb.LogRecord
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want protobuf on /v1/logs", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collogspb.ExportLogsServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests++
	o.auth = append(o.auth, r.Header.Get("Authorization"))
	if o.fail > 0 {
		o.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	for _, rl := range req.ResourceLogs {
		o.res = rl.GetResource().GetAttributes()
		for _, sl := range rl.ScopeLogs {
			o.scope = sl.GetScope().GetName()
			o.recs = append(o.recs, sl.LogRecords...)
		}
	}
	out, _ := proto.Marshal(&collogspb.ExportLogsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (o *otlpReceiver) records() []*logspb.LogRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*logspb.LogRecord(nil), o.recs...)
}

// kv finds key in a list of attributes.
func kv(list []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, a := range list {
		if a.Key == key {
			return a.Value
		}
	}
	return nil
}

func TestOTLPLogsToReceiver(t *testing.T) {
	rcv := &otlpReceiver{fail: 2}
	srv := httptest.NewTLSServer(rcv)
	defer srv.Close()
	// The receiver's certificate, as a CA file the sink trusts.
	caFile := t.TempDir() + "/ca.pem"
	writePEM(t, caFile, srv.Certificate().Raw)
	authFile := t.TempDir() + "/auth"
	if err := os.WriteFile(authFile, []byte("Bearer otlp-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tr := newTrail(t, -1)
	tr.append(t, 20)
	e := runExporter(t, tr.path, FormatOCSF, SinkConfig{
		Type: SinkOTLP, URL: srv.URL + "/v1/logs",
		TLS:         TLSConfig{CAFile: caFile},
		HeaderFiles: map[string]string{"Authorization": authFile},
	})
	waitFor(t, "20 log records", 10*time.Second, func() bool { return len(rcv.records()) >= 20 })
	if st := e.Stats()[0]; st.Failures != 2 {
		t.Fatalf("failures %d, want the 2 refused requests", st.Failures)
	}
	recs := rcv.records()
	var seqs []uint64
	for _, r := range recs {
		seqs = append(seqs, uint64(kv(r.Attributes, "audit.seq").GetIntValue()))
	}
	checkSeqs(t, seqs, 20)
	r := recs[0]
	body := r.Body.GetKvlistValue().GetValues()
	if kv(body, "class_uid").GetIntValue() != 6003 {
		t.Fatalf("body class_uid: %v", kv(body, "class_uid"))
	}
	user := kv(kv(kv(body, "actor").GetKvlistValue().GetValues(), "user").GetKvlistValue().GetValues(), "email_addr")
	if user.GetStringValue() != "jane@example.com" {
		t.Fatalf("actor.user.email_addr: %v", user)
	}
	if r.EventName != "backstage_mcp.audit.call" || r.SeverityText != "INFO" || r.TimeUnixNano == 0 {
		t.Fatalf("record: event %q severity %q time %d", r.EventName, r.SeverityText, r.TimeUnixNano)
	}
	if hex.EncodeToString(r.TraceId) != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace id %x", r.TraceId)
	}
	if kv(rcv.res, "service.name").GetStringValue() != "backstage-mcp" || kv(rcv.res, "service.instance.id").GetStringValue() != "replica-1" {
		t.Fatalf("resource %v", rcv.res)
	}
	for _, a := range rcv.auth {
		if a != "Bearer otlp-secret" {
			t.Fatalf("Authorization header %q", a)
		}
	}
}
