package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

func getReadyz(t *testing.T, h http.Handler) (int, readyBody) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var b readyBody
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("readyz body: %v", err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("readyz Content-Type %q", ct)
	}
	return rec.Code, b
}

// TestReadyzPerDependency: /readyz names every dependency with its state
// and scope; a failing check of this replica makes the answer 503, a
// failing shared dependency is reported with the answer still 200; no
// detail leaks the underlying error text.
func TestReadyzPerDependency(t *testing.T) {
	secretErr := errors.New("dial tcp 10.0.0.7:7007: token=abc123 refused")
	base := map[string]string{"audit": "ok", "shutdown": "ok", "backstage": "ok", "catalog": "ok"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		mutate   func(s *Server)
		wantCode int
		want     map[string]string // dependency → status
	}{
		{"all ready", nil, 200, base},
		{"backstage down is shared", func(s *Server) { s.opts.Ready = func(context.Context) error { return secretErr } },
			200, with("backstage", "fail")},
		{"audit failing", func(s *Server) { _ = s.opts.Audit.Close() }, 503, with("audit", "fail")},
		{"shutting down", func(s *Server) { s.ready.draining.Store(true) }, 503, with("shutdown", "fail")},
		{"redis failing is shared", func(s *Server) {
			s.opts.ReadyChecks = []ReadyCheck{{Name: "redis", Check: func(context.Context) (string, error) { return "unreachable", secretErr }}}
		}, 200, with("redis", "fail")},
		{"replica check failing", func(s *Server) {
			s.opts.ReadyChecks = []ReadyCheck{{Name: "disk", Replica: true, Check: func(context.Context) (string, error) { return "full", secretErr }}}
		}, 503, with("disk", "fail")},
		{"extra check ready", func(s *Server) {
			s.opts.ReadyChecks = []ReadyCheck{{Name: "redis", Check: func(context.Context) (string, error) { return "PONG", nil }}}
		}, 200, with("redis", "ok")},
	}
	scopes := map[string]string{"audit": ScopeReplica, "shutdown": ScopeReplica, "disk": ScopeReplica,
		"backstage": ScopeShared, "catalog": ScopeShared, "redis": ScopeShared}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newPassthroughServer(t, "")
			if tc.mutate != nil {
				tc.mutate(s)
			}
			code, b := getReadyz(t, s.AdminHandler())
			if code != tc.wantCode {
				t.Fatalf("code %d, want %d; %+v", code, tc.wantCode, b)
			}
			wantStatus := "ok"
			if tc.wantCode != 200 {
				wantStatus = "unavailable"
			}
			if b.Status != wantStatus || len(b.Checks) != len(tc.want) {
				t.Fatalf("body %+v, want status %s and checks %v", b, wantStatus, tc.want)
			}
			for dep, st := range tc.want {
				if b.Checks[dep].Status != st || b.Checks[dep].Scope != scopes[dep] {
					t.Errorf("%s = %+v, want %s in scope %s", dep, b.Checks[dep], st, scopes[dep])
				}
				if strings.Contains(b.Checks[dep].Detail, "abc123") || strings.Contains(b.Checks[dep].Detail, "10.0.0.7") {
					t.Errorf("%s detail leaks the error: %q", dep, b.Checks[dep].Detail)
				}
			}
			// The agents' listener: the same code, the status alone.
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.wantCode || strings.TrimSpace(rec.Body.String()) != `{"status":"`+wantStatus+`"}` {
				t.Errorf("agents' /readyz = %d %s", rec.Code, rec.Body.String())
			}
		})
	}
}

// TestReadyzSlowDependency: a dependency that does not answer is reported
// as failing once the bound passes and the admin probe never hangs; the
// agents' /readyz (the load balancer's) does not wait for shared
// dependencies at all, and a slow check of the replica's own fails it.
func TestReadyzSlowDependency(t *testing.T) {
	s := newPassthroughServer(t, "")
	slow := func(ctx context.Context) (string, error) {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // answers only after the deadline
		return "", ctx.Err()
	}
	s.opts.ReadyChecks = []ReadyCheck{{Name: "slow", Check: slow}}
	start := time.Now()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if el := time.Since(start); rec.Code != 200 || el > time.Second {
		t.Fatalf("agents' /readyz with a slow shared dependency = %d in %s", rec.Code, el)
	}
	start = time.Now()
	code, b := getReadyz(t, s.AdminHandler())
	if el := time.Since(start); el > readyTimeout+time.Second {
		t.Fatalf("readyz took %s", el)
	}
	if code != 200 || b.Checks["slow"].Status != "fail" || b.Checks["backstage"].Status != "ok" {
		t.Fatalf("readyz = %d %+v", code, b)
	}
	s.opts.ReadyChecks = []ReadyCheck{{Name: "slow", Replica: true, Check: slow}}
	if code, b := getReadyz(t, s.AdminHandler()); code != 503 || b.Checks["slow"].Status != "fail" {
		t.Fatalf("readyz with a slow replica check = %d %+v", code, b)
	}
}

// TestReadinessReprobesOnItsOwn: a failed check is run again by the
// background prober, with no request reaching the server, and its metric
// and the answer follow it back to ready.
func TestReadinessReprobesOnItsOwn(t *testing.T) {
	s := newDemoServer(t)
	var failing atomic.Bool
	var runs atomic.Int64
	failing.Store(true)
	s.opts.ReadyChecks = []ReadyCheck{{Name: "disk", Replica: true, Check: func(context.Context) (string, error) {
		runs.Add(1)
		if failing.Load() {
			return "full", errors.New("no space left on device")
		}
		return "room", nil
	}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.probeReadiness(ctx)
	waitFor := func(what string, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s: not within 5s (%d runs)", what, runs.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitFor("first round", func() bool {
		return metricValue(t, s, `backstage_mcp_ready_check{check="disk",scope="replica"}`) == "0"
	})
	n := runs.Load()
	waitFor("re-probe while failing", func() bool { return runs.Load() >= n+2 })
	failing.Store(false)
	took := waitFor("ready again", func() bool {
		return metricValue(t, s, `backstage_mcp_ready_check{check="disk",scope="replica"}`) == "1"
	})
	if took > readyRetryInterval+time.Second {
		t.Errorf("ready again after %s, want within %s", took, readyRetryInterval+time.Second)
	}
	if code, _ := getReadyz(t, s.AdminHandler()); code != 200 {
		t.Fatalf("readyz after recovery = %d", code)
	}
	if s.ready.round.Load() == 0 || s.wedged() != "" {
		t.Fatalf("prober round %d, wedged %q", s.ready.round.Load(), s.wedged())
	}
}

// metricValue is the value of one series on the admin listener's
// /metrics, or "".
func metricValue(t *testing.T, s *Server, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// stuckWriter blocks writes while stuck is open; a failing one fails Sync.
type stuckWriter struct {
	entered  chan struct{}
	stuck    chan struct{}
	once     sync.Once
	failSync bool
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	if w.stuck != nil {
		w.once.Do(func() { close(w.entered) })
		<-w.stuck
	}
	return len(p), nil
}

func (w *stuckWriter) Sync() error {
	if w.failSync {
		return errors.New("input/output error")
	}
	return nil
}

// TestHealthzWedged: /healthz fails while the audit writer is stuck in one
// write beyond the bound and after a failed fsync (only a restart reopens
// the log); it is 200 again once the write returns.
func TestHealthzWedged(t *testing.T) {
	health := func(s *Server) (int, string, int, string) {
		a, b := httptest.NewRecorder(), httptest.NewRecorder()
		s.AdminHandler().ServeHTTP(a, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		s.Handler().ServeHTTP(b, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return a.Code, a.Body.String(), b.Code, strings.TrimSpace(b.Body.String())
	}
	t.Run("audit writer stuck", func(t *testing.T) {
		s := newDemoServer(t)
		w := &stuckWriter{entered: make(chan struct{}), stuck: make(chan struct{})}
		l, err := audit.OpenWriter(w, audit.Config{})
		if err != nil {
			t.Fatal(err)
		}
		s.opts.Audit = l
		s.ready.wedgeAfter = 50 * time.Millisecond
		if code, _, _, _ := health(s); code != 200 {
			t.Fatalf("healthz before = %d", code)
		}
		done := make(chan error, 1)
		go func() { done <- l.Append(context.Background(), &audit.Record{Type: audit.TypeCall, Tool: "t"}) }()
		<-w.entered
		time.Sleep(100 * time.Millisecond)
		code, body, agentCode, agentBody := health(s)
		if code != 503 || !strings.Contains(body, "audit writer stuck") || agentCode != 503 || agentBody != `{"status":"wedged"}` {
			t.Fatalf("healthz with the writer stuck = %d %s / agents' %d %s", code, body, agentCode, agentBody)
		}
		close(w.stuck)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if code, body, _, _ := health(s); code != 200 {
			t.Fatalf("healthz after the write returned = %d %s", code, body)
		}
		_ = l.Close()
	})
	t.Run("failed fsync", func(t *testing.T) {
		s := newDemoServer(t)
		w := &stuckWriter{}
		l, err := audit.OpenWriter(w, audit.Config{Sync: audit.SyncEvery})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s.opts.Audit = l
		w.failSync = true
		if err := l.Append(context.Background(), &audit.Record{Type: audit.TypeCall, Tool: "t"}); err == nil {
			t.Fatal("append with a failing fsync succeeded")
		}
		if code, body, _, _ := health(s); code != 503 || !strings.Contains(body, "fsync failed") {
			t.Fatalf("healthz after a failed fsync = %d %s", code, body)
		}
	})
}

// TestReadyzIdentityProvider: with token verification on, /readyz checks
// that the identity provider's signing keys are at hand.
func TestReadyzIdentityProvider(t *testing.T) {
	idp := newTestIdP(t)
	env := startAuthServer(t, idp, authSetup{})
	h := env.s.AdminHandler()
	code, b := getReadyz(t, h)
	if code != 200 || b.Checks["identity"].Status != "ok" || !strings.Contains(b.Checks["identity"].Detail, "1 keys") {
		t.Fatalf("readyz with the IdP up = %d %+v", code, b)
	}
	idp.Close()
	// Keys fetched before the outage stay usable: still ready.
	if code, b := getReadyz(t, h); code != 200 || b.Checks["identity"].Status != "ok" {
		t.Fatalf("readyz with the IdP down but keys cached = %d %+v", code, b)
	}
}

func TestReadyzIdentityProviderDownFromStart(t *testing.T) {
	idp := newTestIdP(t)
	env := startAuthServer(t, idp, authSetup{})
	idp.Close()
	// The identity provider is shared: reported, not a 503 for every replica.
	code, b := getReadyz(t, env.s.AdminHandler())
	if code != 200 || b.Checks["identity"].Status != "fail" || b.Checks["identity"].Scope != ScopeShared {
		t.Fatalf("readyz with the IdP unreachable and no keys = %d %+v", code, b)
	}
}
