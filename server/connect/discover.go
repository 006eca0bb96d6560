package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Resource is what a server's OAuth protected-resource metadata (RFC 9728)
// says about it.
type Resource struct {
	// Resource is the server's resource identifier: the audience its tokens
	// must carry, sent to the provider as the RFC 8707 resource parameter.
	Resource string `json:"resource"`
	// AuthorizationServers are the issuers whose tokens the server accepts.
	AuthorizationServers []string `json:"authorization_servers"`
	// ScopesSupported are the scopes the server's tools need.
	ScopesSupported []string `json:"scopes_supported"`
	// MetadataURL is where the metadata was read.
	MetadataURL string `json:"-"`
}

// maxMetadata bounds a metadata document.
const maxMetadata = 256 << 10

// CheckServerURL refuses a server URL that would send bearer tokens in the
// clear: it must be https, or http on a loopback address.
func CheckServerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("connect: server URL %q: %w", raw, err)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("connect: server URL %q: want https://HOST/mcp", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("connect: server URL %q: no user info or fragment, please", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("connect: server URL %q: plain http would send your token in the clear; use https (http is allowed on loopback only)", raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Discover reads the protected-resource metadata of the MCP server at
// serverURL: first at the path-suffixed well-known URL, then at the
// server-wide one, then wherever the WWW-Authenticate challenge of an
// unauthenticated request points. The metadata must name a resource on
// the server's own origin and at least one authorization server.
func Discover(ctx context.Context, client *http.Client, serverURL string) (*Resource, error) {
	u, err := CheckServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	origin := u.Scheme + "://" + u.Host
	candidates := []string{}
	if p := strings.TrimSuffix(u.EscapedPath(), "/"); p != "" {
		candidates = append(candidates, origin+"/.well-known/oauth-protected-resource"+p)
	}
	candidates = append(candidates, origin+"/.well-known/oauth-protected-resource")
	var errs []error
	for _, c := range candidates {
		r, err := fetchMetadata(ctx, client, c)
		if err == nil {
			return checkMetadata(r, u)
		}
		errs = append(errs, err)
	}
	if c, err := challengeMetadataURL(ctx, client, serverURL); err == nil {
		r, err := fetchMetadata(ctx, client, c)
		if err == nil {
			return checkMetadata(r, u)
		}
		errs = append(errs, err)
	} else {
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("connect: %s publishes no OAuth protected-resource metadata (is it a backstage-mcp server with auth.issuers set?): %w", serverURL, errors.Join(errs...))
}

func checkMetadata(r *Resource, server *url.URL) (*Resource, error) {
	ru, err := url.Parse(r.Resource)
	if err != nil || r.Resource == "" {
		return nil, fmt.Errorf("connect: metadata at %s names no valid resource (%q)", r.MetadataURL, r.Resource)
	}
	if !strings.EqualFold(ru.Scheme, server.Scheme) || !strings.EqualFold(ru.Host, server.Host) {
		return nil, fmt.Errorf("connect: metadata at %s names resource %s, not on %s://%s; refusing a token for another server", r.MetadataURL, r.Resource, server.Scheme, server.Host)
	}
	if len(r.AuthorizationServers) == 0 {
		return nil, fmt.Errorf("connect: metadata at %s names no authorization server", r.MetadataURL)
	}
	return r, nil
}

func fetchMetadata(ctx context.Context, client *http.Client, u string) (*Resource, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("connect: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxMetadata))
		return nil, fmt.Errorf("connect: GET %s: status %d", u, resp.StatusCode)
	}
	var r Resource
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMetadata)).Decode(&r); err != nil {
		return nil, fmt.Errorf("connect: GET %s: %w", u, err)
	}
	r.MetadataURL = u
	return &r, nil
}

// challengeMetadataURL sends an unauthenticated initialize and returns
// the resource_metadata of the 401's WWW-Authenticate header.
func challengeMetadataURL(ctx context.Context, client *http.Client, serverURL string) (string, error) {
	body := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"backstage-mcp-connect","version":"discovery"}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL, strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("connect: POST %s: %w", serverURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxMetadata))
	if resp.StatusCode != http.StatusUnauthorized {
		return "", fmt.Errorf("connect: POST %s without a token: status %d, want 401 with a challenge", serverURL, resp.StatusCode)
	}
	if m := ResourceMetadataParam(resp.Header.Values("WWW-Authenticate")); m != "" {
		return m, nil
	}
	return "", fmt.Errorf("connect: POST %s: the 401 names no resource_metadata", serverURL)
}

// ResourceMetadataParam returns the resource_metadata parameter of a
// Bearer challenge, or "".
func ResourceMetadataParam(headers []string) string {
	for _, h := range headers {
		_, after, ok := strings.Cut(h, "resource_metadata=")
		if !ok {
			continue
		}
		after = strings.TrimSpace(after)
		if strings.HasPrefix(after, `"`) {
			v, _, ok := strings.Cut(after[1:], `"`)
			if ok {
				return v
			}
			continue
		}
		v, _, _ := strings.Cut(after, ",")
		return strings.TrimSpace(v)
	}
	return ""
}
