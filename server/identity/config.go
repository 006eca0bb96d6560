package identity

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Resolver names, as Backstage names its sign-in resolvers.
const (
	// ResolverEmailMatchingUserEntityProfileEmail finds the User entity whose
	// spec.profile.email equals the token's email claim.
	ResolverEmailMatchingUserEntityProfileEmail = "emailMatchingUserEntityProfileEmail"
	// ResolverEmailLocalPartMatchingUserEntityName finds the User entity whose
	// metadata.name equals the part of the email claim before the "@".
	ResolverEmailLocalPartMatchingUserEntityName = "emailLocalPartMatchingUserEntityName"
	// ResolverUsernameMatchingUserEntityName finds the User entity whose
	// metadata.name equals a username claim (preferred_username by default).
	ResolverUsernameMatchingUserEntityName = "usernameMatchingUserEntityName"
)

// Defaults applied by Config.withDefaults.
const (
	DefaultClockSkew     = 30 * time.Second
	DefaultCacheTTL      = 5 * time.Minute
	DefaultMaxTokenBytes = 8 << 10
	DefaultGroupsClaim   = "groups"
	DefaultEmailClaim    = "email"
	DefaultNameClaim     = "name"
	DefaultResourceName  = "Backstage catalog (backstage-mcp)"
	// DefaultKeyRefetchInterval is the minimum time between two JWKS fetches
	// for one issuer that an unknown key ID may trigger.
	DefaultKeyRefetchInterval = 30 * time.Second
	// DefaultMaxGroupDepth bounds how many parent-group levels are followed.
	DefaultMaxGroupDepth = 8
	// DefaultCacheSize bounds the principal resolution cache.
	DefaultCacheSize = 10000
)

// Config is the `auth` section of the server configuration.
// The zero value plus at least one issuer is a valid configuration.
type Config struct {
	// Issuers are the OpenID providers whose access tokens are accepted.
	// A token is checked against the issuer named by its own iss claim;
	// tokens from any other issuer are rejected.
	Issuers []IssuerConfig `yaml:"issuers"`
	// Audience is this server's resource identifier: every token's aud claim
	// must contain it (RFC 8707). Defaults to the public URL of /mcp, e.g.
	// "https://mcp.example.com/mcp". It is also the `resource` of the
	// Protected Resource Metadata.
	Audience string `yaml:"audience"`
	// ClockSkew is the tolerance applied to exp, nbf and iat. Default 30s.
	ClockSkew time.Duration `yaml:"clockSkew"`
	// MaxTokenAge, when set, rejects tokens whose iat is older than this even
	// if they have not expired (and tokens without iat). Zero disables it.
	MaxTokenAge time.Duration `yaml:"maxTokenAge"`
	// GroupsClaim is the claim carrying the user's IdP groups or roles, e.g.
	// "groups" (Okta, Entra ID), "roles" (Entra ID app roles) or a dotted path
	// such as "realm_access.roles" (Keycloak). Default "groups".
	GroupsClaim string `yaml:"groupsClaim"`
	// EmailClaim is the claim carrying the user's email. Default "email".
	// Entra ID access tokens may need "upn" or "preferred_username".
	EmailClaim string `yaml:"emailClaim"`
	// NameClaim is the claim carrying the user's display name. Default "name".
	NameClaim string `yaml:"nameClaim"`
	// ScopesSupported lists the scopes advertised in the Protected Resource
	// Metadata (for example "catalog.read").
	ScopesSupported []string `yaml:"scopesSupported"`
	// ResourceName is the human-readable resource_name of the Protected
	// Resource Metadata. Default "Backstage catalog (backstage-mcp)".
	ResourceName string `yaml:"resourceName"`
	// Resolver maps a verified user to a Backstage User entity.
	Resolver ResolverConfig `yaml:"resolver"`
	// CacheTTL is how long a resolved user (or a user found to have no
	// entity) is remembered. Default 5m.
	CacheTTL time.Duration `yaml:"cacheTTL"`
	// FallbackRole, when set, is given to users that resolve to no Backstage
	// entity; they then get no user ref and no ownership. Empty (the
	// default) denies such users.
	FallbackRole string `yaml:"fallbackRole"`
	// MaxTokenBytes rejects longer bearer tokens before any parsing.
	// Default 8 KiB.
	MaxTokenBytes int `yaml:"maxTokenBytes"`
	// KeyRefetchInterval is the minimum time between two JWKS refetches of
	// one issuer triggered by an unknown key ID. Default 30s.
	KeyRefetchInterval time.Duration `yaml:"keyRefetchInterval"`
}

// IssuerConfig is one trusted OpenID provider.
type IssuerConfig struct {
	// URL is the issuer identifier exactly as it appears in the iss claim
	// (trailing slash included when the provider uses one). Its discovery
	// document is read from URL + "/.well-known/openid-configuration".
	URL string `yaml:"url"`
	// JWKSURL, when set, is used for signing keys instead of discovery; the
	// provider is then never asked for its discovery document.
	JWKSURL string `yaml:"jwksURL"`
	// Audiences, when set, replaces Config.Audience for tokens of this
	// issuer: their aud must contain one of these values. For providers that
	// cannot put a URL in aud, such as Microsoft Entra ID v2 access tokens
	// (aud is the API application's client ID). Scoped to this issuer, so
	// other issuers' tokens for that value are still refused.
	Audiences []string `yaml:"audiences"`
	// AllowedClientIDs, when set, restricts which OAuth clients (the azp or
	// client_id claim) may present tokens from this issuer.
	AllowedClientIDs []string `yaml:"allowedClientIDs"`
}

// ResolverConfig selects how a user maps to a Backstage User entity.
type ResolverConfig struct {
	// Name is one of emailMatchingUserEntityProfileEmail (default),
	// emailLocalPartMatchingUserEntityName, usernameMatchingUserEntityName.
	Name string `yaml:"name"`
	// Claim is the token claim the resolver reads. Defaults to the email
	// claim for the email resolvers and "preferred_username" for the
	// username resolver.
	Claim string `yaml:"claim"`
}

// withDefaults returns a copy of c with defaults filled in and validates it.
// resource is the default audience (the public URL of /mcp).
func (c Config) withDefaults(resource string) (Config, error) {
	if c.Audience == "" {
		c.Audience = resource
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = DefaultGroupsClaim
	}
	if c.EmailClaim == "" {
		c.EmailClaim = DefaultEmailClaim
	}
	if c.NameClaim == "" {
		c.NameClaim = DefaultNameClaim
	}
	if c.ResourceName == "" {
		c.ResourceName = DefaultResourceName
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.MaxTokenBytes == 0 {
		c.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if c.KeyRefetchInterval == 0 {
		c.KeyRefetchInterval = DefaultKeyRefetchInterval
	}
	if c.Resolver.Name == "" {
		c.Resolver.Name = ResolverEmailMatchingUserEntityProfileEmail
	}
	if c.Resolver.Claim == "" {
		switch c.Resolver.Name {
		case ResolverUsernameMatchingUserEntityName:
			c.Resolver.Claim = "preferred_username"
		default:
			c.Resolver.Claim = c.EmailClaim
		}
	}
	var errs []error
	if len(c.Issuers) == 0 {
		errs = append(errs, errors.New("at least one issuer is required"))
	}
	seen := map[string]bool{}
	for i, is := range c.Issuers {
		if err := checkURL(is.URL); err != nil {
			errs = append(errs, fmt.Errorf("issuers[%d].url: %w", i, err))
		}
		if seen[is.URL] {
			errs = append(errs, fmt.Errorf("issuers[%d].url: duplicate issuer %q", i, is.URL))
		}
		seen[is.URL] = true
		if is.JWKSURL != "" {
			if err := checkURL(is.JWKSURL); err != nil {
				errs = append(errs, fmt.Errorf("issuers[%d].jwksURL: %w", i, err))
			}
		}
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required (or a public URL to derive it from)"))
	}
	switch c.Resolver.Name {
	case ResolverEmailMatchingUserEntityProfileEmail, ResolverEmailLocalPartMatchingUserEntityName, ResolverUsernameMatchingUserEntityName:
	default:
		errs = append(errs, fmt.Errorf("resolver.name: unknown resolver %q", c.Resolver.Name))
	}
	if c.ClockSkew < 0 || c.MaxTokenAge < 0 || c.CacheTTL < 0 || c.MaxTokenBytes < 0 || c.KeyRefetchInterval < 0 {
		errs = append(errs, errors.New("durations and sizes must not be negative"))
	}
	if c.ClockSkew > 5*time.Minute {
		errs = append(errs, errors.New("clockSkew above 5m is not allowed"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("identity: config: %w", err)
	}
	return c, nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q: scheme must be https (or http for loopback tests)", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: host missing", raw)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q: plain http is only allowed for loopback hosts", raw)
	}
	return nil
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}
