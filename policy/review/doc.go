// Package review answers an administrator's questions about a policy over a
// live catalog, offline from the server but with its rules:
//
//   - Graph: what each role of a policy file reaches on its own (tools,
//     entities per kind, field masks), as a stable report;
//   - Compare: what widened or narrowed between two such reports;
//   - Explain: why one subject gets the decision it gets, with the subject's
//     user and groups resolved in the catalog as the server resolves them.
//
// It makes no calls of its own: everything it reads from the catalog comes
// through the Catalog interface, which server.ReviewCatalog implements with
// the server's catalog client and identity resolver, so that `policy graph`
// and `policy explain` cannot drift from what the server decides. The
// command line (cmd/backstage-mcp) only parses flags and prints.
//
//	rep, err := review.Graph(ctx, doc, rawPolicy, server.ReviewCatalog(client), 100000)
//	d := review.Compare(old, rep)
//	fmt.Print(d.String())
package review
