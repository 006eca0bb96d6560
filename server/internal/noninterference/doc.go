// Package noninterference is the differential test of backstage-mcp's
// central promise: for a given caller, nothing observable depends on
// entities, fields or secret values that the caller may not see.
//
// A World is a seeded pair of catalogs that differ only in what one
// caller (user:default/nia, of group team-a) may not see: extra hidden
// entities on either side (some pointing at visible ones, so that
// Backstage stores reverse relations on visible entities), other values
// in masked fields, other secret values under redaction, and refs in the
// visible entities' spec fields and relations that name hidden entities
// on one side and nothing on the other. Calls is a seeded sequence of tool
// calls (every tool, every argument kind, text search with fragments of
// the hidden values and with LIKE wildcards, facets over plain, masked and
// ref-valued fields, paging with cursors, repeats within the upstream
// cache window and clock steps past it) that the tests run, as that
// caller, through the whole server (server.Build over the in-memory
// catalog, an in-process MCP client) against both catalogs, requiring
// identical observations: result, isError, text, structured content with
// cursors reduced to their presence, and the timing class of the answer
// (whether the upstream cache answered), reported deterministically by
// the upstream guard's Observe hook on a fake clock.
//
// NONINTERFERENCE_PAIRS sets the number of pairs TestNonInterference runs
// (24 by default); NONINTERFERENCE_KEYS=1 prints every call's upstream
// requests with their timing class, to find where two sides part.
//
//	w := noninterference.NewWorld(7)
//	a, b := w.Catalogs()        // differ only in what nia may not see
//	calls := w.Calls(40)        // the same sequence for both
package noninterference
