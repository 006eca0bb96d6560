// Package replicas is the multi-replica end-to-end test (build tag e2e):
// two backstage-mcp processes (the real binary) on loopback behind a small
// round-robin proxy, sharing one real redis-server (the Debian package),
// with an in-test OpenID provider (discovery and JWKS on loopback) whose
// tokens the replicas verify. It needs no Backstage: the replicas serve the
// embedded demo catalog.
//
//	go test -race -count=1 -tags e2e ./server/e2e/replicas/
package replicas
