package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// oauthRedirect is the loopback redirect URI registered for the e2e
// OpenID provider's public client. Nothing listens there: the fetcher
// reads the code from the provider's redirect instead of following it.
const oauthRedirect = "http://127.0.0.1/callback"

// oauthHandler is the Go SDK's own authorization code flow (protected
// resource metadata from the 401, authorization server metadata, PKCE,
// code exchange with the resource indicator) for a pre-registered public
// client. Only the person's part, signing in on the provider's page, is
// done here, by posting the e2e provider's login form as a browser would.
func oauthHandler() (*auth.AuthorizationCodeHandler, error) {
	clientID, user, pass := os.Getenv("MCP_OAUTH_CLIENT_ID"), os.Getenv("MCP_OAUTH_USERNAME"), os.Getenv("MCP_OAUTH_PASSWORD")
	if clientID == "" || user == "" || pass == "" {
		return nil, errors.New("oauth mode needs MCP_OAUTH_CLIENT_ID, MCP_OAUTH_USERNAME and MCP_OAUTH_PASSWORD")
	}
	return auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient:      &oauthex.ClientCredentials{ClientID: clientID},
		RedirectURL:              oauthRedirect,
		AuthorizationCodeFetcher: signIn(user, pass),
		Client:                   &http.Client{Timeout: 30 * time.Second, Transport: cleanPaths{http.DefaultTransport}},
	})
}

// cleanPaths collapses doubled slashes in request paths. The e2e provider
// publishes its issuer with a trailing slash, and the endpoint URLs the
// SDK derives from it come out as http://host:port//authorize, which the
// provider's router does not serve; a browser user would never see this,
// as the provider's own pages link correctly.
type cleanPaths struct{ next http.RoundTripper }

func (c cleanPaths) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "//") {
		r = r.Clone(r.Context())
		for strings.Contains(r.URL.Path, "//") {
			r.URL.Path = strings.ReplaceAll(r.URL.Path, "//", "/")
		}
		r.URL.RawPath = ""
	}
	return c.next.RoundTrip(r)
}

// signIn plays the person at the browser: open the authorization URL, sign
// in on the provider's login page, and take the code from the redirect to
// the client's redirect URI.
func signIn(user, pass string) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		jar, err := cookiejar.New(nil)
		if err != nil {
			return nil, err
		}
		var final *url.URL
		browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: cleanPaths{http.DefaultTransport},
			CheckRedirect: func(r *http.Request, _ []*http.Request) error {
				if strings.HasPrefix(r.URL.String(), oauthRedirect) {
					final = r.URL
					return http.ErrUseLastResponse
				}
				return nil
			}}
		resp, err := get(ctx, browser, http.MethodGet, args.URL, nil)
		if err != nil {
			return nil, err
		}
		login := resp.Request.URL
		id := login.Query().Get("authRequestID")
		if id == "" {
			return nil, fmt.Errorf("no login page after the authorization URL (at %s)", login.Redacted())
		}
		form := url.Values{"id": {id}, "username": {user}, "password": {pass}}
		post := &url.URL{Scheme: login.Scheme, Host: login.Host, Path: login.Path}
		if _, err := get(ctx, browser, http.MethodPost, post.String(), form); err != nil {
			return nil, err
		}
		if final == nil {
			return nil, errors.New("the provider did not redirect to the client after sign-in")
		}
		q := final.Query()
		if e := q.Get("error"); e != "" {
			return nil, fmt.Errorf("authorization refused: %s %s", e, q.Get("error_description"))
		}
		return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
	}
}

func get(ctx context.Context, c *http.Client, method, target string, form url.Values) (*http.Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 400 {
		return nil, fmt.Errorf("%s %s: status %d: %.300s", method, target, resp.StatusCode, b)
	}
	return resp, nil
}
