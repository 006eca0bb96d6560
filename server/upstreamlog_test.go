package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// TestUpstreamObserverLogs checks that a failed or slow request to
// Backstage is logged with its operation, status and duration, that a
// transport failure is logged by class only (the URL carries the caller's
// filter values), and that ordinary requests are not logged.
func TestUpstreamObserverLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	obs := upstreamObserver(NewMetrics(), log, 2*time.Second)

	obs("query", 200, 40*time.Millisecond, nil)
	if buf.Len() != 0 {
		t.Fatalf("a fast request was logged: %s", buf.String())
	}

	obs("query", 200, 3*time.Second, nil)
	if got := buf.String(); !strings.Contains(got, `msg="slow request to Backstage" op=query status=200 duration_ms=3000`) {
		t.Errorf("slow request: got %q", got)
	}
	buf.Reset()

	secretURL := "http://backstage/api/catalog/entities/by-query?filter=metadata.name%3Dsk_live_hidden"
	timeout := &url.Error{Op: "Get", URL: secretURL, Err: context.DeadlineExceeded}
	obs("query", 0, 10*time.Second, timeout)
	got := buf.String()
	if !strings.Contains(got, `msg="request to Backstage failed" op=query status=0 duration_ms=10000 cause=timeout`) {
		t.Errorf("timeout: got %q", got)
	}
	buf.Reset()

	obs("get", 0, time.Millisecond, &url.Error{Op: "Get", URL: secretURL, Err: fmt.Errorf("connection refused")})
	got += buf.String()
	if !strings.Contains(buf.String(), `op=get status=0 duration_ms=1 cause=transport`) {
		t.Errorf("transport failure: got %q", buf.String())
	}
	buf.Reset()

	// An HTTP failure is logged with its status: the cause of the
	// "Backstage is unavailable" the caller got. A 404 is an answer.
	obs("get", 502, 5*time.Millisecond, &catalog.UpstreamError{Kind: catalog.ErrUnavailable, Status: 502, Op: "get entity"})
	obs("get", 404, 5*time.Millisecond, &catalog.UpstreamError{Kind: catalog.ErrNotFound, Status: 404, Op: "get entity"})
	if s := buf.String(); !strings.Contains(s, `op=get status=502 duration_ms=5 cause="HTTP 502 from Backstage"`) || strings.Contains(s, "status=404") {
		t.Errorf("HTTP failures: got %q", s)
	}
	got += buf.String()
	if strings.Contains(got, "sk_live") || strings.Contains(got, "by-query") {
		t.Errorf("the log names the request URL: %q", got)
	}
}
