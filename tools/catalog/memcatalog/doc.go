// Package memcatalog is an in-memory catalog that answers the way Backstage's
// catalog backend (@backstage/plugin-catalog-backend 4.x) answers its read
// endpoints under /api/catalog, in two ways: as Go calls (Query,
// GetByName, GetByRefs, Facets: a tools.Catalog), which is how the server
// reads it (demo mode, and the catalog mirror's copy); and over HTTP
// (Handler), so the backstage-mcp catalog client can be exercised in tests
// through exactly the code path it uses against a real Backstage. The Go
// calls return what the client would read from the handler
// (TestDirectMatchesHandler); no production path serves the handler.
//
// Each entity is held once, as its JSON encoding; the search index's
// strings are pieces of that encoding (see docs/mirror.md, "The lean
// mirror").
//
// Faithfulness notes (checked against a running 4.0.5 backend):
//
//   - Entities are indexed the way Backstage builds its search table: every
//     leaf under a lowercased dot path, array items under the same path, string
//     array items also as "<path>.<item>" = "true", relations as
//     "relations.<type>" = target ref, values lowercased, values longer than
//     200 characters kept as null. Filters match on that index, so keys and
//     values are case-insensitive, and existence matches null leaves too.
//   - GET /entities/by-query: filter, fields, limit (default 200, no maximum),
//     offset, orderField (only the first is used; entities lacking the field are
//     left out; an entity with several values appears once per value, as in
//     Backstage), fullTextFilterTerm/Fields (SQL LIKE semantics: '%' and '_'
//     are wildcards; without fields the term is matched on the order field or
//     metadata.uid), totalItems=include|exclude, and cursors carrying their own
//     query, order, term and total in Backstage's own base64 JSON layout.
//   - Without orderField the order is by metadata.uid, as in Backstage.
//   - GET /entities/by-name/{kind}/{namespace}/{name}, POST /entities/by-refs
//     (body entityRefs, fields, query; filter query parameter), GET
//     /entity-facets, and the legacy GET /entities (filter, fields, order,
//     limit, offset, after, with its Link header).
//   - Query parameters are checked as Backstage's OpenAPI validator checks them:
//     unknown parameters, empty values, non-integer limit/offset and repeated
//     scalar parameters are InputErrors (400).
//   - Errors carry Backstage's body {"error":{"name","message"},"request":
//     {"method","url"},"response":{"statusCode"}} (without the stack trace).
//     Unknown paths and methods are 404 with an empty body.
//   - Relations are those of BuiltinKindsEntityProcessor, as {type, targetRef}
//     with lowercase refs, deduplicated and sorted by type then target.
//
// A catalog normally assigns deterministic uids and etags and computes the
// relations itself. With the Verbatim option it keeps the uid, etag and
// relations each entity carries, as read from a real Backstage (the
// catalog mirror does this), so that its answers, uid order included, are
// those of the Backstage they came from; Catalog.Update then derives a new
// catalog with some entities replaced or removed, sharing the rest.
//
// Not emulated: Location entities and the managed-by-location annotations a
// real catalog adds when it reads files, the orphan annotation, permissions,
// and the write endpoints.
//
// Example:
//
//	cat, err := memcatalog.New([]map[string]any{{
//		"apiVersion": "backstage.io/v1alpha1",
//		"kind":       "Component",
//		"metadata":   map[string]any{"name": "web"},
//		"spec":       map[string]any{"type": "website", "lifecycle": "production", "owner": "team-a"},
//	}}, memcatalog.WithToken("s3cret"))
//	if err != nil {
//		return err
//	}
//	srv := httptest.NewServer(cat.Handler())
//	defer srv.Close()
//	// GET srv.URL + "/api/catalog/entities/by-query?filter=kind=component"
//	// with "Authorization: Bearer s3cret".
package memcatalog
