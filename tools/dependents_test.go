package tools

import (
	"context"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// hideAccess hides the entities whose lower-case refs it holds, decided by
// ref alone.
type hideAccess struct {
	OpenAccess
	hidden map[string]bool
}

func (h hideAccess) Visible(e map[string]any) bool { return !h.hidden[strings.ToLower(entityRef(e))] }

func (h hideAccess) VisibleRef(ref string) (bool, bool) { return !h.hidden[strings.ToLower(ref)], true }

func (h hideAccess) ConstrainScan(user []catalog.Filter) ([]catalog.Filter, bool) { return user, false }

func (h hideAccess) Constrain(user []catalog.Filter) ([]catalog.Filter, bool, bool) {
	return user, false, false
}

// TestFindDependents: the dependents of orders-service are the four
// consumers of its two APIs, each with its owner, and the owning teams
// with their contacts, in the text the model reads; a hidden API hides
// the consumers reached only through it, and a hidden owner is neither
// named nor counted.
func TestFindDependents(t *testing.T) {
	d := demoDeps(t)
	res := call(t, FindDependents(d), openCtx(), `{"ref":"component:default/orders-service"}`)
	got := text(res)
	for _, want := range []string{
		"4 dependents",
		"component:default/checkout-service", "consumes api:default/orders-api",
		"component:default/shipping-service", "component:default/notification-service", "component:default/analytics-pipeline",
		"group:default/team-checkout", "<checkout@acme-retail.example>", "slack.com/channel=team-checkout",
		"pagerduty.com/service-id=PCHK7Q2",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("text lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "orders-db") {
		t.Errorf("a dependency is listed as a dependent:\n%s", got)
	}

	hidden := hideAccess{hidden: map[string]bool{"api:default/order-events": true, "group:default/team-checkout": true}}
	ctx := WithAccess(context.Background(), hidden)
	got = text(call(t, FindDependents(d), ctx, `{"ref":"component:default/orders-service"}`))
	for _, gone := range []string{"order-events", "shipping-service", "notification-service", "analytics-pipeline", "team-checkout", "checkout@"} {
		if strings.Contains(got, gone) {
			t.Errorf("hidden or unreachable %q shows:\n%s", gone, got)
		}
	}
	if !strings.Contains(got, "1 dependents within 3 hops, owned by 0 teams") || !strings.Contains(got, "component:default/checkout-service") {
		t.Errorf("visible dependent missing:\n%s", got)
	}

	got = text(call(t, FindDependents(d), openCtx(), `{"ref":"resource:default/orders-db","depth":1}`))
	if !strings.Contains(got, "1 dependents") || !strings.Contains(got, "component:default/orders-service") || !strings.Contains(got, "dependsOn it") {
		t.Errorf("orders-db:\n%s", got)
	}
	got = text(call(t, FindDependents(d), openCtx(), `{"ref":"component:default/money-lib","depth":1}`))
	if !strings.Contains(got, "1 dependents") || !strings.Contains(got, "checkout-service") {
		t.Errorf("money-lib:\n%s", got)
	}
	if r := call(t, FindDependents(d), ctx, `{"ref":"group:default/team-checkout"}`); !r.IsError || !strings.Contains(text(r), "not found") {
		t.Errorf("hidden root: %s", text(r))
	}
}

// TestRelationsDescriptionRecipe: the recipe catalog_get_relations' own
// description gives for "what depends on X" finds orders-service's four
// dependents, as catalog_find_dependents does (the recipe it gave before
// found none).
func TestRelationsDescriptionRecipe(t *testing.T) {
	d := demoDeps(t)
	desc := GetRelations(d).Tool.Description
	if !strings.Contains(desc, "[dependencyOf, providesApi, apiConsumedBy] and depth 2-3") || !strings.Contains(desc, "catalog_find_dependents") {
		t.Fatalf("the description no longer gives the recipe: %s", desc)
	}
	got := text(call(t, GetRelations(d), openCtx(), `{"ref":"component:default/orders-service","relations":["dependencyOf","providesApi","apiConsumedBy"],"depth":2}`))
	for _, w := range []string{"apiConsumedBy component:default/checkout-service", "apiConsumedBy component:default/shipping-service",
		"apiConsumedBy component:default/notification-service", "apiConsumedBy component:default/analytics-pipeline"} {
		if !strings.Contains(got, w) {
			t.Errorf("recipe misses %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "orders-db") {
		t.Errorf("recipe lists a dependency:\n%s", got)
	}
}
