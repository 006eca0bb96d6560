// Package tools defines backstage-mcp's MCP tools: one file per tool
// family, each tool a constructor returning its mcp.Tool and handler with
// its dependencies passed in.
//
// Every handler follows the same path: validate arguments strictly, build
// the catalog query with the caller's entity conditions pushed down, fetch
// with the server's own credential, re-check every entity against the
// caller's Access (a hidden entity is "not found", exactly like a missing
// one), mask fields, redact secrets, and shape a compact answer. Tool
// failures are returned as IsError results with a message written for the
// agent; Go errors are reserved for protocol failures.
package tools

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Catalog is the part of the catalog client the tools use.
type Catalog interface {
	Query(ctx context.Context, q catalog.Query) (*catalog.Page, error)
	GetByName(ctx context.Context, r catalog.Ref) (json.RawMessage, error)
	GetByRefs(ctx context.Context, refs []string, fields []string) ([]json.RawMessage, error)
	Facets(ctx context.Context, facets []string, filters []catalog.Filter) (map[string][]catalog.FacetValue, error)
}

// Redactor scrubs secrets from a decoded JSON value (maps, slices,
// strings, numbers) and returns a new value plus per-rule counts. An error
// means the value must be withheld.
type Redactor interface {
	Redact(v any) (any, map[string]int, error)
	// RedactKeyed is Redact with v judged as if it sat under key: a facet
	// value is judged with its facet path.
	RedactKeyed(key string, v any) (any, map[string]int, error)
}

// Access is what the caller may see. Implementations come from the policy
// engine; the zero decision is deny.
type Access interface {
	// Constrain ANDs the caller's pushed-down entity conditions into the
	// user's (ORed) filters. empty reports that nothing can match; exact
	// reports that the filters express the caller's rights completely
	// (so counts from Backstage are safe to show).
	Constrain(user []catalog.Filter) (filters []catalog.Filter, empty, exact bool)
	// ConstrainScan is Constrain for a query whose count is not shown and
	// whose every entity is re-checked after fetch: it may leave out
	// conditions that Backstage evaluates slowly and that select most of
	// the catalog, so its filters may be wider than Constrain's.
	ConstrainScan(user []catalog.Filter) (filters []catalog.Filter, empty bool)
	// Visible reports whether the caller may see this entity.
	Visible(entity map[string]any) bool
	// Mask returns the entity without the fields the caller may not see.
	// When nothing is masked it may return entity itself: the tools pass
	// it entities they own.
	Mask(entity map[string]any) map[string]any
	// VisibleRef decides visibility from a ref alone when the caller's
	// rights depend on nothing else; decided=false means the entity must
	// be fetched and passed to Visible. Whether it decides must depend on
	// the caller's rights only, never on the ref (a malformed ref aside):
	// the tools skip lookups on that basis.
	VisibleRef(ref string) (visible, decided bool)
	// Masks reports whether Mask can remove anything, so that values
	// computed by Backstage (facet counts) must not be shown as they are.
	Masks() bool
	// Reads returns the entity fields Visible and Mask read, as paths of
	// one or two keys (kind, relations, metadata.annotations, spec.type,
	// …), so that an entity fetched with only these and the fields an
	// answer returns gets the same decision and the same masks as the
	// whole entity (masks remove fields by their path alone). known=false
	// means they are not known: whole entities must be fetched.
	Reads() (fields []string, known bool)
}

// Identity is what whoami reports about the caller.
type Identity struct {
	User          string    `json:"user,omitempty"`
	Subject       string    `json:"subject,omitempty"`
	Email         string    `json:"email,omitempty"`
	Name          string    `json:"name,omitempty"`
	Groups        []string  `json:"groups,omitempty"`
	OwnershipRefs []string  `json:"ownershipRefs,omitempty"`
	Agent         string    `json:"agent,omitempty"`
	AgentName     string    `json:"agentName,omitempty"`
	Scopes        []string  `json:"scopes,omitempty"`
	Tools         []string  `json:"tools,omitempty"`
	Roles         []string  `json:"roles,omitempty"`
	ExpiresAt     time.Time `json:"expiresAt,omitzero"`
	Mode          string    `json:"mode"`
}

type ctxKey int

const (
	accessKey ctxKey = iota
	identityKey
	callKey
)

// WithAccess attaches the caller's Access to ctx.
func WithAccess(ctx context.Context, a Access) context.Context {
	return context.WithValue(ctx, accessKey, a)
}

// WithIdentity attaches the caller's identity to ctx for whoami.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey, id)
}

func accessFrom(ctx context.Context) Access {
	if a, ok := ctx.Value(accessKey).(Access); ok && a != nil {
		return a
	}
	return denyAll{}
}

// denyAll is used when no Access is attached: fail closed.
type denyAll struct{}

func (denyAll) Constrain([]catalog.Filter) ([]catalog.Filter, bool, bool) { return nil, true, true }
func (denyAll) Visible(map[string]any) bool                               { return false }
func (denyAll) Mask(map[string]any) map[string]any                        { return nil }
func (denyAll) Masks() bool                                               { return true }
func (denyAll) VisibleRef(string) (bool, bool)                            { return false, true }
func (denyAll) Reads() ([]string, bool)                                   { return nil, true }
func (denyAll) ConstrainScan([]catalog.Filter) ([]catalog.Filter, bool)   { return nil, true }

// OpenAccess sees everything. It is for the demo catalog and for tests;
// production access comes from the policy engine.
type OpenAccess struct{}

// Constrain passes the user's filters through unchanged.
func (OpenAccess) Constrain(user []catalog.Filter) ([]catalog.Filter, bool, bool) {
	return user, false, true
}

// ConstrainScan passes the user's filters through unchanged.
func (OpenAccess) ConstrainScan(user []catalog.Filter) ([]catalog.Filter, bool) { return user, false }

// Visible always reports true.
func (OpenAccess) Visible(map[string]any) bool { return true }

// Mask returns the entity unchanged.
func (OpenAccess) Mask(e map[string]any) map[string]any { return e }

// Masks reports false: nothing is masked.
func (OpenAccess) Masks() bool { return false }

// VisibleRef reports every ref visible.
func (OpenAccess) VisibleRef(string) (bool, bool) { return true, true }

// Reads reports that no field is read.
func (OpenAccess) Reads() ([]string, bool) { return nil, true }

// CallInfo collects facts about one tool call for the audit record.
type CallInfo struct {
	mu             sync.Mutex
	Entities       []string
	EntityCount    int
	Redactions     map[string]int
	UpstreamStatus int
	hidden         int
	hiddenRule     string
}

// MaxAuditedRefs caps the entity refs kept per call.
const MaxAuditedRefs = 50

// WithCallInfo attaches a fresh CallInfo to ctx and returns both.
func WithCallInfo(ctx context.Context) (context.Context, *CallInfo) {
	ci := &CallInfo{Redactions: map[string]int{}}
	return context.WithValue(ctx, callKey, ci), ci
}

func callInfo(ctx context.Context) *CallInfo {
	ci, _ := ctx.Value(callKey).(*CallInfo)
	return ci
}

func (ci *CallInfo) addEntity(ref string) {
	if ci == nil {
		return
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	ci.EntityCount++
	if len(ci.Entities) < MaxAuditedRefs {
		ci.Entities = append(ci.Entities, ref)
	}
}

// RecordEntities notes entity refs returned to the caller by a call the
// server answered without running the tool's handler (a cached
// completion), so its audit record names them all the same.
func RecordEntities(ctx context.Context, refs ...string) {
	ci := callInfo(ctx)
	for _, r := range refs {
		ci.addEntity(r)
	}
}

// addHidden notes an entity Backstage returned that the caller may not
// see (for audit: a read of a hidden entity is "hidden by policy", not a
// typo).
func (ci *CallInfo) addHidden() {
	if ci == nil {
		return
	}
	ci.mu.Lock()
	ci.hidden++
	ci.mu.Unlock()
}

// NoteHiddenRule keeps the policy rule that withheld an entity from the
// call (the first one), for its audit record.
func (ci *CallInfo) NoteHiddenRule(rule string) {
	if ci == nil {
		return
	}
	ci.mu.Lock()
	if ci.hiddenRule == "" {
		ci.hiddenRule = rule
	}
	ci.mu.Unlock()
}

// HiddenRule is the rule NoteHiddenRule kept, or "".
func (ci *CallInfo) HiddenRule() string {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	return ci.hiddenRule
}

// HiddenCount is the number of entities Backstage returned to this call
// that the caller's access withheld.
func (ci *CallInfo) HiddenCount() int {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	return ci.hidden
}

func (ci *CallInfo) addRedactions(c map[string]int) {
	if ci == nil || len(c) == 0 {
		return
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	for k, v := range c {
		ci.Redactions[k] += v
	}
}

// Snapshot returns a copy safe to read after the call.
func (ci *CallInfo) Snapshot() (refs []string, count int, redactions map[string]int) {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	r := make(map[string]int, len(ci.Redactions))
	for k, v := range ci.Redactions {
		r[k] = v
	}
	return append([]string(nil), ci.Entities...), ci.EntityCount, r
}

// Deps are the dependencies every tool shares.
type Deps struct {
	Catalog  Catalog
	Redactor Redactor
	// Cursors signs and verifies the pagination cursors handed to agents.
	Cursors *CursorCodec
	// WholeEntities turns projections off: every answer fetches, decodes,
	// masks and redacts whole entities. Tests set it to prove projected
	// answers identical to whole ones.
	WholeEntities bool
	// Annotations are the annotation keys summaries show; nil means
	// DefaultAnnotations, empty means none.
	Annotations []string
	// Changes is the catalog mirror's change feed; nil in pass-through
	// mode.
	Changes ChangeFeed
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Tool is one registered tool: its definition, handler and the tool scope
// it needs.
type Tool struct {
	Tool    mcp.Tool
	Handler server.ToolHandlerFunc
	Scope   string
	// Answer says what the answer's text holds; the tool reference
	// (README.md, docs/tools.md) shows it.
	Answer string
}

// Scopes a tool may require.
const (
	ScopeRead           = "catalog:read"
	ScopeAPIDefinitions = "catalog:api-definitions"
)

// All returns every tool, in a stable order.
func All(d *Deps) []Tool {
	ts := []Tool{
		GetEntity(d),
		SearchEntities(d),
		GetRelations(d),
		FindDependents(d),
		FindOwner(d),
		GetAPIDefinition(d),
		ListFacets(d),
		ListChanges(d),
		WhoAmI(),
	}
	for i := range ts {
		ts[i] = withOutputSchema(ts[i])
	}
	return ts
}

// newTool defines a read-only tool with a raw, strict input schema.
func newTool(name, description string, inputSchema json.RawMessage, title string) mcp.Tool {
	f, t := false, true
	tool := mcp.NewToolWithRawSchema(name, description, inputSchema)
	// The title once, as Tool.title (2025-06-18 and later; older clients
	// show the name). destructiveHint and idempotentHint mean something
	// only when readOnlyHint is false, so they are left out: every byte of
	// tools/list is read with it.
	tool.Title = title
	tool.Annotations = mcp.ToolAnnotation{
		ReadOnlyHint:  &t,
		OpenWorldHint: &f,
	}
	return tool
}
