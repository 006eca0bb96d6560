//go:build e2e

package oidcop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/login"
	bcatalog "github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"golang.org/x/oauth2"
)

// catalog is a small in-memory Backstage catalog: jane ∈ team-a ⊂ engineering.
type catalog struct{}

func (catalog) FindUsers(_ context.Context, filter bcatalog.Filter) ([]map[string]any, error) {
	enc, _ := filter.Encode()
	for _, name := range []string{"jane", "bob"} {
		if enc == "kind=user,spec.profile.email="+name+"@example.com" {
			return []map[string]any{{
				"kind":     "User",
				"metadata": map[string]any{"name": name, "namespace": "default"},
				"relations": []any{
					map[string]any{"type": "memberOf", "targetRef": "group:default/team-" + name},
				},
			}}, nil
		}
	}
	return nil, nil
}

func (catalog) GetEntity(_ context.Context, ref string) (map[string]any, error) {
	switch ref {
	case "group:default/team-jane":
		return map[string]any{"kind": "Group", "metadata": map[string]any{"name": "team-jane"},
			"relations": []any{map[string]any{"type": "childOf", "targetRef": "group:default/engineering"}}}, nil
	case "group:default/engineering", "group:default/team-bob":
		return map[string]any{"kind": "Group", "metadata": map[string]any{"name": strings.TrimPrefix(ref, "group:default/")}}, nil
	}
	return nil, identity.ErrEntityNotFound
}

func newAuthenticator(t *testing.T, op *OP, fallback string) *identity.Authenticator {
	t.Helper()
	auth, err := identity.New(identity.Options{
		Config: identity.Config{
			Issuers:      []identity.IssuerConfig{{URL: op.Issuer}},
			Audience:     op.Audience,
			FallbackRole: fallback,
		},
		PublicURL: "https://mcp.test",
		Catalog:   catalog{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return auth
}

func TestRealProviderTokensVerify(t *testing.T) {
	op := Start(t)
	auth := newAuthenticator(t, op, "service")
	ctx := context.Background()

	t.Run("user token from the device flow", func(t *testing.T) {
		tok := op.UserToken(t, "jane", "openid", "catalog.read")
		p, err := auth.VerifyToken(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if p.User.Sub != "id-jane" || p.User.Ref != "user:default/jane" || p.Agent.ClientID != op.CLIClientID {
			t.Fatalf("principal %+v", p)
		}
		if !slices.Equal(p.User.OwnershipRefs, []string{"user:default/jane", "group:default/engineering", "group:default/team-jane"}) {
			t.Fatalf("ownership %v", p.User.OwnershipRefs)
		}
		if !p.HasScope("catalog.read") || !slices.Equal(p.User.Groups, []string{"engineering", "team-a"}) || p.User.Email != "jane@example.com" {
			t.Fatalf("claims: scopes %v groups %v email %q", p.Scopes, p.User.Groups, p.User.Email)
		}
	})
	t.Run("client credentials token", func(t *testing.T) {
		tok := op.ClientCredentialsToken(t, "catalog.read")
		p, err := auth.VerifyToken(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if p.User.Sub != op.ServiceClientID || p.FallbackRole != "service" || p.User.Ref != "" {
			t.Fatalf("principal %+v", p)
		}
	})
	t.Run("token for another audience is rejected", func(t *testing.T) {
		other, err := identity.New(identity.Options{
			Config:    identity.Config{Issuers: []identity.IssuerConfig{{URL: op.Issuer}}},
			PublicURL: "https://other-server.test",
			Catalog:   catalog{},
		})
		if err != nil {
			t.Fatal(err)
		}
		tok := op.ClientCredentialsToken(t)
		_, err = other.VerifyToken(ctx, tok.AccessToken)
		var te *identity.TokenError
		if !errors.As(err, &te) || te.Reason != "wrong audience" {
			t.Fatalf("err = %v", err)
		}
	})
}

// promptWatcher collects what login prints and signals when it has printed
// the user code.
type promptWatcher struct {
	mu   sync.Mutex
	b    strings.Builder
	code chan string
	once sync.Once
}

func (w *promptWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if c, err := UserCodeFrom(w.b.String()); err == nil {
		w.once.Do(func() { w.code <- c })
	}
	return len(p), nil
}

func TestDeviceLoginEndToEnd(t *testing.T) {
	op := Start(t)
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	auth := newAuthenticator(t, op, "")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	prompt := &promptWatcher{code: make(chan string, 1)}
	done := make(chan error, 1)
	go func() {
		_, err := login.Login(ctx, login.Options{
			Issuer:   op.Issuer,
			ClientID: op.CLIClientID,
			Scopes:   []string{"openid", "offline_access", "catalog.read"},
			Resource: op.Audience,
			Prompt:   prompt,
		})
		done <- err
	}()
	select {
	case code := <-prompt.code:
		// The person opens the verification URI and approves as bob.
		if err := op.ApproveDevice(ctx, code, "bob"); err != nil {
			t.Fatal(err)
		}
	case err := <-done:
		t.Fatalf("login ended before printing a code: %v", err)
	case <-ctx.Done():
		t.Fatal("no user code printed")
	}
	if err := <-done; err != nil {
		t.Fatalf("login: %v", err)
	}

	path := filepath.Join(cfgHome, "backstage-mcp", login.FileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %o", fi.Mode().Perm())
	}
	dirInfo, err := os.Stat(filepath.Dir(path))
	if err != nil || dirInfo.Mode().Perm() != 0o700 {
		t.Fatalf("token dir mode %v %v", dirInfo.Mode().Perm(), err)
	}

	tok, ts, err := login.StoredToken(ctx, op.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	if ts == nil || tok.AccessToken == "" {
		t.Fatal("no token source")
	}
	p, err := auth.VerifyToken(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if p.User.Ref != "user:default/bob" || !p.HasScope("catalog.read") {
		t.Fatalf("principal %+v", p)
	}

	// The device-flow refresh token refreshes (it once failed with
	// invalid_grant: the example storage did not record its client), and
	// is refused once revoked.
	entry, err := (&login.Store{Dir: filepath.Join(cfgHome, "backstage-mcp")}).Load(op.Issuer)
	if err != nil || entry.Token.RefreshToken == "" {
		t.Fatalf("no refresh token stored: %v", err)
	}
	cfg := op.OAuthConfig()
	rctx := context.WithValue(ctx, oauth2.HTTPClient, op.httpClient)
	fresh, err := cfg.TokenSource(rctx, &oauth2.Token{RefreshToken: entry.Token.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := auth.VerifyToken(ctx, fresh.AccessToken); err != nil {
		t.Fatalf("refreshed token: %v", err)
	}
	if err := op.RevokeRefreshToken(ctx, fresh.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_, err = cfg.TokenSource(rctx, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after revocation: %v, want invalid_grant", err)
	}
}
