package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// TestStdioSurvivesMalformedInput: garbage lines get JSON-RPC errors and
// the server keeps answering on the same stream; logs never reach stdout.
func TestStdioSurvivesMalformedInput(t *testing.T) {
	s := newDemoServer(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.ServeStdio(ctx, inR, outW); _ = outW.Close() }()
	lines := bufio.NewScanner(outR)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	send := func(msg string) map[string]any {
		t.Helper()
		if _, err := io.WriteString(inW, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		if !lines.Scan() {
			t.Fatalf("no answer to %q: %v", msg, lines.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("stdout is not JSON-RPC: %q", lines.Text())
		}
		return m
	}
	if m := send(`{"jsonrpc":"2.0","id":1,"method":`); m["error"] == nil {
		t.Fatalf("broken JSON: %v", m)
	}
	if m := send(`{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`); m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	if _, err := io.WriteString(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	if m := send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":"not an object"}}`); m["error"] == nil && !strings.Contains(mustJSON(m), "isError") {
		t.Fatalf("bad arguments: %v", m)
	}
	m := send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":"component:default/checkout-service"}}}`)
	if !strings.Contains(mustJSON(m), "Checkout Service") {
		t.Fatalf("after garbage: %v", m)
	}
	_ = inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeStdio: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeStdio did not return after stdin closed")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
