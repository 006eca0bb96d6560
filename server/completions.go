package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// maxCompletions is the MCP limit on values in one completion.
const maxCompletions = 100

// completer answers completion/complete for the prompts' ref argument and
// the resource templates' variables. Every answer is a catalog call made
// through the chain (resourceCall): the caller's grant decides what can
// be completed, the call spends rate limit, leaves an audit record and
// passes egress. Values come only from entities the caller may see, so a
// hidden entity completes exactly like a missing one: not at all.
type completer struct {
	s     *Server
	cache *completionCache
}

func newCompleter(s *Server) completer {
	return completer{s: s, cache: &completionCache{ttl: completionTTL, max: completionCacheSize, now: s.opts.Now}}
}

// Completion cache bounds. A user typing asks for the same prefixes
// again and again; answers are kept per caller and policy version for a
// few seconds, so an entity that disappears or becomes hidden may still
// complete for that long (reading it is decided afresh).
const (
	completionTTL       = 10 * time.Second
	completionCacheSize = 4096
)

// completionCache keeps completion answers per caller. The key holds the
// caller's whole grant (issuer, subject, user ref, groups, ownership,
// agent, scopes, policy version) and the call's arguments, so no answer
// crosses from one caller or policy to another.
type completionCache struct {
	mu  sync.Mutex
	m   map[string]cachedCompletion
	ttl time.Duration
	max int
	now func() time.Time
}

type cachedCompletion struct {
	values, refs []string
	at           time.Time
}

func (cc *completionCache) get(key string) (cachedCompletion, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.m[key]
	if !ok || cc.now().Sub(e.at) > cc.ttl {
		return cachedCompletion{}, false
	}
	return e, true
}

func (cc *completionCache) put(key string, e cachedCompletion) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil || len(cc.m) >= cc.max {
		// Bounded memory: start afresh rather than track recency.
		cc.m = make(map[string]cachedCompletion, 64)
	}
	e.at = cc.now()
	cc.m[key] = e
}

// call runs a completion's catalog call through the chain, answered from
// the cache when the same caller asked the same within the TTL. extract
// turns the tool's result into values and the refs they came from;
// variant names everything extract depends on besides args (the prefix,
// the rendering), so that it is part of the key.
func (c completer) call(ctx context.Context, tool, variant string, args map[string]any,
	extract func(*mcp.CallToolResult) (values, refs []string, err error)) (*mcp.CallToolResult, error) {
	st := c.s.grant(ctx)
	ctx = chain.WithScope(ctx, st) // the chain reuses the scope the key is made of
	key := ""
	if st.Err == nil {
		b, err := json.Marshal(struct {
			Iss, Sub, Ref, Client, Ver, Tool, Variant string
			Groups, Own, Scopes                       []string
			Args                                      map[string]any
		}{st.Principal.Issuer, st.Principal.User.Sub, st.Principal.User.Ref, st.Principal.Agent.ClientID, st.PolicyVersion, tool, variant,
			st.Principal.User.Groups, st.Principal.User.OwnershipRefs, st.Principal.Scopes, args})
		if err == nil {
			sum := sha256.Sum256(b)
			key = string(sum[:])
		}
	}
	hit := func(ctx context.Context) *mcp.CallToolResult {
		if key == "" {
			return nil
		}
		e, ok := c.cache.get(key)
		if !ok {
			return nil
		}
		tools.RecordEntities(ctx, e.refs...)
		return completionResult(e.values)
	}
	return c.s.cachedCall(ctx, tool, args, hit, func(r *mcp.CallToolResult) (*mcp.CallToolResult, error) {
		values, refs, err := extract(r)
		if err != nil {
			return nil, err
		}
		if key != "" {
			c.cache.put(key, cachedCompletion{values: values, refs: refs})
		}
		return completionResult(values), nil
	})
}

// CompletePromptArgument completes the ref argument of a prompt.
func (c completer) CompletePromptArgument(ctx context.Context, prompt string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if arg.Name != "ref" {
		return emptyCompletion(), nil
	}
	kind := ""
	for _, p := range tools.Prompts() {
		if p.Name == prompt {
			kind = p.Kind
		}
	}
	return c.refs(ctx, kind, arg.Value)
}

// CompleteResourceArgument completes {kind}, {namespace} and {name} of the
// resource templates; the variables already given narrow the others.
func (c completer) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	kind := cc.Arguments["kind"]
	if uri == definitionTemplate {
		kind = "api"
	}
	switch arg.Name {
	case "kind":
		return c.facet(ctx, "kind", "", arg.Value, strings.ToLower)
	case "namespace":
		return c.facet(ctx, "metadata.namespace", kind, arg.Value, nil)
	case "name":
		return c.names(ctx, "name", kind, cc.Arguments["namespace"], arg.Value, func(s tools.Summary) string {
			r, err := catalog.ParseRef(s.Ref, "")
			if err != nil {
				return ""
			}
			return r.Name
		})
	default:
		return emptyCompletion(), nil
	}
}

// refs completes an entity ref as typed: "orders" (a name prefix, of
// kind when given), "component:orders", "component:default/ord".
func (c completer) refs(ctx context.Context, kind, typed string) (*mcp.Completion, error) {
	typed = strings.TrimSpace(typed)
	ns, prefix := "", typed
	if k, rest, ok := strings.Cut(typed, ":"); ok {
		kind, prefix = k, rest
	}
	if n, rest, ok := strings.Cut(prefix, "/"); ok {
		ns, prefix = n, rest
	}
	return c.names(ctx, "ref", kind, ns, prefix, func(s tools.Summary) string { return s.Ref })
}

// names completes entity names starting with prefix (case-insensitive),
// rendered by show, from a search made through the chain.
func (c completer) names(ctx context.Context, variant, kind, ns, prefix string, show func(tools.Summary) string) (*mcp.Completion, error) {
	args := map[string]any{"limit": maxCompletions, "order": "metadata.name"}
	if kind != "" {
		if catalog.ValidateKind(kind) != nil {
			return emptyCompletion(), nil //nolint:nilerr // an invalid kind completes to nothing, like a missing one
		}
		args["kind"] = kind
	}
	if ns != "" {
		if catalog.ValidateNamespace(ns) != nil {
			return emptyCompletion(), nil //nolint:nilerr // an invalid namespace completes to nothing, like a missing one
		}
		args["namespace"] = ns
	}
	if prefix != "" {
		if len(prefix) > 128 {
			return emptyCompletion(), nil
		}
		args["text"] = prefix
	}
	lower := strings.ToLower(prefix)
	res, err := c.call(ctx, "catalog_search_entities", variant+"\x00"+lower, args, func(r *mcp.CallToolResult) ([]string, []string, error) {
		var values, refs []string
		var page struct {
			Items []tools.Summary `json:"items"`
		}
		if err := remarshal(r.StructuredContent, &page); err != nil {
			return nil, nil, err
		}
		for _, it := range page.Items {
			r, err := catalog.ParseRef(it.Ref, "")
			if err != nil || !strings.HasPrefix(strings.ToLower(r.Name), lower) {
				continue
			}
			if v := show(it); v != "" {
				values = append(values, v)
				refs = append(refs, it.Ref)
			}
		}
		return values, refs, nil
	})
	return completion(res, err), nil
}

// facet completes the values of a facet starting with prefix.
func (c completer) facet(ctx context.Context, facet, kind, prefix string, norm func(string) string) (*mcp.Completion, error) {
	args := map[string]any{"facet": facet}
	if kind != "" {
		if catalog.ValidateKind(kind) != nil {
			return emptyCompletion(), nil //nolint:nilerr // an invalid kind completes to nothing, like a missing one
		}
		args["kind"] = kind
	}
	lower := strings.ToLower(prefix)
	res, err := c.call(ctx, "catalog_list_facets", "facet\x00"+lower, args, func(r *mcp.CallToolResult) ([]string, []string, error) {
		var values []string
		var out tools.FacetsResult
		if err := remarshal(r.StructuredContent, &out); err != nil {
			return nil, nil, err
		}
		seen := map[string]bool{}
		for _, v := range out.Values {
			s := v.Value
			if norm != nil {
				s = norm(s)
			}
			if strings.HasPrefix(strings.ToLower(s), lower) && !seen[s] {
				seen[s] = true
				values = append(values, s)
			}
		}
		sort.Strings(values)
		return values, nil, nil
	})
	return completion(res, err), nil
}

// completion takes the values out of the egressed chain result. A
// refused call (no grant, rate limited, Backstage down) completes
// nothing, like a hidden entity; a value that egress redacted is dropped,
// since a redaction marker is no value to complete.
func completion(res *mcp.CallToolResult, err error) *mcp.Completion {
	if err != nil || res == nil || res.IsError || len(res.Content) != 1 {
		return emptyCompletion()
	}
	t, ok := res.Content[0].(mcp.TextContent)
	if !ok || t.Text == "" {
		return emptyCompletion()
	}
	out := []string{}
	for _, v := range strings.Split(t.Text, "\n") {
		if v != "" && !strings.Contains(v, "[REDACTED:") {
			out = append(out, v)
		}
	}
	if len(out) > maxCompletions {
		return &mcp.Completion{Values: out[:maxCompletions], HasMore: true}
	}
	return &mcp.Completion{Values: out}
}

// completionResult is the tool-shaped result egress sees: the values as
// text, one a line.
func completionResult(values []string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(strings.Join(values, "\n"))}}
}

func emptyCompletion() *mcp.Completion { return &mcp.Completion{Values: []string{}} }

func remarshal(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("server: completion: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("server: completion: %w", err)
	}
	return nil
}
