// Package doctor checks a backstage-mcp setup end to end and says what to
// fix: `backstage-mcp doctor`.
//
// With a server configuration (the operator's view) it checks the file and
// its policy, reaches Backstage with the service token, reads each identity
// provider's discovery document and keys, and, with the developer's stored
// token, says who it names, its scopes and expiry, and what the policy
// lets that person see (tools, and entities by kind in the live catalog).
// With a shared server's URL (the developer's view, for `connect`) it reads
// the server's protected-resource metadata and its provider's discovery,
// the token `connect` stored, and asks the server itself which tools this
// person gets and who it thinks they are.
//
// Every check is bounded in time; tokens are never printed.
package doctor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
	"github.com/backstage-mcp/backstage-mcp/policy/review"
	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/connect"
	"github.com/backstage-mcp/backstage-mcp/server/login"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Status is a check's outcome.
type Status int

// Outcomes, from best to worst.
const (
	OK Status = iota
	Warn
	Fail
	Skipped
)

// String is the word printed for the status.
func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Warn:
		return "WARN"
	case Fail:
		return "FAIL"
	}
	return "skip"
}

// Result is one check.
type Result struct {
	Check  string
	Status Status
	// Lines say what was found.
	Lines []string
	// Fix says what to do, when Status is Warn or Fail.
	Fix string
}

// Options say what to check.
type Options struct {
	// ConfigFile is a server configuration (operator's view).
	ConfigFile string
	// ServerURL is a shared server's MCP endpoint (developer's view).
	ServerURL string
	// Getenv resolves ${VAR} in the configuration. Default os.Getenv.
	Getenv func(string) string
	// Store holds the developer's tokens. Default login.DefaultStore().
	Store *login.Store
	// HTTPClient is used for every request. Default a 10s-timeout client.
	HTTPClient *http.Client
	// MaxEntities bounds the catalog walk of the policy check. Default 50000.
	MaxEntities int
	// Version is sent as the client version.
	Version string
}

// Run runs the checks that opts allow and returns their results in order.
func Run(ctx context.Context, o Options) []Result {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.MaxEntities <= 0 {
		o.MaxEntities = 50000
	}
	if o.Store == nil {
		if s, err := login.DefaultStore(); err == nil {
			o.Store = s
		}
	}
	var out []Result
	if o.ConfigFile != "" {
		out = append(out, configChecks(ctx, &o)...)
	}
	if o.ServerURL != "" {
		out = append(out, serverChecks(ctx, &o)...)
	}
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Write prints results for a person.
func Write(w io.Writer, rs []Result) {
	for _, r := range rs {
		fmt.Fprintf(w, "%-4s  %s\n", r.Status, r.Check)
		for _, l := range r.Lines {
			fmt.Fprintf(w, "      %s\n", l)
		}
		if r.Fix != "" && (r.Status == Warn || r.Status == Fail) {
			fmt.Fprintf(w, "      fix: %s\n", r.Fix)
		}
	}
	fails, warns := 0, 0
	for _, r := range rs {
		switch r.Status {
		case Fail:
			fails++
		case Warn:
			warns++
		}
	}
	switch {
	case fails > 0:
		fmt.Fprintf(w, "\n%d check(s) failed, %d warning(s): fix the FAIL lines above first.\n", fails, warns)
	case warns > 0:
		fmt.Fprintf(w, "\nAll checks passed with %d warning(s).\n", warns)
	default:
		fmt.Fprintln(w, "\nAll checks passed.")
	}
}

func fail(check, fix string, lines ...string) Result {
	return Result{Check: check, Status: Fail, Lines: lines, Fix: fix}
}

// configChecks is the operator's view.
func configChecks(ctx context.Context, o *Options) []Result {
	cfg, pol, res := checkConfig(o)
	out := []Result{res}
	if cfg == nil {
		return append(out,
			Result{Check: "backstage", Status: Skipped, Lines: []string{"no valid configuration"}},
			Result{Check: "identity provider", Status: Skipped, Lines: []string{"no valid configuration"}})
	}
	out = append(out, checkBackstage(ctx, o, cfg))
	for _, is := range cfg.Auth.Issuers {
		out = append(out, checkProvider(ctx, o, is.URL))
	}
	if len(cfg.Auth.Issuers) == 0 {
		out = append(out, Result{Check: "identity provider", Status: Warn,
			Lines: []string{"auth.issuers is empty: HTTP needs tokens from a provider, and stdio runs without a verified user"},
			Fix:   "add your OpenID provider under auth.issuers (see docs/identity.md)"})
		return out
	}
	issuer := cfg.Auth.Stdio.Issuer
	if issuer == "" {
		issuer = cfg.Auth.Issuers[0].URL
	}
	audience := cfg.Auth.Audience
	if audience == "" && cfg.Server.PublicURL != "" {
		audience = strings.TrimSuffix(cfg.Server.PublicURL, "/") + "/mcp"
	}
	tokRes, claims := checkToken(ctx, o, issuer, issuer, audience, "backstage-mcp login --issuer "+issuer+" --client-id ID")
	out = append(out, tokRes)
	if pol != nil {
		out = append(out, checkPolicy(ctx, o, cfg, pol, claims))
	}
	return out
}

func checkConfig(o *Options) (*server.Config, *policy.Policy, Result) {
	const name = "config"
	cfg, err := server.LoadConfig(o.ConfigFile, o.Getenv)
	if err != nil {
		return nil, nil, fail(name, "correct the file: `backstage-mcp config check "+o.ConfigFile+"` prints every problem with its line", oneLine(err.Error()))
	}
	if cfg.Policy.File == "" {
		return cfg, nil, Result{Check: name, Status: Warn, Lines: []string{o.ConfigFile + " is valid, but sets no policy.file"},
			Fix: "set policy.file: serve refuses to start without a policy (see policy/doc.md)"}
	}
	data, err := os.ReadFile(cfg.Policy.File)
	if err != nil {
		return cfg, nil, fail(name, "point policy.file at a readable policy (relative paths are relative to the config file)", "policy.file: "+err.Error())
	}
	if diags := policyfile.Check(data, cfg.Policy.File); policyfile.HasErrors(diags) {
		lines := []string{}
		for _, d := range diags {
			if d.Severity == policy.SeverityError {
				lines = append(lines, d.String())
			}
		}
		return cfg, nil, fail(name, "correct the policy: `backstage-mcp policy check "+cfg.Policy.File+"`", lines...)
	}
	pol, doc, err := policyfile.Parse(data, cfg.Policy.File)
	if err != nil {
		return cfg, nil, fail(name, "correct the policy: `backstage-mcp policy check "+cfg.Policy.File+"`", oneLine(err.Error()))
	}
	if err := cfg.CheckPolicy(doc); err != nil {
		return cfg, nil, fail(name, "make the policy and the config agree (rate classes, scopes)", oneLine(err.Error()))
	}
	return cfg, pol, Result{Check: name, Status: OK, Lines: []string{
		fmt.Sprintf("%s is valid; policy %s has %d role(s)", o.ConfigFile, cfg.Policy.File, len(doc.Roles)),
	}}
}

// serviceToken is the configured Backstage credential.
func serviceToken(cfg *server.Config) (string, error) {
	if cfg.Backstage.TokenFile != "" {
		b, err := os.ReadFile(cfg.Backstage.TokenFile)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return cfg.Backstage.Token, nil
}

func checkBackstage(ctx context.Context, o *Options, cfg *server.Config) Result {
	const name = "backstage"
	base := strings.TrimSuffix(cfg.Backstage.BaseURL, "/")
	if base == "" {
		return fail(name, "set backstage.baseUrl (or BACKSTAGE_MCP_BACKSTAGE_URL) to your Backstage backend, e.g. http://backstage:7007", "backstage.baseUrl is not set")
	}
	tok, err := serviceToken(cfg)
	if err != nil {
		return fail(name, "make backstage.tokenFile readable by the server", "backstage.tokenFile: "+err.Error())
	}
	if tok == "" {
		return fail(name, "set backstage.token (from an environment variable: ${BACKSTAGE_TOKEN}) or backstage.tokenFile to a static token of Backstage's backend.auth.externalAccess", "no service token configured")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := base + "/api/catalog/entities/by-query?limit=1&fields=kind"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(name, "correct backstage.baseUrl", err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		return fail(name, "check that "+base+" is Backstage's backend and reachable from here (network, DNS, proxy)", "GET "+u+": "+oneLine(err.Error()))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fail(name, "Backstage refused the service token: add it to backend.auth.externalAccess (type static, with a subject) in Backstage's app-config, and the same value to backstage.token or tokenFile",
			fmt.Sprintf("GET %s: %d", u, resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return fail(name, "check that "+base+" is Backstage's backend (not the frontend) with the catalog plugin",
			fmt.Sprintf("GET %s: %d %s", u, resp.StatusCode, oneLine(string(raw[:min(len(raw), 200)]))))
	}
	var page struct {
		TotalItems int `json:"totalItems"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return fail(name, "check that "+base+" is Backstage's backend (the answer is not the catalog's)", "GET "+u+": "+err.Error())
	}
	return Result{Check: name, Status: OK, Lines: []string{fmt.Sprintf("%s answered with the service token: %d entities in the catalog", base, page.TotalItems)}}
}

// discovery is the part of a provider's discovery document doctor reads.
type discovery struct {
	Issuer       string   `json:"issuer"`
	JWKS         string   `json:"jwks_uri"`
	Token        string   `json:"token_endpoint"`
	Authorize    string   `json:"authorization_endpoint"`
	Device       string   `json:"device_authorization_endpoint"`
	Registration string   `json:"registration_endpoint"`
	PKCE         []string `json:"code_challenge_methods_supported"`
	Grants       []string `json:"grant_types_supported"`
}

func checkProvider(ctx context.Context, o *Options, issuer string) Result {
	name := "identity provider " + issuer
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	var d discovery
	if err := getJSON(ctx, o.HTTPClient, u, &d); err != nil {
		return fail(name, "check the issuer URL (exactly as in the tokens' iss claim) and that the provider is reachable from here", oneLine(err.Error()))
	}
	if d.Issuer != issuer {
		return fail(name, fmt.Sprintf("set the issuer URL to %q, exactly as the provider names itself (trailing slash included)", d.Issuer),
			fmt.Sprintf("the discovery document names issuer %q, not %q", d.Issuer, issuer))
	}
	var keys struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, o.HTTPClient, d.JWKS, &keys); err != nil || len(keys.Keys) == 0 {
		msg := "no signing keys"
		if err != nil {
			msg = oneLine(err.Error())
		}
		return fail(name, "the provider's jwks_uri must serve its signing keys to this server", "jwks_uri "+d.JWKS+": "+msg)
	}
	lines := []string{fmt.Sprintf("discovery and %d signing key(s) read", len(keys.Keys))}
	var missing []string
	feature := func(ok bool, what, path string) {
		if ok {
			lines = append(lines, what+": yes ("+path+")")
		} else {
			lines = append(lines, what+": no")
		}
	}
	feature(d.Device != "", "device flow", "connect --device, login")
	if d.Device == "" {
		missing = append(missing, "the device flow (developers without a browser, `connect --device`)")
	}
	pkce := false
	for _, m := range d.PKCE {
		pkce = pkce || m == "S256"
	}
	feature(d.Authorize != "" && pkce, "authorization code + PKCE S256", "connect, login --browser")
	if !pkce {
		missing = append(missing, "PKCE S256 advertised (browser sign-in)")
	}
	feature(d.Registration != "", "dynamic client registration", "IDEs' native HTTP + OAuth without a client ID")
	r := Result{Check: name, Status: OK, Lines: lines}
	if len(missing) > 0 {
		r.Status = Warn
		r.Fix = "ask your identity team to enable " + strings.Join(missing, " and ") + " for the public client of connect"
	}
	return r
}

// claims is the part of an access token doctor shows.
type claims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Email    string          `json:"email"`
	Name     string          `json:"name"`
	Username string          `json:"preferred_username"`
	Azp      string          `json:"azp"`
	ClientID string          `json:"client_id"`
	Scope    json.RawMessage `json:"scope"`
	Scp      []string        `json:"scp"`
	Aud      json.RawMessage `json:"aud"`
	Exp      int64           `json:"exp"`
	Raw      map[string]any  `json:"-"`
}

func (c *claims) scopes() []string {
	var s string
	if json.Unmarshal(c.Scope, &s) == nil && s != "" {
		return strings.Fields(s)
	}
	var l []string
	if json.Unmarshal(c.Scope, &l) == nil && len(l) > 0 {
		return l
	}
	return c.Scp
}

func (c *claims) audiences() []string {
	var s string
	if json.Unmarshal(c.Aud, &s) == nil {
		return []string{s}
	}
	var l []string
	_ = json.Unmarshal(c.Aud, &l)
	return l
}

func (c *claims) agent() string {
	if c.Azp != "" {
		return c.Azp
	}
	return c.ClientID
}

// decodeJWT reads a JWT's claims without verifying it.
func decodeJWT(tok string) (*claims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: %w", err)
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("not a JWT: %w", err)
	}
	_ = json.Unmarshal(raw, &c.Raw)
	return &c, nil
}

// checkToken reports the stored token under key: who, scopes, expiry,
// audience, and whether the provider's keys verify it.
func checkToken(ctx context.Context, o *Options, key, issuer, audience, signIn string) (Result, *claims) {
	const name = "your token"
	if o.Store == nil {
		return Result{Check: name, Status: Skipped, Lines: []string{"no user config directory"}}, nil
	}
	e, err := o.Store.LoadKey(key)
	if errors.Is(err, login.ErrNotLoggedIn) {
		return Result{Check: name, Status: Warn, Lines: []string{"no stored token in " + o.Store.Path()},
			Fix: "sign in: `" + signIn + "`"}, nil
	}
	if err != nil {
		return fail(name, "fix the token file's permissions (chmod 600) or sign in again: `"+signIn+"`", oneLine(err.Error())), nil
	}
	c, err := decodeJWT(e.Token.AccessToken)
	if err != nil {
		return fail(name, "the server needs JWT access tokens: ask your identity team to issue JWTs for this resource (with Okta, a custom authorization server; with Entra ID, an app ID URI scope)", "the stored access token is "+err.Error()), nil
	}
	who := c.Email
	if who == "" {
		who = c.Username
	}
	lines := []string{
		fmt.Sprintf("user: %s (sub %s%s)", orNone(who), c.Subject, nameSuffix(c.Name)),
		"agent (client): " + orNone(c.agent()),
		"scopes: " + orNone(strings.Join(c.scopes(), " ")),
		"audience: " + orNone(strings.Join(c.audiences(), " ")),
	}
	r := Result{Check: name, Status: OK}
	exp := time.Unix(c.Exp, 0)
	now := time.Now()
	switch {
	case c.Exp == 0:
		lines = append(lines, "expiry: none in the token")
	case exp.After(now):
		lines = append(lines, fmt.Sprintf("expires: %s (in %s)", exp.Local().Format(time.RFC3339), exp.Sub(now).Round(time.Second)))
	case e.Token.RefreshToken != "":
		lines = append(lines, fmt.Sprintf("expired %s ago; a refresh token is stored, so it is refreshed on next use", now.Sub(exp).Round(time.Second)))
	default:
		lines = append(lines, fmt.Sprintf("expired %s ago and there is no refresh token", now.Sub(exp).Round(time.Second)))
		r.Status, r.Fix = Fail, "sign in again: `"+signIn+"` (ask for offline_access to get a refresh token)"
	}
	if audience != "" && !contains(c.audiences(), audience) {
		lines = append(lines, "the token is not for "+audience)
		r.Status = Fail
		r.Fix = "the token's aud must contain " + audience + ": sign in with the resource parameter (connect sends it), or set auth.issuers[].audiences to what your provider puts in aud"
	}
	if issuer != "" && c.Issuer != issuer {
		lines = append(lines, "the token was issued by "+c.Issuer+", not "+issuer)
		r.Status, r.Fix = Fail, "sign in with the issuer the server trusts: `"+signIn+"`"
	}
	if r.Status == OK {
		if err := verify(ctx, o, c.Issuer, e.Token.AccessToken); err != nil {
			lines = append(lines, "signature: "+oneLine(err.Error()))
			r.Status, r.Fix = Fail, "the provider's keys do not verify the stored token: sign in again: `"+signIn+"`"
		} else {
			lines = append(lines, "signature: verified with the provider's keys")
		}
	}
	r.Lines = lines
	return r, c
}

func verify(ctx context.Context, o *Options, issuer, tok string) error {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.HTTPClient), 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return err
	}
	_, err = p.Verifier(&oidc.Config{SkipClientIDCheck: true, SkipExpiryCheck: true}).Verify(ctx, tok)
	return err
}

// checkPolicy says what the policy lets the token's user see.
func checkPolicy(ctx context.Context, o *Options, cfg *server.Config, pol *policy.Policy, c *claims) Result {
	const name = "policy for you"
	if c == nil {
		return Result{Check: name, Status: Skipped, Lines: []string{"no token: pass --config with a signed-in user to see what the policy grants them"}}
	}
	groupsClaim := cfg.Auth.GroupsClaim
	if groupsClaim == "" {
		groupsClaim = "groups"
	}
	s := policy.Subject{Email: c.Email, Sub: c.Subject, ClientID: c.agent(), Scopes: c.scopes(), Authenticated: true,
		IdPGroups: stringsAt(c.Raw, groupsClaim)}
	var lines []string
	var cat review.Catalog
	if cl, err := server.NewCatalogClient(cfg, o.Version, nil, nil); err == nil {
		cat = server.ReviewCatalog(cl)
	}
	if cat != nil && c.Email != "" {
		lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		ref, err := cat.UserByEmail(lctx, c.Email)
		if err == nil {
			s.UserRef = ref
			if refs, err := cat.OwnershipRefs(lctx, ref); err == nil {
				s.OwnershipRefs = refs
			}
			lines = append(lines, fmt.Sprintf("Backstage user: %s; groups: %s", ref, orNone(strings.Join(tailOf(s.OwnershipRefs), ", "))))
		} else if errors.Is(err, review.ErrNotInCatalog) {
			lines = append(lines, "no User entity has spec.profile.email="+c.Email)
		} else {
			lines = append(lines, "user lookup: "+oneLine(err.Error()))
		}
		cancel()
	}
	g := pol.Grant(s)
	tools := g.AllowedTools()
	lines = append(lines, "roles: "+orNone(strings.Join(g.Roles(), ", ")), "tools: "+orNone(strings.Join(tools, ", ")))
	if len(tools) == 0 {
		return fail(name, "no role of the policy binds this user with these scopes: check the token's groups and scopes against the roles' bind and the policy's scopes mapping (`backstage-mcp policy explain --config "+o.ConfigFile+" --email "+c.Email+" --tool whoami`)", lines...)
	}
	if cat != nil {
		kinds := map[string]int{}
		n := 0
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := cat.Entities(wctx, func(e map[string]any) bool {
			n++
			if g.Entity(e).Allowed {
				k, _ := e["kind"].(string)
				kinds[strings.ToLower(k)]++
			}
			return n < o.MaxEntities
		})
		cancel()
		if err != nil {
			lines = append(lines, "entities: could not read the catalog: "+oneLine(err.Error()))
		} else {
			names := make([]string, 0, len(kinds))
			for k := range kinds {
				names = append(names, k)
			}
			sort.Strings(names)
			parts := make([]string, 0, len(names))
			for _, k := range names {
				parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
			}
			lines = append(lines, fmt.Sprintf("entities visible of %d read: %s", n, orNone(strings.Join(parts, ", "))))
		}
	}
	return Result{Check: name, Status: OK, Lines: lines}
}

// serverChecks is the developer's view of a shared server.
func serverChecks(ctx context.Context, o *Options) []Result {
	const name = "server"
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	res, err := connect.Discover(dctx, o.HTTPClient, o.ServerURL)
	cancel()
	if err != nil {
		return []Result{fail(name, "check the URL with your platform team: it is the server's /mcp endpoint, and the server must set auth.issuers and server.publicURL", oneLine(err.Error()))}
	}
	out := []Result{{Check: name, Status: OK, Lines: []string{
		"resource: " + res.Resource,
		"identity providers: " + strings.Join(res.AuthorizationServers, ", "),
		"scopes: " + orNone(strings.Join(res.ScopesSupported, " ")),
	}}}
	out = append(out, checkProvider(ctx, o, res.AuthorizationServers[0]))
	tokRes, c := checkToken(ctx, o, connect.StoreKey(o.ServerURL), "", res.Resource, "backstage-mcp connect --login --client-id ID "+o.ServerURL)
	out = append(out, tokRes)
	if c == nil || tokRes.Status == Fail {
		return out
	}
	return append(out, checkServerSees(ctx, o, connect.StoreKey(o.ServerURL)))
}

// checkServerSees asks the server, with the stored token, who it thinks
// the developer is and which tools they get.
func checkServerSees(ctx context.Context, o *Options, key string) Result {
	const name = "what the server lets you do"
	e, err := o.Store.LoadKey(key)
	if err != nil {
		return fail(name, "sign in again", oneLine(err.Error()))
	}
	if !e.Token.Expiry.IsZero() && time.Now().After(e.Token.Expiry) {
		return Result{Check: name, Status: Skipped, Lines: []string{"the stored access token has expired; `connect` refreshes it on next use"}}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.NewStreamableHttpClient(o.ServerURL,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + e.Token.AccessToken}),
		transport.WithHTTPBasicClient(o.HTTPClient))
	if err != nil {
		return fail(name, "check the server URL", oneLine(err.Error()))
	}
	defer func() { _ = c.Close() }()
	if err := c.Start(ctx); err != nil {
		return fail(name, "check the server URL", oneLine(err.Error()))
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "backstage-mcp-doctor", Version: o.Version}
	if _, err := c.Initialize(ctx, init); err != nil {
		return fail(name, "the server refused the stored token: sign in again (`backstage-mcp connect --login`), and if that does not help, show this to your platform team", oneLine(err.Error()))
	}
	tl, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return fail(name, "show this to your platform team", oneLine(err.Error()))
	}
	names := make([]string, 0, len(tl.Tools))
	for _, t := range tl.Tools {
		names = append(names, t.Name)
	}
	sort.Strings(names)
	lines := []string{"tools: " + orNone(strings.Join(names, ", "))}
	if contains(names, "whoami") {
		if r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}}); err == nil && !r.IsError {
			var w struct {
				User          string   `json:"user"`
				OwnershipRefs []string `json:"ownershipRefs"`
				Scopes        []string `json:"scopes"`
			}
			if b, err := json.Marshal(r.StructuredContent); err == nil && json.Unmarshal(b, &w) == nil {
				lines = append(lines, "you are "+orNone(w.User)+"; groups: "+orNone(strings.Join(tailOf(w.OwnershipRefs), ", ")))
			}
		}
	}
	if len(names) == 0 {
		return fail(name, "the server's policy grants you no tool: ask your platform team which group or scope you need (`backstage-mcp policy explain` on their side)", lines...)
	}
	return Result{Check: name, Status: OK, Lines: lines}
}

func getJSON(ctx context.Context, c *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

func stringsAt(m map[string]any, path string) []string {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	switch v := cur.(type) {
	case string:
		return []string{v}
	case []any:
		out := []string{}
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func tailOf(l []string) []string {
	if len(l) <= 1 {
		return nil
	}
	return l[1:]
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func nameSuffix(n string) string {
	if n == "" {
		return ""
	}
	return ", " + n
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
