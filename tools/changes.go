package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// ChangeFeed is the catalog mirror's record of changes (nil in
// pass-through mode, where the server keeps no copy to compare): in this
// process, or in the shared state store (state: redis), where it
// outlives restarts.
type ChangeFeed interface {
	// Range calls yield with the changes found since a time, newest
	// first, until yield returns false.
	Range(ctx context.Context, since time.Time, yield func(catalog.Change) bool) error
	// Horizon says what the feed covers.
	Horizon(ctx context.Context) (catalog.ChangeHorizon, error)
}

// MaxChangesListed caps the changes of one answer.
const MaxChangesListed = 200

var changesParams = []param{
	{name: "since", typ: tString, maxLen: 32, def: "168h",
		desc: "A duration (30m, 24h) or an RFC 3339 time."},
	{name: "kind", typ: tString, desc: "e.g. Component."},
	{name: "limit", typ: tInt, min: 1, max: MaxChangesListed, def: 50, desc: "Most changes listed."},
}

// ChangeItem is one change the caller may see.
type ChangeItem struct {
	Op    string    `json:"op"`
	Ref   string    `json:"ref"`
	Title string    `json:"title,omitempty"`
	At    time.Time `json:"at"`
}

// ChangesResult is the structured answer of catalog_list_changes.
type ChangesResult struct {
	Since   time.Time    `json:"since,omitzero"`
	Changes []ChangeItem `json:"changes"`
	More    bool         `json:"more,omitempty"`
	Note    string       `json:"note,omitempty"`
	// Coverage says, when since is earlier, from when the feed knows
	// changes and whether it outlives a restart.
	Coverage string `json:"coverage,omitempty"`
}

// needsMirror is what catalog_list_changes says in pass-through mode.
const needsMirror = "the change feed needs catalog mirror mode (catalog.mode: mirror): in pass-through mode the server keeps no copy of the catalog to compare, so it cannot say what changed"

// ListChanges is catalog_list_changes: what was added, changed or removed.
func ListChanges(d *Deps) Tool {
	t := newTool("catalog_list_changes", "Catalog entities added, changed or removed recently, newest first, with when the server saw each change: \"what changed this week\". "+
		"Needs mirror mode; the answer says from when the feed knows changes.",
		schema(changesParams), "List catalog changes")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, err := decodeArgs(req.Params.RawArguments, changesParams)
		if err != nil {
			return toolError(err), nil
		}
		since, err := parseSince(a.str("since"), d.now())
		if err != nil {
			return toolError(err), nil
		}
		kind := strings.ToLower(a.str("kind"))
		if kind != "" {
			if err := catalog.ValidateKind(kind); err != nil {
				return toolError(badArg("argument \"kind\": %v", err)), nil
			}
		}
		out := ChangesResult{Since: since, Changes: []ChangeItem{}}
		if d.Changes == nil {
			out.Note = needsMirror
			return result(out, needsMirror), nil
		}
		hz, err := d.Changes.Horizon(ctx)
		if err != nil {
			return toolError(fmt.Errorf("%w: the change feed: %w", catalog.ErrUnavailable, err)), nil
		}
		out.Coverage = coverage(hz, since, d.now())
		if err := d.visibleChanges(ctx, since, kind, a.num("limit", 50), &out); err != nil {
			return toolError(err), nil
		}
		return result(out, out.text()), nil
	}
	return Tool{Tool: t, Handler: h, Answer: "A head with the count since the given time, then one line per change: time, added/changed/removed, ref and title; when `since` reaches before what the feed knows, from when it knows changes and whether it outlives a restart.", Scope: ScopeRead}
}

// parseSince reads a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		s = "168h"
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if strings.HasSuffix(s, "d") {
		var n int
		if _, err := fmt.Sscanf(s, "%dd", &n); err == nil && n > 0 && n <= 3650 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, badArg("argument \"since\" must be a duration such as 24h or 7d, or an RFC 3339 time (got %q)", s)
}

// coverage says, when since is before what the feed knows, from when it
// knows changes and whether they outlive a restart ("" otherwise). It
// depends on the configuration and the feed's start only, never on what
// changed.
func coverage(hz catalog.ChangeHorizon, since, now time.Time) string {
	from := hz.Start
	if hz.Retention > 0 {
		if cut := now.Add(-hz.Retention); cut.After(from) {
			from = cut
		}
	}
	if !since.Before(from) && !hz.Start.IsZero() {
		return ""
	}
	if hz.Start.IsZero() {
		return "the feed has no changes yet: the catalog mirror has not completed its first sync"
	}
	keep := fmt.Sprintf("it keeps the last %d changes for %s", hz.MaxChanges, fmtDays(hz.Retention))
	if hz.Durable {
		return fmt.Sprintf("the feed knows changes from %s on (kept in the shared state store across restarts; %s)", from.UTC().Format(time.RFC3339), keep)
	}
	return fmt.Sprintf("the feed starts when this server started, %s: changes before that are unknown, and a restart forgets it (state: memory; %s)",
		from.UTC().Format(time.RFC3339), keep)
}

// fmtDays renders a retention in days when it is whole days.
func fmtDays(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// visibleChanges lists the changes since a time (of one kind when kind is
// set) that the caller can see, up to limit: an addition or change of an
// entity it may see now, where a change must show in its view (masked
// fields and secrets hide a change to them); a removal of an entity it
// could see before. The feed is read in batches and only as far as the
// answer needs.
func (d *Deps) visibleChanges(ctx context.Context, since time.Time, kind string, limit int, out *ChangesResult) error {
	batch := make([]catalog.Change, 0, catalog.MaxRefsPerBatch)
	done := false
	var failed error
	flush := func() {
		if failed == nil && len(batch) > 0 {
			done, failed = d.visibleBatch(ctx, batch, limit, out)
		}
		batch = batch[:0]
	}
	var restarts []string
	err := d.Changes.Range(ctx, since, func(c catalog.Change) bool {
		if c.Op == catalog.ChangeRestart {
			restarts = append(restarts, c.At.UTC().Format(time.RFC3339))
			return true
		}
		if kind != "" && !strings.HasPrefix(c.Ref, kind+":") {
			return true
		}
		batch = append(batch, c)
		if len(batch) == cap(batch) {
			flush()
		}
		return !done && failed == nil
	})
	if err != nil {
		return fmt.Errorf("%w: the change feed: %w", catalog.ErrUnavailable, err)
	}
	flush()
	if len(restarts) > 0 {
		// Newest first, as read; the marks depend on the servers'
		// starts only, never on what changed.
		gap := "a server started at " + strings.Join(restarts, ", ") +
			" with no copy of the catalog to compare: changes made before then that no running server saw are not listed"
		if out.Coverage != "" {
			gap = out.Coverage + "; " + gap
		}
		out.Coverage = gap
	}
	return failed
}

// visibleBatch adds the changes of one batch the caller can see to out;
// done reports that out is full (and More set when another visible
// change followed).
func (d *Deps) visibleBatch(ctx context.Context, batch []catalog.Change, limit int, out *ChangesResult) (done bool, err error) {
	{
		refs := make([]string, len(batch))
		for i, c := range batch {
			refs[i] = c.Ref
		}
		raws, err := d.Catalog.GetByRefs(ctx, refs, nil)
		if err != nil {
			return false, err
		}
		for i, c := range batch {
			var now, before *entity
			if i < len(raws) && raws[i] != nil {
				e, ok, err := d.admit(ctx, raws[i])
				if err != nil {
					return false, err
				}
				if ok {
					now = &e
				}
			}
			if c.Before != nil {
				e, ok, err := d.admit(ctx, c.Before)
				if err != nil {
					return false, err
				}
				if ok {
					before = &e
				}
			}
			var shown *entity
			switch c.Op {
			case catalog.ChangeAdded:
				shown = now
			case catalog.ChangeChanged:
				if now != nil && before == nil {
					shown = now // it came into the caller's view
				} else if now != nil {
					// Names of entities the caller may not see are pruned
					// from both, so a change to them does not show.
					if err := d.pruneNames(ctx, []entity{*before, *now}); err != nil {
						return false, err
					}
					if compactJSON(before.m) != compactJSON(now.m) {
						shown = now
					}
				}
			case catalog.ChangeRemoved:
				if now == nil { // not added again since
					shown = before
				}
			}
			if shown == nil {
				continue
			}
			if len(out.Changes) == limit {
				out.More = true
				return true, nil
			}
			record(ctx, *shown)
			out.Changes = append(out.Changes, ChangeItem{Op: c.Op, Ref: shown.ref, Title: str(shown.m, "metadata", "title"), At: c.At.UTC()})
		}
	}
	return false, nil
}

func (r ChangesResult) text() string {
	var b strings.Builder
	if len(r.Changes) == 0 {
		fmt.Fprintf(&b, "no changes you can see since %s", r.Since.UTC().Format(time.RFC3339))
		if r.Coverage != "" {
			b.WriteString("; " + r.Coverage)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%d changes since %s, newest first", len(r.Changes), r.Since.UTC().Format(time.RFC3339))
	if r.More {
		b.WriteString(" (more: narrow since or kind, or raise limit)")
	}
	if r.Coverage != "" {
		b.WriteString("; " + r.Coverage)
	}
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "\n%s %s %s", c.At.Format(time.RFC3339), c.Op, c.Ref)
		if c.Title != "" {
			fmt.Fprintf(&b, " %q", c.Title)
		}
	}
	return b.String()
}
