package server

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// DemoBaseURL is the base URL of the demo catalog client; requests never
// leave the process.
const DemoBaseURL = demoBaseURL

// NewDemoCatalog is a catalog client of the embedded demo catalog, read
// through its REST emulation in process (as a real Backstage is read).
func NewDemoCatalog() (*catalog.Client, error) {
	mc, err := newDemoCatalog(nil)
	if err != nil {
		return nil, err
	}
	return catalog.New(catalog.Config{BaseURL: DemoBaseURL, Token: catalog.StaticToken("demo"),
		HTTPClient: &http.Client{Transport: buildseam.InProcessTransport{Handler: mc.Handler()}}})
}

// newPassthroughServer is newDemoServerYAML in passthrough mode: the
// demo catalog is a Backstage served in process, read through the catalog
// client over HTTP (upstream guard, cache and readiness probe included).
func newPassthroughServer(t testing.TB, yaml string) *Server {
	t.Helper()
	cfg, err := ParseConfig([]byte(yaml), "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
	s, closeFn, err := BuildWithSeams(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"},
		passthroughSeams(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return s
}

// passthroughSeams make a demo build read the demo catalog as a Backstage
// served in process, through the catalog client (passthrough mode): for
// tests of the upstream guard, metrics, spans and pushed-down filters.
func passthroughSeams(t testing.TB) buildseam.Seams {
	t.Helper()
	mc, err := newDemoCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	return buildseam.Seams{DemoUpstream: mc.Handler()}
}
