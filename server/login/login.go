// Package login gets an OAuth access token for a person at the terminal and
// keeps it for `backstage-mcp serve --stdio`.
//
// Two flows, both via golang.org/x/oauth2 with endpoints from the issuer's
// OpenID discovery document:
//
//   - the device authorization grant (RFC 8628), the default: the user opens
//     the printed verification URI on any device and enters the code;
//   - the authorization code grant with PKCE (S256) on a loopback redirect
//     http://127.0.0.1:<random port>/callback, with state checked.
//
// Tokens are kept per issuer in os.UserConfigDir()/backstage-mcp/token.json
// (directory 0700, file 0600, written atomically) and refreshed on use by
// StoredToken's TokenSource, which writes refreshed tokens back.
package login

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// DefaultScopes are requested when Options.Scopes is empty.
var DefaultScopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}

// Options configure Login and Logout.
type Options struct {
	// Issuer is the OpenID provider's issuer URL.
	Issuer string
	// ClientID is the OAuth client registered for this CLI (a public client).
	ClientID string
	// Scopes to request. Default DefaultScopes.
	Scopes []string
	// Resource, when set, is sent as the RFC 8707 resource parameter: the
	// MCP server's resource URL (e.g. https://mcp.example.com/mcp).
	Resource string
	// Audience, when set, is sent as the audience parameter some providers
	// use instead of resource.
	Audience string
	// Browser selects the authorization code + PKCE flow on a loopback
	// redirect instead of the device flow.
	Browser bool
	// OpenURL, when set, is called with the authorization URL in the browser
	// flow (e.g. to start a browser). The URL is always printed too.
	OpenURL func(url string) error
	// Prompt receives the instructions for the user. Default io.Discard.
	Prompt io.Writer
	// Store keeps the token. Default DefaultStore().
	Store *Store
	// StoreKey is the key the token is kept under in Store. Default Issuer.
	StoreKey string
	// HTTPClient is used for discovery and token requests. Default a client
	// with a 30s timeout.
	HTTPClient *http.Client
	// Timeout bounds the whole interactive login. Default 10 minutes.
	Timeout time.Duration
}

// providerInfo is the part of the discovery document login uses.
type providerInfo struct {
	endpoint      oauth2.Endpoint
	revocationURL string
}

func (o *Options) defaults() error {
	if o.Issuer == "" || o.ClientID == "" {
		return errors.New("login: issuer and client ID are required")
	}
	if len(o.Scopes) == 0 {
		o.Scopes = DefaultScopes
	}
	if o.Prompt == nil {
		o.Prompt = io.Discard
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Store == nil {
		s, err := DefaultStore()
		if err != nil {
			return err
		}
		o.Store = s
	}
	return nil
}

func discover(ctx context.Context, issuer string) (providerInfo, error) {
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return providerInfo{}, fmt.Errorf("login: discovery of %s: %w", issuer, err)
	}
	var meta struct {
		DeviceURL     string `json:"device_authorization_endpoint"`
		RevocationURL string `json:"revocation_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return providerInfo{}, fmt.Errorf("login: discovery of %s: %w", issuer, err)
	}
	ep := p.Endpoint()
	ep.DeviceAuthURL = meta.DeviceURL
	return providerInfo{endpoint: ep, revocationURL: meta.RevocationURL}, nil
}

func (o *Options) extraParams() []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	if o.Resource != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", o.Resource))
	}
	if o.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", o.Audience))
	}
	return opts
}

// Login runs the interactive flow, stores the token and returns it.
func Login(ctx context.Context, opts Options) (*oauth2.Token, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	ctx = oidc.ClientContext(ctx, opts.HTTPClient)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, opts.HTTPClient)

	info, err := discover(ctx, opts.Issuer)
	if err != nil {
		return nil, err
	}
	cfg := &oauth2.Config{ClientID: opts.ClientID, Endpoint: info.endpoint, Scopes: opts.Scopes}
	var tok *oauth2.Token
	if opts.Browser {
		tok, err = browserFlow(ctx, cfg, &opts)
	} else {
		tok, err = deviceFlow(ctx, cfg, &opts)
	}
	if err != nil {
		return nil, err
	}
	entry := &Entry{
		Issuer:        opts.Issuer,
		ClientID:      opts.ClientID,
		TokenURL:      info.endpoint.TokenURL,
		RevocationURL: info.revocationURL,
		Scopes:        opts.Scopes,
		Resource:      opts.Resource,
		Audience:      opts.Audience,
		Token:         tok,
	}
	key := opts.StoreKey
	if key == "" {
		key = opts.Issuer
	}
	if err := opts.Store.SaveKey(key, entry); err != nil {
		return nil, err
	}
	return tok, nil
}

func deviceFlow(ctx context.Context, cfg *oauth2.Config, opts *Options) (*oauth2.Token, error) {
	if cfg.Endpoint.DeviceAuthURL == "" {
		return nil, errors.New("login: the issuer offers no device authorization endpoint; use --browser")
	}
	da, err := cfg.DeviceAuth(ctx, opts.extraParams()...)
	if err != nil {
		return nil, fmt.Errorf("login: device authorization: %w", err)
	}
	fmt.Fprintf(opts.Prompt, "To sign in, open %s\nand enter the code: %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(opts.Prompt, "(or open %s)\n", da.VerificationURIComplete)
	}
	fmt.Fprintln(opts.Prompt, "Waiting for you to finish signing in…")
	tok, err := cfg.DeviceAccessToken(ctx, da, opts.extraParams()...)
	if err != nil {
		return nil, fmt.Errorf("login: device token: %w", err)
	}
	return tok, nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("login: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

type callbackResult struct {
	code string
	err  error
}

func browserFlow(ctx context.Context, cfg *oauth2.Config, opts *Options) (*oauth2.Token, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("login: loopback listener: %w", err)
	}
	defer func() { _ = ln.Close() }()
	c := *cfg
	c.RedirectURL = fmt.Sprintf("http://%s/callback", ln.Addr().String())
	state, err := randomString(32)
	if err != nil {
		return nil, err
	}
	verifier := oauth2.GenerateVerifier()

	results := make(chan callbackResult, 1)
	var once sync.Once
	deliver := func(r callbackResult) { once.Do(func() { results <- r }) }
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			// Not our request: ignore it and keep waiting.
			http.Error(w, "state mismatch", http.StatusBadRequest)
			return
		}
		if e := q.Get("error"); e != "" {
			msg := e
			if d := q.Get("error_description"); d != "" {
				msg += ": " + d
			}
			writePage(w, "Sign-in failed: "+msg+". You can close this window.")
			deliver(callbackResult{err: fmt.Errorf("login: authorization failed: %s", msg)})
			return
		}
		code := q.Get("code")
		if code == "" {
			http.Error(w, "missing code", http.StatusBadRequest)
			return
		}
		writePage(w, "Signed in to backstage-mcp. You can close this window.")
		deliver(callbackResult{code: code})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	authOpts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, opts.extraParams()...)
	authURL := c.AuthCodeURL(state, authOpts...)
	fmt.Fprintf(opts.Prompt, "To sign in, open this URL in a browser on this machine:\n%s\n", authURL)
	if opts.OpenURL != nil {
		if err := opts.OpenURL(authURL); err != nil {
			fmt.Fprintf(opts.Prompt, "(could not open a browser: %v)\n", err)
		}
	}
	fmt.Fprintln(opts.Prompt, "Waiting for the browser to come back…")

	var res callbackResult
	select {
	case res = <-results:
	case <-ctx.Done():
		return nil, fmt.Errorf("login: waiting for the browser: %w", ctx.Err())
	}
	if res.err != nil {
		return nil, res.err
	}
	exOpts := append([]oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, opts.extraParams()...)
	tok, err := c.Exchange(ctx, res.code, exOpts...)
	if err != nil {
		return nil, fmt.Errorf("login: code exchange: %w", err)
	}
	return tok, nil
}

func writePage(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "<!doctype html><title>backstage-mcp</title><p>%s</p>\n", html.EscapeString(msg))
}

// Logout deletes the stored token of opts.Issuer (or opts.StoreKey) and, when the provider
// advertised a revocation endpoint, asks it to revoke the tokens (best
// effort: a failed revocation is reported but the local token is gone).
func Logout(ctx context.Context, opts Options) (removed bool, err error) {
	if opts.ClientID == "" {
		opts.ClientID = "-" // not needed to delete
	}
	if err := opts.defaults(); err != nil {
		return false, err
	}
	key := opts.StoreKey
	if key == "" {
		key = opts.Issuer
	}
	entry, lerr := opts.Store.LoadKey(key)
	removed, err = opts.Store.DeleteKey(key)
	if err != nil {
		return removed, err
	}
	if lerr != nil || entry.RevocationURL == "" {
		return removed, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var errs []error
	if entry.Token.RefreshToken != "" {
		errs = append(errs, revoke(ctx, opts.HTTPClient, entry, entry.Token.RefreshToken, "refresh_token"))
	}
	if entry.Token.AccessToken != "" {
		errs = append(errs, revoke(ctx, opts.HTTPClient, entry, entry.Token.AccessToken, "access_token"))
	}
	return removed, errors.Join(errs...)
}

func revoke(ctx context.Context, client *http.Client, e *Entry, token, hint string) error {
	form := url.Values{"token": {token}, "token_type_hint": {hint}, "client_id": {e.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.RevocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("login: revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("login: revoke: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login: revoke %s: status %d", hint, resp.StatusCode)
	}
	return nil
}
