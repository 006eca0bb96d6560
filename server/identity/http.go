package identity

import (
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Middleware requires a valid bearer token on every request and puts the
// resolved Principal in the request context (see FromContext).
//
//   - no token: 401, WWW-Authenticate: Bearer resource_metadata="…"
//   - invalid token: 401 with error="invalid_token" and a short description
//   - a verified user without Backstage entity (and no fallback role): 403
//   - catalog unavailable while resolving: 503
//
// Every rejection calls Options.OnFailure.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := bearerToken(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		ctx, span := trace.SpanFromContext(r.Context()).TracerProvider().Tracer(tracerName).Start(r.Context(), "identity.verify")
		p, err := a.VerifyToken(ctx, raw)
		if err != nil {
			span.SetStatus(codes.Error, "token rejected")
			span.End()
			a.fail(w, r, err)
			return
		}
		span.End()
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

const tracerName = "github.com/backstage-mcp/backstage-mcp/server/identity"

// ReasonResolutionUnavailable is the failure reason (503) of a request
// whose token verified but whose user could not be looked up because the
// catalog did not answer: a dependency's failure, not the caller's.
const ReasonResolutionUnavailable = "user resolution unavailable"

var errMultipleAuthHeaders = errors.New("identity: several Authorization headers")

// bearerToken extracts the token of an "Authorization: Bearer" header.
// Another scheme counts as no token.
func bearerToken(r *http.Request) (string, error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", ErrNoToken
	}
	if len(h) > 1 {
		return "", errMultipleAuthHeaders
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoToken
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", ErrNoToken
	}
	return tok, nil
}

// fail writes the response for a rejected request and reports it.
func (a *Authenticator) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		reason string
		status int
		header string
	)
	var te *TokenError
	switch {
	case errors.Is(err, ErrNoToken):
		reason, status = "no token", http.StatusUnauthorized
		header = fmt.Sprintf(`Bearer resource_metadata=%q`, a.metadataURL) + a.scopeParam()
	case errors.Is(err, errMultipleAuthHeaders):
		reason, status = "several authorization headers", http.StatusBadRequest
		header = fmt.Sprintf(`Bearer error="invalid_request", error_description="several Authorization headers", resource_metadata=%q`, a.metadataURL)
	case errors.As(err, &te):
		reason, status = te.Reason, http.StatusUnauthorized
		header = fmt.Sprintf(`Bearer error="invalid_token", error_description=%q, resource_metadata=%q`, te.Reason, a.metadataURL) + a.scopeParam()
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrAmbiguousUser), errors.Is(err, ErrInvalidFilterValue):
		// The token is valid but names nobody this server may act for.
		reason, status = "user not resolvable", http.StatusForbidden
	default:
		reason, status = ReasonResolutionUnavailable, http.StatusServiceUnavailable
	}
	a.log.InfoContext(r.Context(), "identity: request rejected", "reason", reason, "status", status, "error", err)
	if a.onFailure != nil {
		a.onFailure(r.Context(), reason, r)
	}
	if header != "" {
		w.Header().Set("WWW-Authenticate", header)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": reason})
}

// scopeParam is the challenge's scope parameter, empty when no scope is
// required. The value passed sanitizeScope, so it cannot leave the quotes.
func (a *Authenticator) scopeParam() string {
	if a.scope == "" {
		return ""
	}
	return `, scope="` + a.scope + `"`
}

// InsufficientScope answers 403 with error="insufficient_scope" naming the
// scope needed. Prefer Authenticator.InsufficientScope, which also points at
// the resource metadata.
func InsufficientScope(w http.ResponseWriter, scope string) {
	writeInsufficientScope(w, scope, "")
}

// InsufficientScope answers 403 with error="insufficient_scope", the scope
// needed and the resource metadata URL.
func (a *Authenticator) InsufficientScope(w http.ResponseWriter, scope string) {
	writeInsufficientScope(w, scope, a.metadataURL)
}

func writeInsufficientScope(w http.ResponseWriter, scope, metadataURL string) {
	h := `Bearer error="insufficient_scope", scope="` + sanitizeScope(scope) + `"`
	if metadataURL != "" {
		h += `, resource_metadata="` + metadataURL + `"`
	}
	w.Header().Set("WWW-Authenticate", h)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "insufficient_scope", "scope": sanitizeScope(scope)})
}

// sanitizeScope keeps only RFC 6749 scope-token characters and single spaces,
// so the value can never break out of the quoted header parameter.
func sanitizeScope(s string) string {
	var b strings.Builder
	for _, f := range strings.Fields(s) {
		tok := strings.Map(func(r rune) rune {
			if r == 0x21 || (r >= 0x23 && r <= 0x5b) || (r >= 0x5d && r <= 0x7e) {
				return r
			}
			return -1
		}, f)
		if tok == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// ProtectedResourceMetadata serves the RFC 9728 document. Mount it at
// /.well-known/oauth-protected-resource and at
// /.well-known/oauth-protected-resource/mcp. It needs no authentication.
func (a *Authenticator) ProtectedResourceMetadata() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(a.metadataJSON)
	})
}

// protectedResourceMetadata is the RFC 9728 document.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

func (a *Authenticator) buildMetadata() ([]byte, error) {
	servers := make([]string, 0, len(a.cfg.Issuers))
	for _, is := range a.cfg.Issuers {
		servers = append(servers, is.URL)
	}
	b, err := json.Marshal(protectedResourceMetadata{
		Resource:               a.resource,
		AuthorizationServers:   servers,
		ScopesSupported:        a.cfg.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           a.cfg.ResourceName,
	})
	if err != nil {
		return nil, fmt.Errorf("identity: resource metadata: %w", err)
	}
	return b, nil
}
