package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestSessionBinder(t *testing.T) {
	clock := newClock()
	var rejected []string
	b := NewSessionBinder(SessionBinderOptions{Now: clock.Now, IdleTTL: time.Hour, OnReject: func(_ context.Context, reason string, _ *http.Request) { rejected = append(rejected, reason) }})
	jane := &Principal{Issuer: "https://idp", User: User{Sub: "jane"}}
	janeOtherToken := &Principal{Issuer: "https://idp", User: User{Sub: "jane"}, TokenID: "t2"}
	bob := &Principal{Issuer: "https://idp", User: User{Sub: "bob"}}
	sameSubOtherIssuer := &Principal{Issuer: "https://other-idp", User: User{Sub: "jane"}}

	next := 0
	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(SessionHeader) == "" {
			next++
			w.Header().Set(SessionHeader, "mcp-session-"+itoa(next))
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("{}"))
	})
	h := b.Middleware(mcp)
	do := func(p *Principal, method, sid string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/mcp", nil)
		if sid != "" {
			req.Header.Set(SessionHeader, sid)
		}
		req = req.WithContext(WithPrincipal(req.Context(), p))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := do(jane, http.MethodPost, "")
	sid := rec.Header().Get(SessionHeader)
	if rec.Code != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %q", rec.Code, sid)
	}
	steps := []struct {
		name   string
		p      *Principal
		method string
		sid    string
		want   int
	}{
		{"same user", jane, http.MethodPost, sid, http.StatusOK},
		{"same user, new token", janeOtherToken, http.MethodPost, sid, http.StatusOK},
		{"another user", bob, http.MethodPost, sid, http.StatusNotFound},
		{"same sub at another issuer", sameSubOtherIssuer, http.MethodGet, sid, http.StatusNotFound},
		{"unknown session id", jane, http.MethodPost, "mcp-session-guessed", http.StatusNotFound},
		{"another user cannot delete", bob, http.MethodDelete, sid, http.StatusNotFound},
		{"owner deletes", jane, http.MethodDelete, sid, http.StatusOK},
		{"deleted session is gone", jane, http.MethodPost, sid, http.StatusNotFound},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if got := do(st.p, st.method, st.sid).Code; got != st.want {
				t.Fatalf("status %d, want %d", got, st.want)
			}
		})
	}

	if len(rejected) != 5 {
		t.Fatalf("OnReject called %d times, want 5: %q", len(rejected), rejected)
	}
	t.Run("idle expiry", func(t *testing.T) {
		sid := do(bob, http.MethodPost, "").Header().Get(SessionHeader)
		clock.Advance(2 * time.Hour)
		if err := b.Check(sid, bob); !errors.Is(err, ErrSessionMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("rebinding to another user fails", func(t *testing.T) {
		if err := b.Bind("s1", jane); err != nil {
			t.Fatal(err)
		}
		if err := b.Bind("s1", bob); !errors.Is(err, ErrSessionMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		small := NewSessionBinder(SessionBinderOptions{MaxSessions: 3, Now: clock.Now})
		for i := range 10 {
			clock.Advance(time.Second)
			if err := small.Bind(itoa(i), jane); err != nil {
				t.Fatal(err)
			}
		}
		if small.Len() != 3 {
			t.Fatalf("len %d", small.Len())
		}
		if err := small.Check("9", jane); err != nil {
			t.Fatalf("newest binding evicted: %v", err)
		}
		if err := small.Check("0", jane); err == nil {
			t.Fatal("oldest binding kept")
		}
	})
	t.Run("no principal", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mcp", nil))
		if rec.Code != http.StatusInternalServerError {
			t.Fatalf("status %d", rec.Code)
		}
	})
}

func TestSessionBinderKeepsFlusher(t *testing.T) {
	b := NewSessionBinder(SessionBinderOptions{})
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("writer is not a Flusher: SSE would break")
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
	}))
	req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	req = req.WithContext(WithPrincipal(req.Context(), &Principal{Issuer: "i", User: User{Sub: "s"}}))
	h.ServeHTTP(httptest.NewRecorder(), req)
}
