// Package check tests what a release publishes besides the binaries and
// images: server.json (the MCP registry entry at the repository root),
// deploy/mcpb/manifest.json (the MCP bundle manifest for desktop clients)
// and, after a snapshot or a release, the .mcpb bundles and dist/server.json
// in dist/.
//
//   - server.json is validated against the registry's own published schema
//     (the 2025-12-11 server.schema.json, read from the registry's Go
//     module at the version go.mod pins, so go.sum vouches for its bytes),
//     decoded into the registry's own types, and checked against the rules
//     the registry applies on publish (OCI identifiers carry the version,
//     template variables are declared, …).
//   - manifest.json is validated by the pinned mcpb CLI (`mcpb validate`)
//     and its tools are the server's tools.
//   - One version everywhere: server.json, the OCI tags in it, the bundle
//     manifest and the chart's appVersion agree, and on a release they are
//     the tag's version (RELEASE_VERSION, set by goreleaser's before hook).
//   - One image name everywhere: goreleaser's IMAGE_REPO default, the
//     chart's image.repository, server.json and the README.
//
// It is a separate Go module so that the registry's module and the JSON
// Schema validator stay out of the server's go.mod and its binary. Run it
// with `make release-check` (after the snapshot, with -dist) or
// `cd deploy/release/check && go test ./...`.
package check
