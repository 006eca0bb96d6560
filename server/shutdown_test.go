package server

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestGracefulShutdownWithOpenStream: cancelling the serve context ends
// the server promptly and cleanly even while a client holds an SSE stream.
func TestGracefulShutdownWithOpenStream(t *testing.T) {
	s := newDemoServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.ServeHTTP(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	addr := <-addrc
	base := "http://" + addr + "/mcp"

	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base, strings.NewReader(init))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("no session id")
	}
	get, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, base, nil)
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set("Mcp-Session-Id", sid)
	stream, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	go func() { _, _ = bufio.NewReader(stream.Body).ReadString(0) }()

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeHTTP: %v", err)
		}
	case <-time.After(s.cfg.Server.ShutdownTimeout + 5*time.Second):
		t.Fatal("ServeHTTP did not return after the context was cancelled")
	}
	if d := time.Since(start); d >= s.cfg.Server.ShutdownTimeout {
		t.Errorf("shutdown took %s: the open stream held it to the deadline", d)
	}
}
