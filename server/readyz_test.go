package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

// TestReadyzPerDependency: /readyz names every dependency with its state;
// one failing dependency makes the whole answer 503 without leaking the
// underlying error text.
func TestReadyzPerDependency(t *testing.T) {
	secretErr := errors.New("dial tcp 10.0.0.7:7007: token=abc123 refused")
	tests := []struct {
		name     string
		mutate   func(s *Server)
		wantCode int
		want     map[string]string // dependency → status
	}{
		{"all ready", nil, 200, map[string]string{"audit": "ok", "backstage": "ok", "catalog": "ok"}},
		{"backstage down", func(s *Server) { s.opts.Ready = func(context.Context) error { return secretErr } },
			503, map[string]string{"audit": "ok", "backstage": "fail", "catalog": "ok"}},
		{"audit failing", func(s *Server) { _ = s.opts.Audit.Close() }, 503, map[string]string{"audit": "fail", "backstage": "ok", "catalog": "ok"}},
		{"extra check failing", func(s *Server) {
			s.opts.ReadyChecks = []ReadyCheck{{Name: "redis", Check: func(context.Context) (string, error) { return "unreachable", secretErr }}}
		}, 503, map[string]string{"audit": "ok", "backstage": "ok", "catalog": "ok", "redis": "fail"}},
		{"extra check ready", func(s *Server) {
			s.opts.ReadyChecks = []ReadyCheck{{Name: "redis", Check: func(context.Context) (string, error) { return "PONG", nil }}}
		}, 200, map[string]string{"audit": "ok", "backstage": "ok", "catalog": "ok", "redis": "ok"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newDemoServer(t)
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
				if b.Checks[dep].Status != st {
					t.Errorf("%s = %+v, want %s", dep, b.Checks[dep], st)
				}
				if strings.Contains(b.Checks[dep].Detail, "abc123") || strings.Contains(b.Checks[dep].Detail, "10.0.0.7") {
					t.Errorf("%s detail leaks the error: %q", dep, b.Checks[dep].Detail)
				}
			}
		})
	}
}

// TestReadyzSlowDependency: a dependency that does not answer is reported
// as failing once the bound passes; the probe never hangs.
func TestReadyzSlowDependency(t *testing.T) {
	s := newDemoServer(t)
	s.opts.ReadyChecks = []ReadyCheck{{Name: "slow", Check: func(ctx context.Context) (string, error) {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // answers only after the deadline
		return "", ctx.Err()
	}}}
	start := time.Now()
	code, b := getReadyz(t, s.AdminHandler())
	if el := time.Since(start); el > readyTimeout+time.Second {
		t.Fatalf("readyz took %s", el)
	}
	if code != 503 || b.Checks["slow"].Status != "fail" || b.Checks["backstage"].Status != "ok" {
		t.Fatalf("readyz = %d %+v", code, b)
	}
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
	code, b := getReadyz(t, env.s.AdminHandler())
	if code != 503 || b.Checks["identity"].Status != "fail" {
		t.Fatalf("readyz with the IdP unreachable and no keys = %d %+v", code, b)
	}
}
