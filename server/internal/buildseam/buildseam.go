// Package buildseam holds what tests inside server/ may hand
// server.BuildWithSeams beyond the command-line choices: a catalog of
// their own, a principal taken as verified, a clock for the mirror.
//
// It is internal to server/, so no program outside server/ — the
// backstage-mcp command included — can name a Seams value, and so none
// can call BuildWithSeams: the production path is server.Build, which
// takes only server.BuildOptions.
package buildseam

import (
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/identity"
)

// Seams are the test-only inputs of a build. The zero value is the
// production build.
type Seams struct {
	// DemoEntities, with BuildOptions.Demo, replaces the embedded demo
	// catalog with these entities (served in process by the in-memory
	// catalog), for a catalog of the test's own through the whole stack.
	DemoEntities []map[string]any
	// DemoUpstream, with BuildOptions.Demo, is a Backstage served in
	// process (Backstage's catalog API without a token check, such as the
	// in-memory catalog's Handler): the catalog is then read through the
	// catalog client over HTTP, with its upstream guard, cache and
	// readiness probe, as in passthrough mode against a real Backstage,
	// for tests of that path and tests that change the catalog between
	// mirror syncs. Without it, demo mode reads the demo catalog in
	// process through its Go methods.
	DemoUpstream http.Handler
	// FixedPrincipal, with BuildOptions.LocalUser, replaces the insecure
	// local identity by this principal, taken as verified, for acting as
	// an authenticated user through the whole stack without a token.
	FixedPrincipal *identity.Principal
	// MirrorNow, when set, is the clock the catalog mirror judges its age
	// by, for tests that move time.
	MirrorNow func() time.Time
}

// InProcessTransport is an http.RoundTripper that hands requests to a
// handler in the same process (DemoUpstream).
type InProcessTransport struct{ Handler http.Handler }

// RoundTrip serves req with the handler.
func (t InProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.Handler.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
