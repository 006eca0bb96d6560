// Package connect is the stdio bridge from an IDE to a shared backstage-mcp
// server: `backstage-mcp connect <server URL>`.
//
// The IDE starts it as a local stdio MCP server; it relays every JSON-RPC
// message, both ways and unchanged, to the shared server over Streamable
// HTTP (POSTed messages, JSON or SSE answers, the standalone GET stream for
// server-initiated messages, the Mcp-Session-Id and MCP-Protocol-Version
// headers), adding the developer's bearer token. The developer signs in
// with the server's identity provider, found through the server's OAuth
// protected-resource metadata (RFC 9728), using a pre-registered public
// client: authorization code + PKCE in the browser, or the device flow.
// Tokens are kept by server/login's store (0600, the user's config
// directory), refreshed before they expire and when the server answers 401.
// When the developer must sign in again, the pending call gets a JSON-RPC
// error saying so and stderr says it too; a new sign-in starts.
//
// Nothing else lives on the laptop: no Backstage token, policy or audit file.
package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/login"
)

// Defaults of Options.
const (
	DefaultMaxMessage  = 8 << 20
	DefaultCallTimeout = 5 * time.Minute
	DefaultSignInWait  = 2 * time.Minute
)

// Options configure Run and SignIn.
type Options struct {
	// ServerURL is the shared server's MCP endpoint, e.g. https://mcp.example.com/mcp.
	ServerURL string
	// ClientID is the pre-registered public OAuth client for connect.
	ClientID string
	// Issuer picks one of the server's authorization servers; default the first.
	Issuer string
	// Scopes to request; default openid, offline_access and the server's
	// scopes_supported.
	Scopes []string
	// Audience, when set, is sent as the audience parameter some providers
	// use instead of resource.
	Audience string
	// NoResource leaves out the RFC 8707 resource parameter, for providers
	// that reject it (Entra ID v2: ask for the API's scope instead).
	NoResource bool
	// Device selects the device flow; otherwise the browser flow is used
	// when OpenURL can open a browser.
	Device bool
	// OpenURL opens a URL in the developer's browser; nil means no browser.
	OpenURL func(url string) error
	// Store keeps tokens. Default login.DefaultStore().
	Store *login.Store
	// Log receives messages for the developer (stderr). Default io.Discard.
	Log io.Writer
	// HTTPClient is used for metadata, sign-in and refresh. Default a client
	// with a 30s timeout.
	HTTPClient *http.Client
	// MCPClient is used for the MCP traffic (no overall timeout: SSE streams
	// last). Default a client with dial, TLS and idle timeouts.
	MCPClient *http.Client
	// MaxMessage bounds one JSON-RPC message either way. Default 8 MiB.
	MaxMessage int
	// CallTimeout bounds one POSTed message and its answer. Default 5 minutes.
	CallTimeout time.Duration
	// SignInWait is how long a call waits for a sign-in before it is
	// answered with a sign-in error (the sign-in goes on). Default 2 minutes.
	SignInWait time.Duration
	// SignInTimeout bounds one interactive sign-in. Default 10 minutes.
	SignInTimeout time.Duration
	// UserAgent is sent to the server.
	UserAgent string
}

func (o *Options) defaults() error {
	if o.ServerURL == "" {
		return errors.New("connect: the server URL is required")
	}
	if _, err := CheckServerURL(o.ServerURL); err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.MCPClient == nil {
		o.MCPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   8,
			ExpectContinueTimeout: time.Second,
		}}
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.SignInWait <= 0 {
		o.SignInWait = DefaultSignInWait
	}
	if o.SignInTimeout <= 0 {
		o.SignInTimeout = 10 * time.Minute
	}
	if o.UserAgent == "" {
		o.UserAgent = "backstage-mcp-connect"
	}
	if o.Store == nil {
		s, err := login.DefaultStore()
		if err != nil {
			return err
		}
		o.Store = s
	}
	return nil
}

// StoreKey is the key of a server's token in the login store.
func StoreKey(serverURL string) string { return "connect " + serverURL }

// plan is what sign-in needs, from the options and the server's metadata.
type plan struct {
	res    *Resource
	issuer string
	scopes []string
}

func makePlan(ctx context.Context, o *Options) (*plan, error) {
	res, err := Discover(ctx, o.HTTPClient, o.ServerURL)
	if err != nil {
		return nil, err
	}
	issuer := res.AuthorizationServers[0]
	if o.Issuer != "" {
		issuer = ""
		for _, a := range res.AuthorizationServers {
			if strings.TrimSuffix(a, "/") == strings.TrimSuffix(o.Issuer, "/") {
				issuer = a
			}
		}
		if issuer == "" {
			return nil, fmt.Errorf("connect: %s does not trust issuer %s (it trusts %s)", o.ServerURL, o.Issuer, strings.Join(res.AuthorizationServers, ", "))
		}
	}
	scopes := o.Scopes
	if len(scopes) == 0 {
		scopes = append([]string{"openid", "offline_access"}, res.ScopesSupported...)
	}
	return &plan{res: res, issuer: issuer, scopes: scopes}, nil
}

// signInFunc returns the interactive sign-in of plan p.
func signInFunc(o *Options, p *plan) func(ctx context.Context, prompt io.Writer) error {
	return func(ctx context.Context, prompt io.Writer) error {
		if o.ClientID == "" {
			return errors.New("connect: no OAuth client ID: pass --client-id (ask your platform team for the public client registered for backstage-mcp connect)")
		}
		resource := p.res.Resource
		if o.NoResource {
			resource = ""
		}
		lo := login.Options{
			Issuer:     p.issuer,
			ClientID:   o.ClientID,
			Scopes:     p.scopes,
			Resource:   resource,
			Audience:   o.Audience,
			Browser:    !o.Device && o.OpenURL != nil,
			OpenURL:    o.OpenURL,
			Prompt:     prompt,
			Store:      o.Store,
			StoreKey:   StoreKey(o.ServerURL),
			HTTPClient: o.HTTPClient,
			Timeout:    o.SignInTimeout,
		}
		_, err := login.Login(ctx, lo)
		return err
	}
}

// SignIn signs the developer in for the server now (an interactive flow
// whose instructions go to o.Log) and stores the token; it is
// `connect --login`.
func SignIn(ctx context.Context, o Options) (*login.Entry, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	p, err := makePlan(ctx, &o)
	if err != nil {
		return nil, err
	}
	if err := signInFunc(&o, p)(ctx, o.Log); err != nil {
		return nil, err
	}
	return o.Store.LoadKey(StoreKey(o.ServerURL))
}

// SignOut forgets the server's stored token and revokes it where the
// provider allows; it reports whether there was one.
func SignOut(ctx context.Context, o Options) (bool, error) {
	if err := o.defaults(); err != nil {
		return false, err
	}
	return login.Logout(ctx, login.Options{Issuer: o.ServerURL, ClientID: "-", Store: o.Store, StoreKey: StoreKey(o.ServerURL), HTTPClient: o.HTTPClient})
}

// Run bridges stdin/stdout (the IDE) to the server until stdin ends or ctx
// is done. It discovers the server's provider first; a developer without a
// stored token is signed in when the first message needs one.
func Run(ctx context.Context, o Options, stdin io.Reader, stdout io.Writer) error {
	if err := o.defaults(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &tokens{
		server:   o.ServerURL,
		store:    o.Store,
		key:      StoreKey(o.ServerURL),
		client:   o.HTTPClient,
		wait:     o.SignInWait,
		log:      o.Log,
		loginCtx: ctx,
	}
	t.load()
	if o.ClientID == "" {
		if t.entry == nil {
			return fmt.Errorf("connect: not signed in to %s and no OAuth client ID to sign in with: pass --client-id (ask your platform team for the public client registered for backstage-mcp connect)", o.ServerURL)
		}
		o.ClientID = t.entry.ClientID // the client of the last sign-in
	}
	if t.entry == nil || !fresh(t.entry.Token) {
		// Discovery is needed only to sign in; a stored token that is
		// fresh or refreshable needs none, so a server restart does not
		// stop the IDE from starting.
		p, err := makePlan(ctx, &o)
		if err != nil {
			if t.entry == nil {
				return err
			}
			fmt.Fprintf(o.Log, "backstage-mcp connect: %v\n", err)
		} else {
			t.signIn = signInFunc(&o, p)
		}
	} else {
		t.signIn = func(ctx context.Context, prompt io.Writer) error {
			p, err := makePlan(ctx, &o)
			if err != nil {
				return err
			}
			return signInFunc(&o, p)(ctx, prompt)
		}
	}
	if t.signIn != nil && t.entry == nil {
		// Start signing in at once, so the browser opens (or the code is
		// printed) while the IDE is still starting.
		t.mu.Lock()
		t.startSignIn("you are not signed in")
		t.mu.Unlock()
	}
	b := newBridge(ctx, &o, t, stdout)
	return b.run(stdin)
}
