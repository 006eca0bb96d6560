package tools

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

// demoDeps serves the demo catalog from memory over HTTP and returns the
// tools' dependencies on it.
func demoDeps(t testing.TB) *Deps {
	t.Helper()
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	return catalogDeps(t, ents)
}

// catalogDeps serves ents from memory over HTTP.
func catalogDeps(t testing.TB, ents []map[string]any) *Deps {
	t.Helper()
	mc, err := memcatalog.New(ents, memcatalog.WithToken("svc-token"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mc.Handler())
	t.Cleanup(srv.Close)
	c, err := catalog.New(catalog.Config{BaseURL: srv.URL, Token: catalog.StaticToken("svc-token")})
	if err != nil {
		t.Fatal(err)
	}
	return &Deps{Catalog: c, Redactor: identityRedactor{}, Cursors: NewCursorCodec(nil)}
}

func openCtx() context.Context { return WithAccess(context.Background(), OpenAccess{}) }
