package tools

import (
	"context"
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
)

// Projections: an answer that returns a few fields of each entity (a
// summary, a search result, an agent's "fields") fetches, decodes, masks
// and redacts only those, plus what deciding visibility and masks reads
// (Access.Reads). That is exact, not an approximation:
//
//   - visibility is decided on fields Access.Reads names, which are fetched;
//   - masks and redaction judge a value by its path, its key and its own
//     text, never by its neighbours, with one exception that is fetched
//     too: a "value" or "secretValue" is judged with its sibling "name" or
//     "key" as context;
//   - every field the answer reads (the summary's, the search filters' and
//     the text match's, the agent's fields) is fetched whole, at the
//     first key under metadata and spec and at the top level elsewhere
//     (so that no array index or "length" path is ever sent).
//
// So an answer built from a projected entity is the answer built from the
// whole entity; TestProjectionExact compares both under several policies.

// searchFields are what the search filters and the text match read.
var searchFields = []string{
	"kind", "metadata.name", "metadata.namespace", "metadata.title", "metadata.description",
	"metadata.tags", "spec.type", "spec.lifecycle", "relations",
}

// summaryFields are what summarize reads.
var summaryFields = []string{
	"kind", "metadata.name", "metadata.namespace", "metadata.title", "metadata.description",
	"metadata.tags", "metadata.links", "metadata.annotations", "spec.type", "spec.lifecycle", "spec.owner", "spec.system", "spec.domain", "spec.profile", "relations",
}

// projection returns the fields to fetch for an answer that reads base
// and, when user is set, the agent's dot paths, or nil when whole
// entities must be fetched.
func (d *Deps) projection(ctx context.Context, base []string, user []string) []string {
	if d.WholeEntities {
		return nil
	}
	reads, known := accessFrom(ctx).Reads()
	if !known {
		return nil
	}
	set := make(map[string]bool, len(base)+len(reads)+len(user)+3)
	set["kind"], set["metadata.name"], set["metadata.namespace"] = true, true, true
	for _, f := range base {
		set[f] = true
	}
	for _, f := range reads {
		set[f] = true
	}
	for _, f := range user {
		top, rest, nested := strings.Cut(f, ".")
		if nested && (top == "metadata" || top == "spec") {
			child, _, _ := strings.Cut(rest, ".")
			set[top+"."+child] = true
		} else {
			set[top] = true
		}
	}
	// A value is judged with its sibling name or key as context.
	for f := range set {
		parent, leaf := "", f
		if i := strings.LastIndexByte(f, '.'); i >= 0 {
			parent, leaf = f[:i+1], f[i+1:]
		}
		if leaf == "value" || leaf == "secretValue" {
			set[parent+"name"], set[parent+"key"] = true, true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		if top, _, nested := strings.Cut(f, "."); nested && set[top] {
			continue // inside a field fetched whole
		}
		if filter.CheckKey(f) != nil {
			return nil
		}
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}
