// Command opserver runs a real OpenID provider for backstage-mcp's end-to-end
// tests. It is built from zitadel's OIDC library and its example provider
// (storage, login and device pages) with three changes the tests need:
//
//   - it listens on a loopback address only and prints its issuer URL on the
//     first line of standard output ("ISSUER=http://127.0.0.1:PORT/");
//   - access tokens are JWTs whose audience includes the resource given with
//     -audience, and which carry scope, email, name and groups claims;
//   - a public client ("cli" by default) may use the device authorization
//     grant, and a confidential service client may use client credentials;
//   - -access-token-lifetime shortens access tokens, for expiry tests.
//
// It lives in its own Go module so that the main module's go.mod gains no
// dependency for a test-only tool. It is for tests on loopback: it keeps
// everything in memory and must never face a network.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// userExtra holds the fields of a user in the users file that zitadel's
// example user store does not know.
type userExtra struct {
	ID       string   `json:"ID"`
	Username string   `json:"Username"`
	Email    string   `json:"Email"`
	First    string   `json:"FirstName"`
	Last     string   `json:"LastName"`
	Groups   []string `json:"Groups"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "opserver:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	audience := flag.String("audience", "", "resource added to the audience of every access token")
	usersFile := flag.String("users", "", "JSON users file (map of ID to user, with optional Groups)")
	cliClient := flag.String("cli-client", "cli", "public client ID allowed the device and auth code grants")
	svcClient := flag.String("service-client", "svc", "confidential client ID allowed client credentials")
	svcSecret := flag.String("service-secret", "", "secret of the service client (required)")
	tokenLifetime := flag.Duration("access-token-lifetime", 0, "lifetime of access tokens (default: the example provider's 5 minutes)")
	flag.Parse()
	if *usersFile == "" || *svcSecret == "" {
		return errors.New("-users and -service-secret are required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("parse -addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q is not a loopback IP address", *addr)
	}

	raw, err := os.ReadFile(*usersFile)
	if err != nil {
		return err
	}
	extras := map[string]userExtra{}
	if err := json.Unmarshal(raw, &extras); err != nil {
		return fmt.Errorf("parse users: %w", err)
	}
	userStore, err := storage.StoreFromFile(*usersFile)
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	issuer := fmt.Sprintf("http://%s/", ln.Addr().String())

	clients := map[string]*storage.Client{
		*cliClient: storage.NativeClient(*cliClient, "http://127.0.0.1/callback", "http://localhost/callback"),
		*svcClient: storage.WebClient(*svcClient, *svcSecret),
	}
	base := storage.NewStorageWithClients(userStore, clients)
	st := &e2eStorage{
		Storage:   base,
		audience:  *audience,
		extras:    extras,
		cliClient: *cliClient,
		svcClient: *svcClient,
		svcSecret: *svcSecret,
		lifetime:  *tokenLifetime,
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	router := exampleop.SetupServer(issuer, st, logger, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}

	fmt.Printf("ISSUER=%s\n", issuer)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// e2eStorage adapts zitadel's example storage: JWT access tokens with our
// audience and claims, device grant for the CLI client, client credentials for
// the service client.
type e2eStorage struct {
	*storage.Storage
	audience  string
	extras    map[string]userExtra
	cliClient string
	svcClient string
	svcSecret string
	lifetime  time.Duration
}

// shorten caps an access token's expiry at the configured lifetime; the
// expiry returned here is the JWT's exp and the response's expires_in.
func (s *e2eStorage) shorten(exp time.Time) time.Time {
	if s.lifetime > 0 {
		if c := time.Now().Add(s.lifetime); c.Before(exp) {
			return c
		}
	}
	return exp
}

func (s *e2eStorage) CreateAccessToken(ctx context.Context, request op.TokenRequest) (string, time.Time, error) {
	id, exp, err := s.Storage.CreateAccessToken(ctx, request)
	return id, s.shorten(exp), err
}

// CreateAccessAndRefreshTokens records the client of a device-flow grant
// in its refresh token: zitadel's example storage only knows the client of
// auth code and refresh requests, so a device-flow refresh token had no
// client, and every refresh of it was refused with invalid_grant.
func (s *e2eStorage) CreateAccessAndRefreshTokens(ctx context.Context, request op.TokenRequest, currentRefreshToken string) (string, string, time.Time, error) {
	if d, ok := request.(*op.DeviceAuthorizationState); ok && currentRefreshToken == "" {
		request = &storage.RefreshTokenRequest{RefreshToken: &storage.RefreshToken{
			ApplicationID: d.ClientID, UserID: d.Subject, Audience: d.Audience, Scopes: d.Scopes, AuthTime: d.AuthTime, AMR: d.AMR,
		}}
	}
	id, rt, exp, err := s.Storage.CreateAccessAndRefreshTokens(ctx, request, currentRefreshToken)
	return id, rt, s.shorten(exp), err
}

// jwtClient makes a registered client issue JWT access tokens, and lets the
// CLI client use the device grant and refresh tokens.
type jwtClient struct {
	op.Client
	extraGrants []oidc.GrantType
}

func (c jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

func (c jwtClient) GrantTypes() []oidc.GrantType {
	return append(slices.Clone(c.Client.GrantTypes()), c.extraGrants...)
}

func (c jwtClient) IsScopeAllowed(scope string) bool {
	// Custom scopes such as catalog.read are what a resource server checks.
	return scope != "" && !strings.ContainsAny(scope, " \t\r\n")
}

func (s *e2eStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	var extra []oidc.GrantType
	if clientID == s.cliClient {
		extra = []oidc.GrantType{oidc.GrantTypeDeviceCode}
	}
	return jwtClient{Client: c, extraGrants: extra}, nil
}

func (s *e2eStorage) withAudience(aud []string) []string {
	if s.audience != "" && !slices.Contains(aud, s.audience) {
		aud = append(aud, s.audience)
	}
	return aud
}

func (s *e2eStorage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	state, err := s.Storage.GetDeviceAuthorizatonState(ctx, clientID, deviceCode)
	if err != nil {
		return nil, err
	}
	cp := *state
	cp.Audience = s.withAudience(slices.Clone(state.Audience))
	return &cp, nil
}

func (s *e2eStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	req, err := s.Storage.AuthRequestByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	return audienceAuthRequest{AuthRequest: req, aud: s.withAudience(slices.Clone(req.GetAudience()))}, nil
}

type audienceAuthRequest struct {
	op.AuthRequest
	aud []string
}

func (a audienceAuthRequest) GetAudience() []string { return a.aud }

func (s *e2eStorage) ClientCredentials(ctx context.Context, clientID, clientSecret string) (op.Client, error) {
	if clientID != s.svcClient || clientSecret != s.svcSecret {
		return nil, errors.New("wrong client or secret")
	}
	c, err := s.Storage.GetClientByClientID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	return jwtClient{Client: c, extraGrants: []oidc.GrantType{oidc.GrantTypeClientCredentials}}, nil
}

func (s *e2eStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	if clientID != s.svcClient {
		return nil, errors.New("unknown service client")
	}
	return &oidc.JWTTokenRequest{
		Subject:  clientID,
		Audience: s.withAudience([]string{clientID}),
		Scopes:   scopes,
	}, nil
}

// CompleteDeviceAuthorization records the user's ID as subject (zitadel's
// example records the username, which its user lookups then cannot find).
func (s *e2eStorage) CompleteDeviceAuthorization(ctx context.Context, userCode, subject string) error {
	if u, ok := s.findUser(subject); ok {
		subject = u.ID
	}
	return s.Storage.CompleteDeviceAuthorization(ctx, userCode, subject)
}

func (s *e2eStorage) findUser(userID string) (userExtra, bool) {
	if u, ok := s.extras[userID]; ok {
		return u, true
	}
	for _, u := range s.extras {
		if u.Username == userID {
			return u, true
		}
	}
	return userExtra{}, false
}

func (s *e2eStorage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	claims, err := s.Storage.GetPrivateClaimsFromScopes(ctx, userID, clientID, scopes)
	if err != nil {
		return nil, err
	}
	if claims == nil {
		claims = map[string]any{}
	}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	if u, ok := s.findUser(userID); ok {
		claims["email"] = u.Email
		claims["name"] = strings.TrimSpace(u.First + " " + u.Last)
		claims["preferred_username"] = u.Username
		if len(u.Groups) > 0 {
			claims["groups"] = u.Groups
		}
	}
	return claims, nil
}
