// Package e2e holds the end-to-end suite (build tag e2e): a real Backstage
// backend from npm, a real OpenID provider and real MCP clients, started by
// the harnesses in its sub-packages. Run it with `make e2e`.
package e2e
