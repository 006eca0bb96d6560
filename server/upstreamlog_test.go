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
	if !strings.Contains(got, `msg="request to Backstage failed" op=query duration_ms=10000 error=timeout`) {
		t.Errorf("timeout: got %q", got)
	}
	buf.Reset()

	obs("get", 0, time.Millisecond, &url.Error{Op: "Get", URL: secretURL, Err: fmt.Errorf("connection refused")})
	got += buf.String()
	if !strings.Contains(buf.String(), `op=get duration_ms=1 error=transport`) {
		t.Errorf("transport failure: got %q", buf.String())
	}
	if strings.Contains(got, "sk_live") || strings.Contains(got, "by-query") {
		t.Errorf("the log names the request URL: %q", got)
	}
}
