package ship

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hecReceiver behaves as Splunk's HTTP event collector with indexer
// acknowledgement: events arrive on /services/collector/event with a
// channel, each request gets an ackId, and /services/collector/ack reports
// an id indexed from its second poll on. The ack of request number lose
// (from 1) never comes, as when an indexer dies before indexing.
type hecReceiver struct {
	mu      sync.Mutex
	token   string
	ack     bool // the token has indexer acknowledgement on
	lose    int
	nextID  int
	polls   map[int]int
	pending map[int][]map[string]any
	indexed []map[string]any
	posts   int
	badAuth int
}

func newHECReceiver(token string, ack bool, lose int) *hecReceiver {
	return &hecReceiver{token: token, ack: ack, lose: lose, polls: map[int]int{}, pending: map[int][]map[string]any{}}
}

func hecAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *hecReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Header.Get("Authorization") != "Splunk "+h.token {
		h.badAuth++
		hecAnswer(w, http.StatusUnauthorized, map[string]any{"text": "Invalid token", "code": 4})
		return
	}
	channel := r.Header.Get("X-Splunk-Request-Channel")
	if channel == "" && h.ack {
		hecAnswer(w, http.StatusBadRequest, map[string]any{"text": "Data channel is missing", "code": 10})
		return
	}
	switch r.URL.Path {
	case "/services/collector/event":
		h.posts++
		dec := json.NewDecoder(r.Body)
		var evs []map[string]any
		for {
			var ev map[string]any
			if err := dec.Decode(&ev); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				hecAnswer(w, http.StatusBadRequest, map[string]any{"text": "Invalid data format", "code": 6})
				return
			}
			if _, ok := ev["event"].(map[string]any); !ok || ev["sourcetype"] != DefaultSourceType {
				hecAnswer(w, http.StatusBadRequest, map[string]any{"text": "Event field is required", "code": 12})
				return
			}
			evs = append(evs, ev)
		}
		id := h.nextID
		h.nextID++
		if !h.ack {
			h.indexed = append(h.indexed, evs...)
			hecAnswer(w, http.StatusOK, map[string]any{"text": "Success", "code": 0})
			return
		}
		h.pending[id] = evs
		hecAnswer(w, http.StatusOK, map[string]any{"text": "Success", "code": 0, "ackId": id})
	case "/services/collector/ack":
		if r.URL.Query().Get("channel") != channel {
			hecAnswer(w, http.StatusBadRequest, map[string]any{"text": "channel mismatch", "code": 10})
			return
		}
		var req struct {
			Acks []int `json:"acks"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			hecAnswer(w, http.StatusBadRequest, map[string]any{"text": "Invalid data format", "code": 6})
			return
		}
		acks := map[string]bool{}
		for _, id := range req.Acks {
			h.polls[id]++
			done := h.polls[id] >= 2 && id+1 != h.lose
			if evs, ok := h.pending[id]; ok && done {
				h.indexed = append(h.indexed, evs...)
				delete(h.pending, id)
			}
			acks[strconv.Itoa(id)] = done
		}
		hecAnswer(w, http.StatusOK, map[string]any{"acks": acks})
	default:
		http.NotFound(w, r)
	}
}

func (h *hecReceiver) seqs(t *testing.T) []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []uint64
	for _, ev := range h.indexed {
		out = append(out, uint64(get(t, ev, "event", "event", "sequence").(float64)))
	}
	return out
}

func TestHECWithAcknowledgement(t *testing.T) {
	rcv := newHECReceiver("hec-secret-token", true, 1)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	tokenFile := t.TempDir() + "/hec-token"
	if err := os.WriteFile(tokenFile, []byte("hec-secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := newTrail(t, -1)
	tr.append(t, 30)
	cfg := fastCfg
	cfg.SendTimeout = 500 * time.Millisecond // the lost ack times out quickly
	cfg.Sinks = []SinkConfig{{Type: SinkHEC, URL: srv.URL, TokenFile: tokenFile, Ack: true, Index: "audit"}}
	var logs strings.Builder
	e, err := Start(context.Background(), Options{Path: tr.path, Format: FormatECS, Config: cfg, Host: "replica-1", Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close(context.Background()) }()
	waitFor(t, "30 indexed events", 10*time.Second, func() bool { return len(rcv.seqs(t)) >= 30 && e.Stats()[0].AckedSeq == 30 })
	checkSeqs(t, rcv.seqs(t), 30)
	if st := e.Stats()[0]; st.Failures == 0 {
		t.Fatal("the lost acknowledgement did not count as a failure")
	}
	rcv.mu.Lock()
	ev := rcv.indexed[0]
	rcv.mu.Unlock()
	if ev["index"] != "audit" || ev["host"] != "replica-1" || ev["source"] != "backstage-mcp" {
		t.Fatalf("event envelope: %v", ev)
	}
	if _, ok := ev["time"].(float64); !ok {
		t.Fatalf("time is not a number: %v", ev["time"])
	}
	if strings.Contains(logs.String(), "hec-secret-token") {
		t.Fatal("the token appeared in the logs")
	}
	if !strings.Contains(logs.String(), "not acknowledged") {
		t.Fatalf("the lost ack was not logged: %s", logs.String())
	}
}

func TestHECWrongTokenThenRotated(t *testing.T) {
	rcv := newHECReceiver("right", false, 0)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	tokenFile := t.TempDir() + "/hec-token"
	if err := os.WriteFile(tokenFile, []byte("wrong-token-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := newTrail(t, -1)
	tr.append(t, 3)
	cfg := fastCfg
	cfg.Sinks = []SinkConfig{{Type: SinkHEC, URL: srv.URL, TokenFile: tokenFile}}
	var logs strings.Builder
	e, err := Start(context.Background(), Options{Path: tr.path, Format: FormatNative, Config: cfg, Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failures", 5*time.Second, func() bool { return e.Stats()[0].Failures >= 2 })
	if n := len(rcv.seqs(t)); n != 0 {
		t.Fatalf("%d events accepted with a wrong token", n)
	}
	// A rotated token file is read again: the next batch gets through.
	if err := os.WriteFile(tokenFile, []byte("right"), 0o600); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.token = "right"
	rcv.mu.Unlock()
	waitFor(t, "delivery after the token rotation", 5*time.Second, func() bool { return e.Stats()[0].AckedSeq == 3 })
	_ = e.Close(context.Background())
	if strings.Contains(logs.String(), "wrong-token-value") {
		t.Fatal("the token appeared in the logs")
	}
	if !strings.Contains(logs.String(), "401") {
		t.Fatalf("the refusal was not logged: %s", logs.String())
	}
}

// TestHungReceiverNeverDelaysAppends: a collector that accepts the
// connection and never answers holds up its shipper, not the writer.
func TestHungReceiverNeverDelaysAppends(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	tokenFile := t.TempDir() + "/tok"
	if err := os.WriteFile(tokenFile, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := newTrail(t, 8<<10)
	cfg := fastCfg
	cfg.SendTimeout = time.Minute
	cfg.Sinks = []SinkConfig{{Type: SinkHEC, URL: srv.URL, TokenFile: tokenFile}}
	e, err := Start(context.Background(), Options{Path: tr.path, Config: cfg, Head: func() uint64 { s, _ := tr.log.Head(); return s }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = e.Close(ctx)
	}()
	tr.append(t, 1)
	waitFor(t, "the shipper to be stuck in a send", 5*time.Second, func() bool { return e.Stats()[0].Lag == 1 })
	start := time.Now()
	tr.append(t, 300)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("300 appends took %v beside a hung receiver", d)
	}
	if st := e.Stats()[0]; st.Lag != 301 || st.AckedSeq != 0 {
		t.Fatalf("stats %+v: want all 301 records waiting", st)
	}
}
