//go:build e2e

package oidcprovider

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/login"
	bcatalog "github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

const audience = "https://mcp.test/mcp"

// catalog is a one-user catalog for the authenticator.
type catalog struct{}

func (catalog) FindUsers(_ context.Context, filter bcatalog.Filter) ([]map[string]any, error) {
	if enc, _ := filter.Encode(); enc == "kind=user,spec.profile.email=jane@example.com" {
		return []map[string]any{{"kind": "User", "metadata": map[string]any{"name": "jane", "namespace": "default"}}}, nil
	}
	return nil, nil
}

func (catalog) GetEntity(context.Context, string) (map[string]any, error) {
	return nil, identity.ErrEntityNotFound
}

type prompt struct {
	mu   sync.Mutex
	b    strings.Builder
	code chan string
	once sync.Once
}

func (p *prompt) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.b.Write(b)
	if c, err := oidcop.UserCodeFrom(p.b.String()); err == nil {
		p.once.Do(func() { p.code <- c })
	}
	return len(b), nil
}

// refresh runs the refresh grant with the resource parameter, as connect does.
func refresh(ctx context.Context, p *Provider, rt string) (access, newRefresh string, status int, errCode string) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {p.ClientID}, "resource": {audience}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", 0, err.Error()
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if body.RefreshToken == "" {
		body.RefreshToken = rt
	}
	return body.AccessToken, body.RefreshToken, resp.StatusCode, body.Error
}

// TestDeviceLoginRefreshRevoke: the device flow through login, a JWT the
// server's verifier accepts with the resource's scopes, a refresh, and a
// refused refresh after revocation.
func TestDeviceLoginRefreshRevoke(t *testing.T) {
	p := Start(t, Options{Audience: audience, Scopes: []string{"catalog.read"}, AccessTokenLifetime: time.Minute,
		Users: []User{{ID: "id-jane", Email: "jane@example.com", Name: "Jane Doe", Groups: []string{"engineering"}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	store := &login.Store{Dir: t.TempDir()}
	pr := &prompt{code: make(chan string, 1)}
	done := make(chan error, 1)
	go func() {
		_, err := login.Login(ctx, login.Options{Issuer: p.Issuer, ClientID: p.ClientID, Scopes: []string{"openid", "offline_access", "catalog.read"},
			Resource: audience, Prompt: pr, Store: store})
		done <- err
	}()
	select {
	case code := <-pr.code:
		if err := p.ApproveDevice(ctx, code, "jane"); err != nil {
			t.Fatal(err)
		}
	case err := <-done:
		t.Fatalf("login ended before printing a code: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("login: %v", err)
	}
	e, err := store.Load(p.Issuer)
	if err != nil || e.Token.RefreshToken == "" {
		t.Fatalf("stored entry %+v, %v (want a refresh token)", e, err)
	}
	if d := time.Until(e.Token.Expiry); d > time.Minute+5*time.Second || d < 30*time.Second {
		t.Errorf("access token lifetime %s, want about a minute", d)
	}
	auth, err := identity.New(identity.Options{
		Config:    identity.Config{Issuers: []identity.IssuerConfig{{URL: p.Issuer}}, Audience: audience},
		PublicURL: "https://mcp.test",
		Catalog:   catalog{},
	})
	if err != nil {
		t.Fatal(err)
	}
	pr1, err := auth.VerifyToken(ctx, e.Token.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if pr1.User.Ref != "user:default/jane" || !pr1.HasScope("catalog.read") || pr1.Agent.ClientID != p.ClientID ||
		!slices.Equal(pr1.User.Groups, []string{"engineering"}) {
		t.Fatalf("principal %+v", pr1)
	}

	at, rt, status, code := refresh(ctx, p, e.Token.RefreshToken)
	if status != http.StatusOK || at == "" || at == e.Token.AccessToken {
		t.Fatalf("refresh: %d %s", status, code)
	}
	if _, err := auth.VerifyToken(ctx, at); err != nil {
		t.Fatalf("refreshed token: %v", err)
	}
	// The current refresh token (rotated or not) is revoked.
	if err := p.RevokeRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	if _, _, status, code := refresh(ctx, p, rt); status != http.StatusBadRequest || code != "invalid_grant" {
		t.Fatalf("refresh after revocation: %d %q, want 400 invalid_grant", status, code)
	}
}
