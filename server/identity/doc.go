// Package identity turns a bearer token into a verified Principal: the user an
// agent acts for, the agent itself, and the scopes the token grants.
//
// It implements the resource-server side of the MCP authorization spec:
//
//   - Authenticator.VerifyToken checks a JWT access token against one of the
//     configured OpenID issuers (JWKS signature with asymmetric algorithms only,
//     iss, aud containing this server's resource, exp/nbf with a configured
//     skew, sub, optional maximum token age) and resolves the user to a
//     Backstage User entity and its transitive groups (ownership refs).
//   - Authenticator.Middleware answers requests without a valid token with the
//     401 challenge that points at the Protected Resource Metadata (RFC 9728),
//     served by Authenticator.ProtectedResourceMetadata.
//
// The user's token never leaves this package except as the verified claims in
// the Principal; it is never logged and never forwarded.
//
// Typical wiring:
//
//	auth, err := identity.New(identity.Options{
//		Config:    cfg.Auth,
//		PublicURL: "https://mcp.example.com",
//		Catalog:   catalogAdapter,
//	})
//	mux.Handle("/.well-known/oauth-protected-resource", auth.ProtectedResourceMetadata())
//	mux.Handle("/.well-known/oauth-protected-resource/mcp", auth.ProtectedResourceMetadata())
//	mux.Handle("/mcp", auth.Middleware(mcpHandler))
package identity
