package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's logger and the test
// to use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logField returns the value of the first JSON log line's field key among
// lines whose msg is msg.
func logField(log, msg, key string) string {
	for _, l := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["msg"] != msg {
			continue
		}
		if v, ok := m[key].(string); ok {
			return v
		}
	}
	return ""
}

// TestDemosRunSideBySide: the Quick start leaves an HTTP demo running, and
// an IDE then starts stdio demos (one per window). Each must serve, each
// with an audit trail of its own: before, they shared one locked file and
// every demo after the first exited at once.
func TestDemosRunSideBySide(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	httpLog := &syncBuffer{}
	httpDone := make(chan int, 1)
	go func() {
		httpDone <- run(ctx, []string{"serve", "--demo", "--http", "127.0.0.1:0"}, strings.NewReader(""), io.Discard, httpLog)
	}()
	var url string
	deadline := time.Now().Add(30 * time.Second)
	for url == "" {
		if time.Now().After(deadline) {
			t.Fatalf("HTTP demo not ready after 30s; log:\n%s", httpLog)
		}
		select {
		case code := <-httpDone:
			t.Fatalf("HTTP demo exited with %d; log:\n%s", code, httpLog)
		case <-time.After(20 * time.Millisecond):
		}
		url = logField(httpLog.String(), "ready", "url")
	}

	// Two stdio demos while the HTTP demo runs.
	type stdioDemo struct {
		in   *io.PipeWriter
		out  *bufio.Reader
		log  *syncBuffer
		done chan int
	}
	var demos []stdioDemo
	for range 2 {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		d := stdioDemo{in: inW, out: bufio.NewReader(outR), log: &syncBuffer{}, done: make(chan int, 1)}
		go func() {
			d.done <- run(ctx, []string{"serve", "--demo", "--stdio"}, inR, outW, d.log)
			_ = inR.CloseWithError(io.ErrClosedPipe) // a demo that exited reads nothing more
			_ = outW.Close()
		}()
		demos = append(demos, d)
	}
	for i, d := range demos {
		for _, msg := range []string{
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`,
		} {
			if _, err := io.WriteString(d.in, msg+"\n"); err != nil {
				t.Fatalf("stdio demo %d: write: %v; log:\n%s", i, err, d.log)
			}
			line, err := d.out.ReadString('\n')
			if err != nil {
				t.Fatalf("stdio demo %d: no answer to %s: %v; log:\n%s", i, msg, err, d.log)
			}
			if strings.Contains(msg, "whoami") && !strings.Contains(line, "amelia.hart") {
				t.Errorf("stdio demo %d: whoami answered %s", i, line)
			}
		}
	}

	// The HTTP demo still answers a tool call.
	post := func(sid, body string) (*http.Response, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp, string(b)
	}
	resp, body := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("HTTP demo initialize: %d %s", resp.StatusCode, body)
	}
	post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if _, body := post(sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`); !strings.Contains(body, "amelia.hart") {
		t.Errorf("HTTP demo whoami answered %s", body)
	}

	// Three processes, three audit files, each holding its own records.
	for _, d := range demos {
		_ = d.in.Close()
		select {
		case code := <-d.done:
			if code != 0 {
				t.Errorf("stdio demo exited with %d; log:\n%s", code, d.log)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("stdio demo did not exit after its stdin closed")
		}
	}
	cancel()
	if code := <-httpDone; code != 0 {
		t.Errorf("HTTP demo exited with %d; log:\n%s", code, httpLog)
	}
	paths := map[string]bool{}
	for _, log := range []string{httpLog.String(), demos[0].log.String(), demos[1].log.String()} {
		p := logField(log, "audit trail", "path")
		if p == "" {
			t.Fatalf("no audit path logged in:\n%s", log)
		}
		if filepath.Dir(filepath.Dir(p)) != filepath.Join(os.TempDir(), "backstage-mcp-demo") {
			t.Errorf("demo audit trail %s is not under $TMPDIR/backstage-mcp-demo/", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`"whoami"`)) {
			t.Errorf("%s holds no record of the whoami call:\n%s", p, data)
		}
		paths[p] = true
	}
	if len(paths) != 3 {
		t.Errorf("audit paths %v: want three distinct files", paths)
	}
}
