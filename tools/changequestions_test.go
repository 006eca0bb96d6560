package tools

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/mirror"
)

// The suite's "what changed" questions need the catalog mirror: the feed
// is what one sync finds against the one before. changeScene is a
// catalog served by a mirror that synced, saw the upstream change (one
// component added, one moved to deprecated, one removed) and synced
// again.
type changeScene struct {
	mirror                  *Deps // reading the mirror, with its change feed
	added, changed, removed string
}

// newChangeScene mirrors ents, changes the upstream between two syncs
// and returns the tools' dependencies on the mirror.
func newChangeScene(t *testing.T, ents []map[string]any) *changeScene {
	t.Helper()
	const token = "svc-token"
	var cur atomic.Pointer[memcatalog.Catalog]
	set := func(es []map[string]any) {
		mc, err := memcatalog.New(es, memcatalog.WithToken(token))
		if err != nil {
			t.Fatal(err)
		}
		cur.Store(mc)
	}
	// The upstream gets its own copy: the scene changes it.
	copyOf := func(es []map[string]any) []map[string]any {
		b, err := json.Marshal(es)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	up := copyOf(ents)
	set(up)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.Load().Handler().ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	c, err := catalog.New(catalog.Config{BaseURL: srv.URL, Token: catalog.StaticToken(token)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	nowFn := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	m, err := mirror.New(mirror.Config{Upstream: c, Now: nowFn})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// Between the two syncs: a component added (a copy of the first
	// production service, renamed), one moved to deprecated, one removed.
	sc := &changeScene{}
	var next []map[string]any
	for _, e := range up {
		md, _ := e["metadata"].(map[string]any)
		spec, _ := e["spec"].(map[string]any)
		isService := strings.EqualFold(str(e, "kind"), "component") && str(e, "spec", "type") == "service" && str(e, "spec", "lifecycle") == "production" && (str(e, "metadata", "namespace") == "" || str(e, "metadata", "namespace") == "default")
		switch {
		case isService && sc.added == "":
			added := copyOf([]map[string]any{e})[0]
			amd := added["metadata"].(map[string]any)
			amd["name"] = str(e, "metadata", "name") + "-next"
			amd["title"] = "Next " + str(e, "metadata", "title")
			delete(amd, "uid")
			delete(amd, "etag")
			delete(added, "relations")
			sc.added = "component:default/" + amd["name"].(string)
			next = append(next, e, added)
		case isService && sc.changed == "":
			spec["lifecycle"] = "deprecated"
			sc.changed = "component:default/" + md["name"].(string)
			next = append(next, e)
		case isService && sc.removed == "":
			sc.removed = "component:default/" + md["name"].(string)
		default:
			next = append(next, e)
		}
	}
	if sc.removed == "" {
		t.Fatal("the catalog has fewer than three production services")
	}
	set(next)
	clock.Add(int64(10 * time.Minute))
	rep, err := m.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Full || rep.Added != 1 || rep.Removed != 1 || rep.Changed < 1 {
		t.Fatalf("the second sync: %+v, want a delta with one added, one removed and changes", rep)
	}
	clock.Add(int64(time.Minute)) // within the copy's MaxStaleness
	sc.mirror = &Deps{Catalog: m, Redactor: identityRedactor{}, Cursors: NewCursorCodec(nil), Changes: m.ChangeLog(), Now: nowFn}
	return sc
}

// changeQuestion is a "what changed" question: its paths on the mirror,
// and the facts its answer must hold there. The feed has one form (its
// lines), so the summaries-only path is the best one; the what-changed
// prompt answers the two catalog-wide questions.
type changeQuestion struct {
	id, area, ask string
	plan          func(sc *changeScene) (best, literal []qcall, facts []string)
}

var changeQuestions = []changeQuestion{
	{"chg-3", "change", "What changed in the catalog this week?", func(sc *changeScene) ([]qcall, []qcall, []string) {
		return one("catalog_list_changes", `{"since":"24h"}`), one("catalog_list_changes", `{}`),
			[]string{"added " + sc.added, "changed " + sc.changed, "removed " + sc.removed}
	}},
	{"chg-4", "change", "Which components were added or removed today?", func(sc *changeScene) ([]qcall, []qcall, []string) {
		return one("catalog_list_changes", `{"since":"24h","kind":"Component"}`), one("catalog_list_changes", `{"kind":"Component"}`),
			[]string{"added " + sc.added, "removed " + sc.removed}
	}},
	{"chg-5", "change", "Is X still in production after this week's changes?", func(sc *changeScene) ([]qcall, []qcall, []string) {
		// The feed names the change; the entity's line says what it is now.
		return []qcall{{tool: "catalog_list_changes", args: `{"since":"24h","kind":"Component"}`}, {tool: "catalog_get_entity", args: q(`{"ref":%q}`, sc.changed)}},
			[]qcall{{tool: "catalog_list_changes", args: `{"kind":"Component"}`}, {tool: "catalog_get_entity", args: q(`{"ref":%q}`, sc.changed)}},
			[]string{"changed " + sc.changed, "lifecycle=deprecated"}
	}},
}

// TestChangesNeedMirrorMode: in pass-through mode "what changed" gets a
// plain answer that the feed needs mirror mode, not an error and not an
// empty list that reads as "nothing changed".
func TestChangesNeedMirrorMode(t *testing.T) {
	res := call(t, ListChanges(demoDeps(t)), openCtx(), `{}`)
	if res.IsError || text(res) != needsMirror {
		t.Fatalf("pass-through: %v %q", res.IsError, text(res))
	}
	if !strings.Contains(text(res), "needs catalog mirror mode") || strings.Contains(text(res), "no changes") {
		t.Fatalf("pass-through: %q", text(res))
	}
}
