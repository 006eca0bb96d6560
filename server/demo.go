package server

import (
	"fmt"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

// demoBaseURL is the base URL of a catalog client of a Backstage served
// in process (buildseam.Seams.DemoUpstream); requests never leave the
// process.
const demoBaseURL = "http://demo-catalog.invalid"

// newDemoCatalog builds the demo catalog from ents (the embedded demo
// catalog when nil). The tools read it in process through its Go methods
// (memcatalog's direct.go), as they read the mirror's copy: no HTTP
// handler, no URL, no JSON in between. TestDirectMatchesHandler holds
// those methods to the answers the catalog client gets from Backstage's
// REST API as the in-memory catalog serves it.
func newDemoCatalog(ents []map[string]any) (*memcatalog.Catalog, error) {
	if ents == nil {
		var err error
		if ents, err = demo.Entities(); err != nil {
			return nil, fmt.Errorf("server: demo catalog: %w", err)
		}
	}
	mc, err := memcatalog.New(ents)
	if err != nil {
		return nil, fmt.Errorf("server: demo catalog: %w", err)
	}
	return mc, nil
}
