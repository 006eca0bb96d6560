package chain

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/mark3labs/mcp-go/mcp"
)

const testPolicy = `version: 1
roles:
  - name: everyone
    bind: { anonymous: true }
    tools: ["catalog_get_entity"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default] }
`

// harness is a chain over an in-memory limiter and a recording egress and
// audit sink; no mcp-go server is involved.
type harness struct {
	c       *Chain
	stages  []string
	records []*audit.Record
	grants  int
}

func newHarness(t *testing.T, requests int, noIdentity bool) *harness {
	t.Helper()
	pol, _, err := policyfile.Parse([]byte(testPolicy), "test")
	if err != nil {
		t.Fatal(err)
	}
	mem, err := ratelimit.NewMemory(ratelimit.Config{
		Classes: map[string]ratelimit.Rate{"default": {Requests: float64(requests), Per: time.Hour, Burst: requests}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{}
	p := identity.InsecureLocalUser("user:default/amelia.hart")
	h.c = &Chain{
		Transport: audit.TransportStdio,
		Grant: func(context.Context) *Scope {
			h.grants++
			if noIdentity {
				return &Scope{Err: errors.New("login expired")}
			}
			return &Scope{Principal: p, Grant: pol.Grant(Subject(p)), PolicyVersion: "v1"}
		},
		Limiter:   ratelimit.NewChain(mem),
		Known:     func(name string) bool { return strings.HasPrefix(name, "catalog_") },
		Arguments: func(raw json.RawMessage, _ bool) (json.RawMessage, map[string]int) { return raw, nil },
		Egress: func(_ context.Context, rec *audit.Record, res *mcp.CallToolResult) *mcp.CallToolResult {
			rec.ResultBytes = len(resultText(res))
			return res
		},
		Finish: func(_ context.Context, rec *audit.Record, _ time.Duration, res *mcp.CallToolResult) *mcp.CallToolResult {
			h.records = append(h.records, rec)
			return res
		},
		Log:     slog.New(slog.DiscardHandler),
		Now:     time.Now,
		Observe: func(_ context.Context, st string) { h.stages = append(h.stages, st) },
	}
	return h
}

func (h *harness) take() []string {
	out := h.stages
	h.stages = nil
	return out
}

func request(tool, args string) Request {
	var r Request
	r.Call.Params.Name = tool
	r.Call.Params.RawArguments = json.RawMessage(args)
	r.SessionID = "s-1"
	return r
}

// TestCallStagesInOrder: a granted call runs every stage in source order,
// the handler sees the caller's identity and access and the scope, and the
// record names who, what and the rule; refused and unknown tools stop at
// authorization, answer ErrToolNotFound alike and are still recorded.
func TestCallStagesInOrder(t *testing.T) {
	h := newHarness(t, 10, false)
	var seen *Scope
	handler := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		sc, ok := ScopeFrom(ctx)
		if !ok {
			t.Fatal("no scope in the tool's context")
		}
		seen = sc
		tools.RecordEntities(ctx, "component:default/orders")
		return mcp.NewToolResultText("orders: " + string(req.Params.RawArguments)), nil
	}
	res, err := h.c.Call(context.Background(), request("catalog_get_entity", `{"ref":"component:default/orders"}`), handler)
	if err != nil || res.IsError {
		t.Fatalf("granted call: %v %+v", err, res)
	}
	want := []string{StageGrant, StageRateLimit, StageAuthz, StageAudit, StageTool, StageEgress, StageFinish}
	if got := h.take(); !slices.Equal(got, want) {
		t.Fatalf("stages = %v, want %v", got, want)
	}
	rec := h.records[0]
	if seen == nil || seen.PolicyVersion != "v1" || seen.Record != rec {
		t.Fatalf("scope = %+v", seen)
	}
	if rec.Decision != audit.DecisionAllowed || rec.Rule != "policy@v1:everyone/tools[0]" || rec.User.Ref != "user:default/amelia.hart" ||
		rec.SessionID != "s-1" || rec.Entities.Count != 1 || rec.ResultBytes == 0 {
		t.Fatalf("record = %+v", rec)
	}

	refused := []string{StageGrant, StageRateLimit, StageAuthz, StageFinish}
	for _, tc := range []struct {
		tool     string
		handler  Handler
		reason   string
		decision audit.Decision
	}{
		{"catalog_search_entities", handler, "tool not granted", audit.DecisionHiddenByPolicy}, // dispatched, not granted
		{"catalog_search_entities", nil, "tool not granted", audit.DecisionHiddenByPolicy},     // refused by the transport
		{"no_such_tool", nil, "unknown tool", audit.DecisionRefused},
	} {
		res, err := h.c.Call(context.Background(), request(tc.tool, `{}`), tc.handler)
		if res != nil || !errors.Is(err, ErrToolNotFound) {
			t.Fatalf("%s: %+v %v, want tool not found", tc.tool, res, err)
		}
		if got := h.take(); !slices.Equal(got, refused) {
			t.Fatalf("%s stages = %v, want %v", tc.tool, got, refused)
		}
		rec := h.records[len(h.records)-1]
		if rec.Decision != tc.decision || rec.Stage != StageAuthz || !strings.HasPrefix(rec.Reason, tc.reason) {
			t.Fatalf("%s record = %+v", tc.tool, rec)
		}
	}
	if h.grants != 4 {
		t.Fatalf("scope computed %d times for 4 calls", h.grants)
	}
}

// TestCallReusesTheScopeInItsContext: a scope already in the context is
// the call's; Grant is not asked again.
func TestCallReusesTheScopeInItsContext(t *testing.T) {
	h := newHarness(t, 10, false)
	sc := h.c.Grant(context.Background())
	ctx := WithScope(context.Background(), sc)
	var got *Scope
	_, err := h.c.Call(ctx, request("catalog_get_entity", `{}`), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		got, _ = ScopeFrom(ctx)
		return mcp.NewToolResultText("ok"), nil
	})
	if err != nil || got == nil || got.Principal != sc.Principal || got.Grant != sc.Grant || h.grants != 1 {
		t.Fatalf("err %v, scope %+v, grants %d", err, got, h.grants)
	}
	if sc.Record != nil {
		t.Fatal("the scope handed in was changed")
	}
}

// TestCallRefusals: no identity answers "sign in again" (not "not
// found"); a spent budget answers a tool error for a dispatched call and
// "not found" for a refused one; a panicking tool answers an internal
// error. Each leaves one record.
func TestCallRefusals(t *testing.T) {
	ok := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	}

	h := newHarness(t, 10, true)
	res, err := h.c.Call(context.Background(), request("catalog_get_entity", `{}`), ok)
	if err != nil || !res.IsError || !strings.Contains(resultText(res), "backstage-mcp login") {
		t.Fatalf("no identity: %v %+v", err, res)
	}
	if r := h.records[0]; r.Decision != audit.DecisionRefused || r.Rule != "identity" || r.Stage != "identity" {
		t.Fatalf("no identity record = %+v", r)
	}

	h = newHarness(t, 1, false)
	if _, err := h.c.Call(context.Background(), request("catalog_get_entity", `{}`), ok); err != nil {
		t.Fatal(err)
	}
	res, err = h.c.Call(context.Background(), request("catalog_get_entity", `{}`), ok)
	if err != nil || !res.IsError || !strings.Contains(resultText(res), "rate limited") {
		t.Fatalf("limited: %v %+v", err, res)
	}
	if _, err := h.c.Call(context.Background(), request("no_such_tool", `{}`), nil); !errors.Is(err, ErrToolNotFound) {
		t.Fatalf("limited unknown tool: %v", err)
	}
	for _, r := range h.records[1:] {
		if r.Decision != audit.DecisionRateLimited || r.Limiter == "" || r.Stage != StageRateLimit {
			t.Fatalf("limited record = %+v", r)
		}
	}

	h = newHarness(t, 10, false)
	res, err = h.c.Call(context.Background(), request("catalog_get_entity", `{}`), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		panic("boom")
	})
	if err != nil || !res.IsError || h.records[0].Decision != audit.DecisionFailed || h.records[0].Reason != "internal error" || h.records[0].Stage != StageTool {
		t.Fatalf("panic: %v %+v %+v", err, res, h.records)
	}
}

// TestCallHandsTheToolRedactedArguments: when the record's arguments hold
// a redaction, the tool sees those, not what the agent sent.
func TestCallHandsTheToolRedactedArguments(t *testing.T) {
	h := newHarness(t, 10, false)
	h.c.Arguments = func(json.RawMessage, bool) (json.RawMessage, map[string]int) {
		return json.RawMessage(`{"ref":"[REDACTED:test]"}`), map[string]int{"test": 1}
	}
	var got string
	_, err := h.c.Call(context.Background(), request("catalog_get_entity", `{"ref":"secret"}`), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		got = string(req.Params.RawArguments)
		return mcp.NewToolResultText("ok"), nil
	})
	if err != nil || got != `{"ref":"[REDACTED:test]"}` || h.records[0].ArgumentRedactions["test"] != 1 || len(h.records[0].Redactions) != 0 {
		t.Fatalf("tool saw %s (err %v), record %+v", got, err, h.records[0])
	}
}

// TestToolErrorDecisions: a tool's error result is recorded by what it
// was: a read the policy hid is hidden_by_policy (not a typo), a missing
// entity failed at the tool, invalid arguments refused, Backstage failing
// failed upstream.
func TestToolErrorDecisions(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		hidden int
		want   audit.Decision
		stage  string
	}{
		{tools.ErrNotFound, 1, audit.DecisionHiddenByPolicy, StagePolicy},
		{tools.ErrNotFound, 0, audit.DecisionFailed, StageTool},
		{tools.ErrArguments, 0, audit.DecisionRefused, StageArguments},
		{tools.ErrUpstream, 0, audit.DecisionFailed, StageUpstream},
		{tools.ErrRedaction, 0, audit.DecisionFailed, StageEgress},
		{tools.ErrOther, 0, audit.DecisionFailed, StageTool},
	} {
		d, stage := errorDecision(tc.kind, tc.hidden)
		if d != tc.want || stage != tc.stage {
			t.Errorf("%s hidden %d: %s/%s, want %s/%s", tc.kind, tc.hidden, d, stage, tc.want, tc.stage)
		}
	}
}

// TestRecordNamesTheRequest: issuer, token id, client address and
// User-Agent reach the record; a User-Agent with control characters is
// cleaned.
func TestRecordNamesTheRequest(t *testing.T) {
	h := newHarness(t, 10, false)
	r := request("catalog_get_entity", `{}`)
	r.Source, r.UserAgent = "203.0.113.7", "agent/1.0\r\nX-Injected: 1"
	if _, err := h.c.Call(context.Background(), r, func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	}); err != nil {
		t.Fatal(err)
	}
	rec := h.records[0]
	if rec.Source != "203.0.113.7" || rec.UserAgent != "agent/1.0??X-Injected: 1" || rec.User.Issuer == "" {
		t.Fatalf("record = %+v", rec)
	}
}
