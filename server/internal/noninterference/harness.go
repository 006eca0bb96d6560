package noninterference

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// Side is one server acting for Caller over one catalog, with a fake clock
// for the upstream cache and the timing classes its guard reports.
type Side struct {
	c     *client.Client
	close func()

	mu     sync.Mutex
	now    time.Time
	obs    []bool
	keys   []string
	cursor string
}

// unlimited turns every caller-side limit off: the harness compares
// answers, not refusals of a spent bucket.
const unlimited = `rateLimits:
  classes:
    default: {unlimited: true}
    low: {unlimited: true}
    high: {unlimited: true}
  agent: {unlimited: true}
  global: {unlimited: true}
  upstream:
    rate: {unlimited: true}
`

// NewSide builds the whole server (server.Build: policy store, audit log,
// rate limits, upstream guard, catalog client over the in-memory catalog
// serving ents) and connects an in-process MCP client. dir receives the
// policy and audit files.
func NewSide(ctx context.Context, dir string, ents []map[string]any, policy string) (*Side, error) {
	return NewSideWith(ctx, dir, ents, policy)
}

// SideOptions adjust a Side.
type SideOptions struct {
	// NoCache turns the upstream cache off (for benchmarks).
	NoCache bool
	// BackstageURL and BackstageToken, when set, serve the side from a
	// real Backstage (which already holds the catalog; ents is unused).
	BackstageURL, BackstageToken string
	// WholeEntities turns the tools' projections off
	// (Server.FetchWholeEntities), for the side that projected answers are
	// compared with.
	WholeEntities bool
}

// NewSideWith is NewSide with options.
func NewSideWith(ctx context.Context, dir string, ents []map[string]any, policy string, opts ...func(*SideOptions)) (*Side, error) {
	var o SideOptions
	for _, f := range opts {
		f(&o)
	}
	sd := &Side{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	cfg, err := server.ParseConfig([]byte(unlimited), "noninterference", func(string) string { return "" })
	if err != nil {
		return nil, fmt.Errorf("noninterference: config: %w", err)
	}
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(policy), 0o600); err != nil {
		return nil, fmt.Errorf("noninterference: %w", err)
	}
	cfg.Policy.File, cfg.Policy.ReloadInterval = pf, -1
	cfg.Audit.Path, cfg.Audit.Sync = filepath.Join(dir, "audit.log"), audit.SyncNone
	cfg.Server.CursorKey = "noninterference fixed cursor key"
	if o.NoCache {
		cfg.RateLimits.Upstream.CacheTTL = -1
	}
	cfg.RateLimits.Upstream.Now = func() time.Time { sd.mu.Lock(); defer sd.mu.Unlock(); return sd.now }
	cfg.RateLimits.Upstream.Observe = func(key string, cached bool) {
		sd.mu.Lock()
		sd.obs = append(sd.obs, cached)
		sd.keys = append(sd.keys, fmt.Sprintf("%v %s", cached, key))
		sd.mu.Unlock()
	}
	p := &identity.Principal{
		User: identity.User{Sub: "sub-nia", Email: "nia@acme.example", Ref: Caller,
			OwnershipRefs: []string{Caller, "group:default/team-a"}},
		Agent:     identity.Agent{ClientID: "noninterference-agent"},
		Scopes:    []string{"mcp:catalog"},
		Issuer:    "https://idp.test",
		ExpiresAt: sd.now.Add(24 * time.Hour),
	}
	bo := server.BuildOptions{Demo: true, LocalUser: Caller}
	seams := buildseam.Seams{FixedPrincipal: p}
	if o.BackstageURL != "" {
		bo.Demo = false
		cfg.Backstage.BaseURL, cfg.Backstage.Token = o.BackstageURL, o.BackstageToken
	} else {
		// The catalog served as a Backstage in process and read through
		// the catalog client, as in passthrough mode (the default): its
		// cache, its pushed-down filters and its requests are part of
		// what a caller may observe.
		mc, err := memcatalog.New(ents)
		if err != nil {
			return nil, fmt.Errorf("noninterference: catalog: %w", err)
		}
		seams.DemoUpstream = mc.Handler()
	}
	s, closeFn, err := server.BuildWithSeams(ctx, cfg, bo, seams)
	if err != nil {
		return nil, fmt.Errorf("noninterference: build: %w", err)
	}
	if o.WholeEntities {
		s.FetchWholeEntities()
	}
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		closeFn()
		return nil, fmt.Errorf("noninterference: client: %w", err)
	}
	sd.c, sd.close = c, func() { _ = c.Close(); closeFn() }
	if err := c.Start(ctx); err != nil {
		sd.close()
		return nil, fmt.Errorf("noninterference: start: %w", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "noninterference", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		sd.close()
		return nil, fmt.Errorf("noninterference: initialize: %w", err)
	}
	return sd, nil
}

// Close stops the server and writes its last audit record.
func (sd *Side) Close() { sd.close() }

// Observation is everything a caller can see of one call, with cursor
// bytes reduced to their presence (they are sealed with a random nonce).
type Observation struct {
	Class  string `json:"class"` // timing: none, cached, uncached or mixed
	Result string `json:"result"`
}

var (
	cursorText = regexp.MustCompile(`cursor=[A-Za-z0-9_-]+`)
	// Backstage draws entity uids at random when it ingests: two real
	// catalogs give the same entity different uids.
	uidText = regexp.MustCompile(`\\?"uid\\?":\\?"[0-9a-f-]+\\?"`)
)

// Do runs one step of a sequence (calls gives "repeat" its target).
func (sd *Side) Do(ctx context.Context, calls []Call, c Call) (Observation, error) {
	switch c.Op {
	case "tick":
		sd.mu.Lock()
		sd.now = sd.now.Add(3 * time.Second)
		sd.mu.Unlock()
		return Observation{Class: "none", Result: "tick"}, nil
	case "repeat":
		return sd.Do(ctx, calls, calls[c.Of])
	case "cursor":
		if sd.cursor == "" {
			return Observation{Class: "none", Result: "no cursor to follow"}, nil
		}
		b, _ := json.Marshal(map[string]any{"cursor": sd.cursor, "limit": c.Limit})
		return sd.call(ctx, "catalog_search_entities", string(b))
	}
	return sd.call(ctx, c.Tool, c.Args)
}

func (sd *Side) call(ctx context.Context, tool, args string) (Observation, error) {
	sd.mu.Lock()
	sd.obs, sd.keys = nil, nil
	sd.mu.Unlock()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = json.RawMessage(args)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := sd.c.CallTool(ctx, req)
	if err != nil {
		return Observation{}, fmt.Errorf("noninterference: %s(%s): protocol error: %w", tool, args, err)
	}
	sd.mu.Lock()
	obs := sd.obs
	sd.mu.Unlock()
	class := "none"
	for i, cached := range obs {
		c := "uncached"
		if cached {
			c = "cached"
		}
		switch {
		case i == 0:
			class = c
		case class != c:
			class = "mixed"
		}
	}
	if tool == "catalog_search_entities" && !res.IsError {
		if m, ok := res.StructuredContent.(map[string]any); ok {
			sd.cursor, _ = m["nextCursor"].(string)
		} else {
			b, _ := json.Marshal(res.StructuredContent)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			sd.cursor, _ = m["nextCursor"].(string)
		}
	}
	if os.Getenv("NONINTERFERENCE_KEYS") != "" {
		fmt.Println(tool, args)
		for _, k := range sd.keys {
			fmt.Println("   ", k)
		}
	}
	return Observation{Class: class, Result: normalize(res)}, nil
}

// normalize renders a result with cursors replaced by a presence marker.
func normalize(res *mcp.CallToolResult) string {
	var texts []string
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			texts = append(texts, uidText.ReplaceAllString(cursorText.ReplaceAllString(t.Text, "cursor=<present>"), `"uid":"<uid>"`))
		}
	}
	var structured any
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &structured)
		if m, ok := structured.(map[string]any); ok {
			if _, ok := m["nextCursor"]; ok {
				m["nextCursor"] = "<present>"
			}
			if md, ok := m["metadata"].(map[string]any); ok && md["uid"] != nil {
				md["uid"] = "<uid>"
			}
		}
	}
	b, _ := json.Marshal(map[string]any{"isError": res.IsError, "text": texts, "structured": structured})
	return string(b)
}

// Difference is one call whose observations differ between the catalogs.
type Difference struct {
	Step int
	Call Call
	A, B Observation
}

func (d Difference) String() string {
	return fmt.Sprintf("step %d %s:\n  A [%s] %s\n  B [%s] %s", d.Step, d.Call, d.A.Class, d.A.Result, d.B.Class, d.B.Result)
}

// Run builds both sides of w, runs calls against each and returns the
// differences, and every observation (for leak checks).
func Run(ctx context.Context, dirA, dirB string, w *World, calls []Call) (diffs []Difference, all []Observation, err error) {
	ca, cb := w.Catalogs()
	a, err := NewSide(ctx, dirA, ca, w.Variant.Policy())
	if err != nil {
		return nil, nil, err
	}
	defer a.Close()
	b, err := NewSide(ctx, dirB, cb, w.Variant.Policy())
	if err != nil {
		return nil, nil, err
	}
	defer b.Close()
	for i, c := range calls {
		oa, err := a.Do(ctx, calls, c)
		if err != nil {
			return nil, nil, err
		}
		ob, err := b.Do(ctx, calls, c)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, oa, ob)
		if oa != ob {
			diffs = append(diffs, Difference{Step: i, Call: c, A: oa, B: ob})
		}
	}
	return diffs, all, nil
}

// Leaks returns the secrets of w that appear in any observation.
func Leaks(w *World, all []Observation) []string {
	var out []string
	for _, s := range w.Secrets {
		for _, o := range all {
			if strings.Contains(o.Result, s) || strings.Contains(o.Result, jsonEscaped(s)) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}
