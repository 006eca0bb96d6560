package ship

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// trail is a real audit log in a temporary folder.
type trail struct {
	path string
	log  *audit.Log
}

// newTrail opens an audit log; maxBytes > 0 makes it rotate often.
func newTrail(t testing.TB, maxBytes int64) *trail {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(audit.Config{Path: path, MaxBytes: maxBytes, Sync: audit.SyncNone, Replica: "replica-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return &trail{path: path, log: l}
}

// callRecord is a typical allowed tool call.
func callRecord(i int) *audit.Record {
	return &audit.Record{
		Type: audit.TypeCall, Transport: audit.TransportHTTP, SessionID: "sess-1",
		User:      audit.User{Sub: "00u1", Email: "jane@example.com", Ref: "user:default/jane", Issuer: "https://idp.example.com", TokenID: "jti-1"},
		Agent:     audit.Agent{ClientID: "copilot", Name: "vscode", Version: "1.99"},
		Tool:      "catalog_get_entity",
		Arguments: []byte(fmt.Sprintf(`{"ref":"component:default/svc-%d"}`, i)),
		Decision:  audit.DecisionAllowed, Rule: "role:dev",
		Source: "198.51.100.4", UserAgent: "vscode-mcp/1.99 (linux)",
		Entities:   audit.Entities{Refs: []string{fmt.Sprintf("component:default/svc-%d", i)}, Count: 1},
		Redactions: map[string]int{"aws-access-key": 1},
		DurationMs: 12.5, ResultBytes: 300,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
}

func (tr *trail) append(t testing.TB, n int) {
	t.Helper()
	for i := range n {
		if err := tr.log.Append(context.Background(), callRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// memSink records what it is sent; it fails while fail > 0.
type memSink struct {
	mu     sync.Mutex
	events []Event
	fail   int
	sends  int
}

func (m *memSink) Send(_ context.Context, batch []Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sends++
	if m.fail > 0 {
		m.fail--
		return errors.New("receiver down")
	}
	m.events = append(m.events, batch...)
	return nil
}

func (m *memSink) Close() error { return nil }

func (m *memSink) seqs() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]uint64, len(m.events))
	for i, e := range m.events {
		out[i] = e.Record.Seq
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runShipper runs a shipper in the background; stop cancels it and waits.
func runShipper(t testing.TB, s *Shipper) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, nil) }()
	return func() { cancel(); <-done }
}

// checkSeqs fails unless seqs holds 1..n, each at least once, in order
// of first appearance.
func checkSeqs(t testing.TB, seqs []uint64, n int) {
	t.Helper()
	next := uint64(1)
	for _, s := range seqs {
		switch {
		case s == next:
			next++
		case s < next: // a resend: allowed (at least once)
		default:
			t.Fatalf("seq %d arrived before %d", s, next)
		}
	}
	if next != uint64(n)+1 {
		t.Fatalf("got records 1..%d, want 1..%d", next-1, n)
	}
}

var fastCfg = Config{PollInterval: 5 * time.Millisecond, BatchSize: 7, MaxBackoff: 20 * time.Millisecond}

// syncWriter serialises writes to a strings.Builder.
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func writePEM(t testing.TB, file string, der []byte) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// testLogger logs as text into b (safe for concurrent use).
func testLogger(b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(&syncWriter{w: b}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
