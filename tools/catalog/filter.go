package catalog

import "github.com/backstage-mcp/backstage-mcp/policy/filter"

// Filter is one Backstage `filter` query parameter: every key must match
// (AND), and a key matches when the entity's value equals any of its values
// (OR). A key with no values means "the field exists". Separate Filters in
// one query are ORed by Backstage. Its grammar and encoding (Encode) are
// package filter's, the one spelling the policy's pushdown uses too.
type Filter = filter.Clause
