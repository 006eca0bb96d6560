package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

// DemoBaseURL is the base URL the demo catalog client uses; requests never
// leave the process.
const DemoBaseURL = "http://demo-catalog.invalid"

// NewDemoCatalog serves the embedded demo catalog in-process through the
// same catalog client code path as a real Backstage: the client's HTTP
// transport calls the in-memory catalog's handler directly.
func NewDemoCatalog() (*catalog.Client, error) { return newDemoCatalog(nil, nil, nil, nil) }

// newDemoCatalog serves ents (the embedded demo catalog when nil).
func newDemoCatalog(ents []map[string]any, guard catalog.Guard, observe catalog.Observer, tracing *Tracing) (*catalog.Client, error) {
	if ents == nil {
		var err error
		if ents, err = demo.Entities(); err != nil {
			return nil, fmt.Errorf("server: demo catalog: %w", err)
		}
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	mc, err := memcatalog.New(ents, memcatalog.WithToken(token))
	if err != nil {
		return nil, fmt.Errorf("server: demo catalog: %w", err)
	}
	return catalog.New(catalog.Config{
		BaseURL:    DemoBaseURL,
		Token:      catalog.StaticToken(token),
		HTTPClient: &http.Client{Transport: tracing.Transport(InProcessTransport{Handler: mc.Handler()})},
		Guard:      guard,
		Observe:    observe,
	})
}

// InProcessTransport is an http.RoundTripper that hands requests to a
// handler in the same process.
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
