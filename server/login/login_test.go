package login

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// fakeOP is an in-process OAuth provider with device, code+PKCE, refresh and
// revocation endpoints. It approves device codes after one pending poll.
type fakeOP struct {
	srv *httptest.Server

	mu         sync.Mutex
	polls      int
	challenge  string
	state      string
	redirect   string
	resources  []string
	issued     int
	revoked    []string
	refreshes  int
	expiresIn  int
	denyDevice bool
}

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	op := &fakeOP{expiresIn: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := op.srv.URL
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                        u,
			"authorization_endpoint":        u + "/authorize",
			"token_endpoint":                u + "/token",
			"device_authorization_endpoint": u + "/device",
			"revocation_endpoint":           u + "/revoke",
			"jwks_uri":                      u + "/jwks",
		})
	})
	mux.HandleFunc("/device", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		op.mu.Lock()
		op.resources = append(op.resources, r.Form.Get("resource"))
		op.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"device_code": "dev-123", "user_code": "ABCD-EFGH",
			"verification_uri": op.srv.URL + "/activate", "expires_in": 600, "interval": 1,
		})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		op.mu.Lock()
		op.challenge, op.state, op.redirect = q.Get("code_challenge"), q.Get("state"), q.Get("redirect_uri")
		op.resources = append(op.resources, q.Get("resource"))
		op.mu.Unlock()
		if q.Get("code_challenge_method") != "S256" {
			http.Error(w, "pkce required", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=code-1&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		op.mu.Lock()
		defer op.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fail := func(code string) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
		}
		switch r.Form.Get("grant_type") {
		case "urn:ietf:params:oauth:grant-type:device_code":
			if r.Form.Get("device_code") != "dev-123" {
				fail("invalid_grant")
				return
			}
			if op.denyDevice {
				fail("access_denied")
				return
			}
			op.polls++
			if op.polls < 2 {
				fail("authorization_pending")
				return
			}
		case "authorization_code":
			sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
			if r.Form.Get("code") != "code-1" || base64.RawURLEncoding.EncodeToString(sum[:]) != op.challenge || r.Form.Get("redirect_uri") != op.redirect {
				fail("invalid_grant")
				return
			}
		case "refresh_token":
			if !strings.HasPrefix(r.Form.Get("refresh_token"), "rt-") {
				fail("invalid_grant")
				return
			}
			op.refreshes++
		default:
			fail("unsupported_grant_type")
			return
		}
		op.issued++
		n := string(rune('0' + op.issued))
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": "at-" + n, "refresh_token": "rt-" + n, "token_type": "Bearer", "expires_in": op.expiresIn,
		})
	})
	mux.HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		op.mu.Lock()
		op.revoked = append(op.revoked, r.Form.Get("token"))
		op.mu.Unlock()
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

// syncBuffer is a goroutine-safe writer.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

func TestLoginFlows(t *testing.T) {
	tests := []struct {
		name    string
		browser bool
		want    string
		prompt  string
	}{
		{"device code", false, "at-1", "ABCD-EFGH"},
		{"browser with PKCE", true, "at-1", "/authorize?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op := newFakeOP(t)
			store := &Store{Dir: filepath.Join(t.TempDir(), "cfg", "backstage-mcp")}
			var prompt syncBuffer
			opts := Options{
				Issuer: op.srv.URL, ClientID: "cli", Browser: tc.browser, Prompt: &prompt, Store: store,
				Resource: "https://mcp.example.com/mcp", Timeout: 30 * time.Second,
			}
			if tc.browser {
				// The "browser": follows the authorization URL to the loopback callback.
				opts.OpenURL = func(u string) error {
					go func() {
						resp, err := http.Get(u)
						if err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}()
					return nil
				}
			}
			tok, err := Login(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != tc.want {
				t.Fatalf("token %q", tok.AccessToken)
			}
			if !strings.Contains(prompt.String(), tc.prompt) {
				t.Fatalf("prompt %q lacks %q", prompt.String(), tc.prompt)
			}
			if strings.Contains(prompt.String(), tok.AccessToken) {
				t.Fatal("prompt shows the token")
			}
			if op.resources[0] != "https://mcp.example.com/mcp" {
				t.Fatalf("resource parameter %q", op.resources)
			}
			if tc.browser && !strings.HasPrefix(op.redirect, "http://127.0.0.1:") {
				t.Fatalf("redirect %q", op.redirect)
			}
			assertMode(t, store.Dir, 0o700)
			assertMode(t, store.Path(), 0o600)
			e, err := store.Load(op.srv.URL)
			if err != nil || e.Token.AccessToken != "at-1" || e.ClientID != "cli" {
				t.Fatalf("stored %+v, %v", e, err)
			}
		})
	}
}

func TestLoginDeviceDenied(t *testing.T) {
	op := newFakeOP(t)
	op.denyDevice = true
	store := &Store{Dir: t.TempDir()}
	_, err := Login(context.Background(), Options{Issuer: op.srv.URL, ClientID: "cli", Store: store, Timeout: 10 * time.Second})
	if err == nil {
		t.Fatal("denied login succeeded")
	}
	if _, err := store.Load(op.srv.URL); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("store after denied login: %v", err)
	}
}

func TestBrowserStateChecked(t *testing.T) {
	op := newFakeOP(t)
	store := &Store{Dir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var forged int
	opts := Options{Issuer: op.srv.URL, ClientID: "cli", Browser: true, Store: store, Timeout: 3 * time.Second,
		OpenURL: func(u string) error {
			pu, _ := url.Parse(u)
			cb := pu.Query().Get("redirect_uri") + "?code=code-1&state=forged"
			resp, err := http.Get(cb)
			if err != nil {
				return err
			}
			forged = resp.StatusCode
			resp.Body.Close()
			return nil
		}}
	if _, err := Login(ctx, opts); err == nil {
		t.Fatal("login completed with a forged state")
	}
	if forged != http.StatusBadRequest {
		t.Fatalf("forged callback status %d", forged)
	}
}

func TestStoredTokenRefreshes(t *testing.T) {
	op := newFakeOP(t)
	store := &Store{Dir: t.TempDir()}
	err := store.Save(&Entry{
		Issuer: op.srv.URL, ClientID: "cli", TokenURL: op.srv.URL + "/token",
		Token: &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: time.Now().Add(-time.Minute)},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, ts, err := store.TokenSource(context.Background(), op.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at-1" || op.refreshes != 1 {
		t.Fatalf("token %q after %d refreshes", tok.AccessToken, op.refreshes)
	}
	e, _ := store.Load(op.srv.URL)
	if e.Token.AccessToken != "at-1" || e.Token.RefreshToken != "rt-1" {
		t.Fatalf("refreshed token not persisted: %+v", e.Token)
	}
	again, err := ts.Token()
	if err != nil || again.AccessToken != "at-1" || op.refreshes != 1 {
		t.Fatalf("valid token refreshed again: %v %v", again, err)
	}
	assertMode(t, store.Path(), 0o600)
}

func TestStoredTokenDefaultStore(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	if _, _, err := StoredToken(context.Background(), "https://idp.example.com"); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("err = %v", err)
	}
}

func TestStoreRefusesOpenPermissions(t *testing.T) {
	store := &Store{Dir: t.TempDir()}
	if err := store.Save(&Entry{Issuer: "i", Token: &oauth2.Token{AccessToken: "a"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"0600", 0o600, true},
		{"0400", 0o400, true},
		{"group readable", 0o640, false},
		{"world readable", 0o644, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Chmod(store.Path(), tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := store.Load("i")
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInsecureStore) {
				t.Fatalf("err = %v, want ErrInsecureStore", err)
			}
		})
	}
	_ = os.Chmod(store.Path(), 0o600)
	// A symlinked token file is refused even when its target is 0600.
	linkDir := t.TempDir()
	if err := os.Symlink(store.Path(), filepath.Join(linkDir, FileName)); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Store{Dir: linkDir}).Load("i"); !errors.Is(err, ErrInsecureStore) {
		t.Fatalf("symlink: err = %v", err)
	}
}

func TestStoreKeyedByIssuerAndLogout(t *testing.T) {
	op := newFakeOP(t)
	store := &Store{Dir: t.TempDir()}
	for _, iss := range []string{"https://a", op.srv.URL} {
		if err := store.Save(&Entry{Issuer: iss, ClientID: "cli", RevocationURL: op.srv.URL + "/revoke",
			Token: &oauth2.Token{AccessToken: "at-" + iss, RefreshToken: "rt-" + iss}}); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Logout(context.Background(), Options{Issuer: op.srv.URL, Store: store})
	if err != nil || !removed {
		t.Fatalf("logout: %v %v", removed, err)
	}
	if _, err := store.Load(op.srv.URL); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("token kept after logout: %v", err)
	}
	if e, err := store.Load("https://a"); err != nil || e.Token.AccessToken != "at-https://a" {
		t.Fatalf("other issuer's token lost: %v", err)
	}
	if len(op.revoked) != 2 {
		t.Fatalf("revoked %q", op.revoked)
	}
	removed, err = Logout(context.Background(), Options{Issuer: op.srv.URL, Store: store})
	if err != nil || removed {
		t.Fatalf("second logout: %v %v", removed, err)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Fatalf("%s mode %o, want %o", path, fi.Mode().Perm(), want)
	}
}
