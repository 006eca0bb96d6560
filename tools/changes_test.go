package tools

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// memFeed is a memory change log holding changes (oldest first), begun
// at start.
func memFeed(t *testing.T, now time.Time, start time.Time, changes ...catalog.Change) *catalog.MemoryChangeLog {
	t.Helper()
	l := catalog.NewMemoryChangeLog(100, 365*24*time.Hour, func() time.Time { return now })
	if err := l.Begin(context.Background(), start); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), changes); err != nil {
		t.Fatal(err)
	}
	return l
}

// maskAnnotations sees everything but annotations.
type maskAnnotations struct{ OpenAccess }

func (maskAnnotations) Masks() bool { return true }

func (maskAnnotations) Mask(e map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range e {
		out[k] = v
	}
	if md, ok := e["metadata"].(map[string]any); ok {
		m := map[string]any{}
		for k, v := range md {
			if k != "annotations" {
				m[k] = v
			}
		}
		out["metadata"] = m
	}
	return out
}

// TestListChanges: in pass-through mode the tool says it needs mirror
// mode; in mirror mode it lists the changes the caller can see: not those
// to hidden entities, not a change only to a field masked for it.
func TestListChanges(t *testing.T) {
	d := demoDeps(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	d.Now = func() time.Time { return now }
	res := call(t, ListChanges(d), openCtx(), `{}`)
	if res.IsError || !strings.Contains(text(res), "needs catalog mirror mode") {
		t.Fatalf("pass-through: %s", text(res))
	}

	raw := func(ref string) json.RawMessage {
		r, _ := catalog.ParseRef(ref, "")
		b, err := d.Catalog.GetByName(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// payments-service as it was: another PagerDuty id (an annotation).
	var before map[string]any
	_ = json.Unmarshal(raw("component:default/payments-service"), &before)
	before["metadata"].(map[string]any)["annotations"].(map[string]any)["pagerduty.com/service-id"] = "POLD000"
	oldPayments, _ := json.Marshal(before)
	gone := json.RawMessage(`{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"old-billing","namespace":"default","title":"Old Billing"},"spec":{"type":"service","owner":"team-checkout"}}`)
	at := now.Add(-2 * time.Hour)
	d.Changes = memFeed(t, now, now.Add(-40*24*time.Hour),
		catalog.Change{Op: catalog.ChangeAdded, Ref: "api:default/orders-api", At: now.Add(-30 * 24 * time.Hour)},
		catalog.Change{Op: catalog.ChangeRemoved, Ref: "component:default/old-billing", At: at, Before: gone},
		catalog.Change{Op: catalog.ChangeChanged, Ref: "component:default/payments-service", At: at, Before: oldPayments},
		catalog.Change{Op: catalog.ChangeAdded, Ref: "component:default/orders-service", At: at},
		catalog.Change{Op: catalog.ChangeAdded, Ref: "component:default/checkout-service", At: at},
	)
	got := text(call(t, ListChanges(d), openCtx(), `{}`))
	for _, w := range []string{"4 changes", "added component:default/checkout-service \"Checkout Service\"", "added component:default/orders-service",
		"changed component:default/payments-service", "removed component:default/old-billing \"Old Billing\"", "2026-12-07T10:00:00Z"} {
		if !strings.Contains(got, w) {
			t.Errorf("lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "orders-api") || strings.Contains(got, "the feed") {
		t.Errorf("a change older than since is listed, or a coverage note where since is covered:\n%s", got)
	}
	if got := text(call(t, ListChanges(d), openCtx(), `{"since":"60d","kind":"API"}`)); !strings.Contains(got, "added api:default/orders-api") || strings.Contains(got, "component:") {
		t.Errorf("kind API over 60 days:\n%s", got)
	}
	if got := text(call(t, ListChanges(d), openCtx(), `{"limit":1}`)); !strings.Contains(got, "1 changes") || !strings.Contains(got, "(more") {
		t.Errorf("limit 1:\n%s", got)
	}

	hidden := hideAccess{hidden: map[string]bool{"component:default/orders-service": true, "component:default/old-billing": true}}
	got = text(call(t, ListChanges(d), WithAccess(context.Background(), hidden), `{}`))
	if strings.Contains(got, "orders-service") || strings.Contains(got, "old-billing") || !strings.Contains(got, "2 changes") {
		t.Errorf("hidden entities' changes show:\n%s", got)
	}
	got = text(call(t, ListChanges(d), WithAccess(context.Background(), maskAnnotations{}), `{}`))
	if strings.Contains(got, "payments-service") || !strings.Contains(got, "3 changes") {
		t.Errorf("a change to a masked field shows:\n%s", got)
	}
	// A feed younger than since says so: in memory, from this server's
	// start on.
	d.Changes = memFeed(t, now, now.Add(-time.Hour))
	got = text(call(t, ListChanges(d), openCtx(), `{}`))
	if !strings.Contains(got, "the feed starts when this server started, 2026-12-07T11:00:00Z") || !strings.Contains(got, "a restart forgets it") {
		t.Errorf("memory feed coverage:\n%s", got)
	}
	if r := call(t, ListChanges(d), openCtx(), `{"since":"last week"}`); !r.IsError || !strings.Contains(text(r), `"since"`) {
		t.Errorf("bad since: %s", text(r))
	}
}

// TestListChangesSaysRestarts: a server that started with no copy to
// compare (a restart mark in a log that outlives restarts) is said in the
// answer, with its time, and is not listed as a change; a window after it
// says nothing of it.
func TestListChangesSaysRestarts(t *testing.T) {
	d := demoDeps(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	d.Now = func() time.Time { return now }
	restart := now.Add(-3 * time.Hour)
	d.Changes = memFeed(t, now, now.Add(-40*24*time.Hour),
		catalog.Change{Op: catalog.ChangeRestart, Ref: "-", At: restart},
		catalog.Change{Op: catalog.ChangeAdded, Ref: "component:default/orders-service", At: now.Add(-time.Hour)},
	)
	res := call(t, ListChanges(d), openCtx(), `{}`)
	got := text(res)
	if !strings.Contains(got, "1 changes") || !strings.Contains(got, "added component:default/orders-service") ||
		!strings.Contains(got, "a server started at 2026-12-07T09:00:00Z with no copy of the catalog to compare") || strings.Contains(got, "restart -") {
		t.Errorf("a restart in the window:\n%s", got)
	}
	var out ChangesResult
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil || len(out.Changes) != 1 || !strings.Contains(out.Coverage, "no running server saw") {
		t.Errorf("structured: %+v %v", out, err)
	}
	if got := text(call(t, ListChanges(d), openCtx(), `{"since":"2h"}`)); strings.Contains(got, "a server started") {
		t.Errorf("a restart before the window is said:\n%s", got)
	}
}
