package identity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Options are what New needs besides the configuration.
type Options struct {
	// Config is the `auth` configuration section.
	Config Config
	// PublicURL is the externally visible base URL of this server, e.g.
	// "https://mcp.example.com". The resource (default audience) is
	// PublicURL + ResourcePath.
	PublicURL string
	// ResourcePath is the path of the MCP endpoint. Default "/mcp".
	ResourcePath string
	// Catalog resolves users to Backstage entities. Required.
	Catalog Catalog
	// HTTPClient is used for discovery and JWKS. Default: a client with a
	// 10s timeout.
	HTTPClient *http.Client
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives operational logs (never tokens). Default slog.Default().
	Logger *slog.Logger
	// Cache remembers resolved users for auth.cacheTTL. Default: a bounded
	// cache in this process. With state: redis the server passes a cache
	// shared by every replica; when it cannot answer, users are resolved
	// from Backstage again (never from a stale entry).
	Cache ResolverCache
	// OnFailure, when set, is called once for every request the Middleware
	// rejects, with a short reason (e.g. "no token", "token expired") — for
	// the audit log. It must not block.
	OnFailure func(ctx context.Context, reason string, r *http.Request)
	// ChallengeScope, when set, is named as scope="…" in the 401
	// challenge, so a client asks its authorization server for it (MCP
	// authorization, 2025-11-25: scope selection from WWW-Authenticate).
	ChallengeScope string
}

// Authenticator verifies bearer tokens and resolves them to Principals.
// It is safe for concurrent use.
type Authenticator struct {
	cfg          Config
	publicURL    string
	resource     string
	metadataURL  string
	client       *http.Client
	now          func() time.Time
	log          *slog.Logger
	onFailure    func(ctx context.Context, reason string, r *http.Request)
	scope        string
	issuers      map[string]*issuerVerifier
	resolver     *Resolver
	metadataJSON []byte
	verified     *verifiedTokens
}

// issuerVerifier verifies tokens of one issuer. Discovery happens on first
// use (so the server starts while an IdP is down) and is retried at most once
// per key refetch interval after a failure.
type issuerVerifier struct {
	cfg     IssuerConfig
	allowed map[string]bool

	mu          sync.Mutex
	verifier    *oidc.IDTokenVerifier
	keys        *boundedKeySet
	lastAttempt time.Time
	lastErr     error
}

// New builds an Authenticator. It does not contact any issuer.
func New(opts Options) (*Authenticator, error) {
	publicURL := strings.TrimRight(opts.PublicURL, "/")
	path := opts.ResourcePath
	if path == "" {
		path = "/mcp"
	}
	resource := ""
	if publicURL != "" {
		resource = publicURL + path
	}
	cfg, err := opts.Config.withDefaults(resource)
	if err != nil {
		return nil, err
	}
	if publicURL == "" {
		return nil, errors.New("identity: a public URL is required (for resource metadata)")
	}
	if opts.Catalog == nil {
		return nil, errors.New("identity: a catalog is required to resolve users")
	}
	a := &Authenticator{
		cfg:         cfg,
		publicURL:   publicURL,
		resource:    cfg.Audience,
		metadataURL: publicURL + "/.well-known/oauth-protected-resource" + path,
		client:      opts.HTTPClient,
		now:         opts.Now,
		log:         opts.Logger,
		onFailure:   opts.OnFailure,
		scope:       sanitizeScope(opts.ChallengeScope),
		issuers:     make(map[string]*issuerVerifier, len(cfg.Issuers)),
		verified:    newVerifiedTokens(),
	}
	if a.client == nil {
		a.client = &http.Client{Timeout: 10 * time.Second}
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	for _, is := range cfg.Issuers {
		iv := &issuerVerifier{cfg: is}
		if len(is.AllowedClientIDs) > 0 {
			iv.allowed = make(map[string]bool, len(is.AllowedClientIDs))
			for _, id := range is.AllowedClientIDs {
				iv.allowed[id] = true
			}
		}
		a.issuers[is.URL] = iv
	}
	cache := opts.Cache
	if cache == nil {
		cache = NewMemoryCache(DefaultCacheSize, a.now)
	}
	a.resolver = newResolver(opts.Catalog, cfg, cache, a.log)
	if a.metadataJSON, err = a.buildMetadata(); err != nil {
		return nil, err
	}
	return a, nil
}

// Resource returns this server's resource identifier (the required audience).
func (a *Authenticator) Resource() string { return a.resource }

// ResourceMetadataURL returns the URL of the Protected Resource Metadata
// advertised in 401 challenges.
func (a *Authenticator) ResourceMetadataURL() string { return a.metadataURL }

// Resolver returns the user resolver, e.g. to resolve an insecure local user.
func (a *Authenticator) Resolver() *Resolver { return a.resolver }

// ResolveRef fills OwnershipRefs of p (whose User.Ref is set) from the
// catalog, e.g. for InsecureLocalUser.
func (a *Authenticator) ResolveRef(ctx context.Context, p *Principal) error {
	refs, err := a.resolver.OwnershipRefs(ctx, p.User.Ref)
	if err != nil {
		return err
	}
	p.User.OwnershipRefs = refs
	return nil
}

// VerifyToken verifies raw (a JWT access token) and resolves its user.
// Verification failures are *TokenError (errors.Is ErrInvalidToken); a user
// without entity is ErrUnknownUser; catalog failures are returned wrapped.
func (a *Authenticator) VerifyToken(ctx context.Context, raw string) (*Principal, error) {
	p, err := a.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := a.resolver.resolve(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// verify checks the token and builds an unresolved Principal.
func (a *Authenticator) verify(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" {
		return nil, ErrNoToken
	}
	if len(raw) > a.cfg.MaxTokenBytes {
		return nil, tokenErr("token too large", nil)
	}
	sum := sha256.Sum256([]byte(raw))
	now := a.now()
	if p, iat, ok := a.verified.get(sum, now); ok {
		if err := a.checkAge(now, p.ExpiresAt, iat); err != nil {
			return nil, err
		}
		return p, nil
	}
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, tokenErr("malformed token", err)
	}
	iv, ok := a.issuers[iss]
	if !ok {
		return nil, tokenErr("untrusted issuer", nil)
	}
	v, err := a.verifierFor(ctx, iv)
	if err != nil {
		return nil, tokenErr("issuer unavailable", err)
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, tokenErr(classify(err), err)
	}
	if len(iv.cfg.Audiences) > 0 && !slices.ContainsFunc(tok.Audience, func(aud string) bool {
		return slices.Contains(iv.cfg.Audiences, aud)
	}) {
		return nil, tokenErr("wrong audience", nil)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, tokenErr("malformed claims", err)
	}
	skew := a.cfg.ClockSkew
	if tok.Subject == "" {
		return nil, tokenErr("missing sub", nil)
	}
	if tok.Expiry.IsZero() {
		return nil, tokenErr("missing exp", nil)
	}
	if nbf, ok := numericClaim(claims, "nbf"); ok && now.Add(skew).Before(nbf) {
		return nil, tokenErr("token not yet valid", nil)
	}
	if !tok.IssuedAt.IsZero() && now.Add(skew).Before(tok.IssuedAt) {
		return nil, tokenErr("token issued in the future", nil)
	}
	if err := a.checkAge(now, tok.Expiry, tok.IssuedAt); err != nil {
		return nil, err
	}
	clientID := firstString(claims, "azp", "client_id", "appid", "cid")
	if iv.allowed != nil && !iv.allowed[clientID] {
		return nil, tokenErr("client not allowed", nil)
	}
	p := &Principal{
		User: User{
			Sub:    tok.Subject,
			Email:  stringClaim(claims, a.cfg.EmailClaim),
			Name:   stringClaim(claims, a.cfg.NameClaim),
			Groups: stringsClaim(claims, a.cfg.GroupsClaim),
			Claims: claims,
		},
		Agent:     Agent{ClientID: clientID},
		Scopes:    scopesFrom(claims),
		Issuer:    tok.Issuer,
		ExpiresAt: tok.Expiry,
		TokenID:   stringClaim(claims, "jti"),
	}
	a.verified.put(sum, p, tok.IssuedAt, now)
	return p, nil
}

// checkAge applies the checks that change with time alone: exp and, with
// maxTokenAge, iat. They run on every use of a token, remembered or not.
func (a *Authenticator) checkAge(now, exp, iat time.Time) error {
	skew := a.cfg.ClockSkew
	if !now.Before(exp.Add(skew)) {
		return tokenErr("token expired", nil)
	}
	if a.cfg.MaxTokenAge > 0 {
		if iat.IsZero() {
			return tokenErr("missing iat", nil)
		}
		if now.Sub(iat) > a.cfg.MaxTokenAge+skew {
			return tokenErr("token too old", nil)
		}
	}
	return nil
}

// verifierFor returns the issuer's verifier, discovering it on first use.
func (a *Authenticator) verifierFor(ctx context.Context, iv *issuerVerifier) (*oidc.IDTokenVerifier, error) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if iv.verifier != nil {
		return iv.verifier, nil
	}
	now := a.now()
	if !iv.lastAttempt.IsZero() && now.Sub(iv.lastAttempt) < a.cfg.KeyRefetchInterval {
		return nil, fmt.Errorf("identity: discovery retry pending: %w", iv.lastErr)
	}
	iv.lastAttempt = now
	jwksURL := iv.cfg.JWKSURL
	if jwksURL == "" {
		dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, a.client), 10*time.Second)
		defer cancel()
		provider, err := oidc.NewProvider(dctx, iv.cfg.URL)
		if err != nil {
			iv.lastErr = err
			a.log.WarnContext(ctx, "identity: issuer discovery failed", "issuer", iv.cfg.URL, "error", err)
			return nil, fmt.Errorf("identity: discovery: %w", err)
		}
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
			iv.lastErr = errors.New("identity: discovery document has no jwks_uri")
			return nil, iv.lastErr
		}
		jwksURL = meta.JWKSURI
	}
	iv.keys = newBoundedKeySet(jwksURL, a.client, a.cfg.KeyRefetchInterval, a.now)
	iv.verifier = oidc.NewVerifier(iv.cfg.URL, iv.keys, &oidc.Config{
		ClientID: a.cfg.Audience,
		// An issuer with its own audiences is checked in verify instead.
		SkipClientIDCheck:    len(iv.cfg.Audiences) > 0,
		SupportedSigningAlgs: allowedAlgNames(),
		// exp and nbf are checked by verify with the configured skew.
		SkipExpiryCheck: true,
		Now:             a.now,
	})
	return iv.verifier, nil
}

// unverifiedIssuer reads the iss claim of a compact JWS without trusting it,
// only to choose the verifier. It rejects anything that is not three
// base64url segments.
func unverifiedIssuer(raw string) (string, error) {
	first := strings.IndexByte(raw, '.')
	if first <= 0 {
		return "", errors.New("not a compact JWS")
	}
	rest := raw[first+1:]
	second := strings.IndexByte(rest, '.')
	if second <= 0 || strings.IndexByte(rest[second+1:], '.') >= 0 || len(rest) == second+1 {
		return "", errors.New("not a compact JWS")
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", errors.New("invalid character")
		}
	}
	payload, err := base64.RawURLEncoding.DecodeString(rest[:second])
	if err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	if claims.Iss == "" {
		return "", errors.New("missing iss")
	}
	return claims.Iss, nil
}

// classify maps go-oidc errors to short, token-free reasons.
func classify(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, errRefetchLimited), strings.Contains(msg, errRefetchLimited.Error()):
		return "unknown signing key"
	case strings.Contains(msg, errUnknownKey.Error()):
		return "unknown signing key"
	case strings.Contains(msg, "malformed jwt"):
		return "malformed token or disallowed algorithm"
	case strings.Contains(msg, "signature"):
		return "bad signature"
	case strings.Contains(msg, "issued by a different provider"):
		return "wrong issuer"
	case strings.Contains(msg, "expected audience"):
		return "wrong audience"
	case strings.Contains(msg, "unmarshal claims"):
		return "malformed claims"
	default:
		return "verification failed"
	}
}

func numericClaim(claims map[string]any, name string) (time.Time, bool) {
	switch v := claims[name].(type) {
	case float64:
		return time.Unix(int64(v), 0), true
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return time.Time{}, false
		}
		return time.Unix(int64(f), 0), true
	}
	return time.Time{}, false
}

// lookup reads a claim by name, or by a dotted path into nested objects
// ("realm_access.roles") when no top-level claim has that exact name.
func lookup(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func stringClaim(claims map[string]any, name string) string {
	v, _ := lookup(claims, name)
	s, _ := v.(string)
	return s
}

func firstString(claims map[string]any, names ...string) string {
	for _, n := range names {
		if s := stringClaim(claims, n); s != "" {
			return s
		}
	}
	return ""
}

// stringsClaim reads a claim that is an array of strings or one string.
func stringsClaim(claims map[string]any, name string) []string {
	v, _ := lookup(claims, name)
	switch t := v.(type) {
	case string:
		if t == "" {
			return nil
		}
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// scopesFrom reads scope (space-separated string or array) or scp (array or
// space-separated string, as Entra ID sends it).
func scopesFrom(claims map[string]any) []string {
	var out []string
	for _, name := range []string{"scope", "scp"} {
		switch t := claims[name].(type) {
		case string:
			out = append(out, strings.Fields(t)...)
		case []any:
			for _, e := range t {
				if s, ok := e.(string); ok {
					out = append(out, strings.Fields(s)...)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
