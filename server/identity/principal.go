package identity

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Principal is who a call runs as: a verified user, the agent acting for that
// user, and what the agent's token allows.
type Principal struct {
	// User is the person the agent acts for.
	User User
	// Agent is the OAuth client (and MCP client) acting for the user.
	Agent Agent
	// Scopes are the scopes granted to the token (scope or scp claim).
	Scopes []string
	// Issuer is the iss claim of the verified token.
	Issuer string
	// ExpiresAt is the token's exp claim.
	ExpiresAt time.Time
	// TokenID is the jti claim, for audit correlation. It is never the token.
	TokenID string
	// FallbackRole is set, and User.Ref empty, when the user resolved to no
	// Backstage entity and Config.FallbackRole allowed them in.
	FallbackRole string
	// Insecure is true only for the fixed demo identity of InsecureLocalUser.
	Insecure bool
}

// User is the verified person behind a Principal.
type User struct {
	// Sub is the token's sub claim, unique within Issuer.
	Sub string
	// Email is the configured email claim, if present.
	Email string
	// Name is the configured name claim, if present.
	Name string
	// Groups are the IdP groups or roles from the configured groups claim.
	Groups []string
	// Claims are all verified claims of the token, for policy bindings on
	// arbitrary claims. Treat as read-only.
	Claims map[string]any
	// Ref is the Backstage User entity ref, e.g. "user:default/jane".
	// Empty when the user resolved to no entity (see FallbackRole).
	Ref string
	// OwnershipRefs are Ref plus the refs of every group the user belongs to,
	// directly or through parent groups, sorted.
	OwnershipRefs []string
}

// Agent is the client acting for the user.
type Agent struct {
	// ClientID is the OAuth client: the azp claim, else client_id, else appid
	// (Entra ID v1), else cid (Okta).
	ClientID string
	// ClientName is the MCP clientInfo.name of the session (set by the server
	// after initialize; not verified).
	ClientName string
	// ClientVersion is the MCP clientInfo.version of the session.
	ClientVersion string
}

// Key identifies the user across tokens: issuer and subject. It is what a
// session is bound to.
func (p *Principal) Key() string {
	return p.Issuer + "\x00" + p.User.Sub
}

// LimitKey identifies the person for rate limits: the resolved Backstage
// user ref, so that the several IdP subjects of one person (other issuers,
// other client registrations) share one budget; without a ref (a user
// with no Backstage entity, under a fallback role) issuer and subject.
// The two forms cannot collide: a ref never contains a NUL byte.
func (p *Principal) LimitKey() string {
	if p.User.Ref != "" {
		return "ref:" + strings.ToLower(p.User.Ref)
	}
	return "sub:" + p.Key()
}

// HasScope reports whether the token grants scope.
func (p *Principal) HasScope(scope string) bool {
	return slices.Contains(p.Scopes, scope)
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal stored by WithPrincipal (or by the
// Middleware), if any.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// InsecureLocalIssuer is the Issuer of every InsecureLocalUser principal.
const InsecureLocalIssuer = "insecure-local-user"

// InsecureLocalUser returns a fixed identity that was verified by nobody, for
// demos and local development only (the --insecure-local-user flag). ref is a
// Backstage user ref such as "user:default/guest"; its groups are not
// resolved (use Authenticator.ResolveRef to add them).
func InsecureLocalUser(ref string) *Principal {
	return &Principal{
		User: User{
			Sub:           ref,
			Ref:           ref,
			OwnershipRefs: []string{ref},
			Claims:        map[string]any{},
		},
		Agent:    Agent{ClientID: InsecureLocalIssuer},
		Issuer:   InsecureLocalIssuer,
		Insecure: true,
	}
}
