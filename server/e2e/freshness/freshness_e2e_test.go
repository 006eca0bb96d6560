//go:build e2e

// Package freshness measures the freshness lag of the catalog mirror
// (catalog.mode: mirror) against a real Backstage: how long after
// Backstage itself shows a change over REST an agent sees it through
// backstage-mcp's MCP tools.
//
// Run it with
//
//	go test -tags e2e -count=1 -v -run TestMirrorFreshnessLag ./server/e2e/freshness/
//
// It starts its own Backstage whose only location is a file the test
// rewrites, and a backstage-mcp server in mirror mode with a short
// syncInterval. Each round edits one entity, adds one and deletes one
// (the file is rewritten, Backstage is asked to refresh the location, and
// the deleted entity is unregistered by uid), then polls Backstage's REST
// API and the server's catalog_get_entity tool (over Streamable HTTP) until
// each change shows. It logs the lag figures and asserts only the
// behaviour bound: no change takes longer than catalog.maxStaleness to
// reach the agent once Backstage shows it.
package freshness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// The mirror's settings for the measurement: a short interval so that the
// test runs in about a minute, and the staleness bound the lag must keep.
const (
	syncInterval = 2 * time.Second
	maxStaleness = 10 * time.Second
	rounds       = 8 // three changes each: an edit, an add and a delete
	localUser    = "user:default/amelia.hart"
	// restPoll and mcpPoll are the polling periods; they bound the
	// measurement's resolution.
	restPoll = 50 * time.Millisecond
	mcpPoll  = 25 * time.Millisecond
	// giveUp bounds the wait for one change to show anywhere.
	giveUp = 90 * time.Second
)

// world is the catalog file's content: entity name → title.
type world map[string]string

func (w world) yaml() []byte {
	var b bytes.Buffer
	docs := []map[string]any{
		{"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": map[string]any{"name": "team-fresh"},
			"spec": map[string]any{"type": "team", "children": []any{}}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": map[string]any{"name": "amelia.hart"},
			"spec": map[string]any{"profile": map[string]any{"email": "amelia.hart@example.com"}, "memberOf": []any{"team-fresh"}}},
	}
	names := make([]string, 0, len(w))
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		docs = append(docs, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": n, "title": w[n]},
			"spec":     map[string]any{"type": "service", "lifecycle": "production", "owner": "team-fresh"}})
	}
	for _, d := range docs {
		j, _ := json.Marshal(d) // JSON is YAML
		b.WriteString("---\n")
		b.Write(j)
		b.WriteString("\n")
	}
	return b.Bytes()
}

// change is one edit, add or delete and its timeline.
type change struct {
	op, name, title string // title: the new title of an edit
	write, rest     time.Time
	visible         time.Time // first tool answer showing the change
	syncedAt        time.Time // _meta.catalogSyncedAt of that answer
	restErr, mcpErr error
}

func TestMirrorFreshnessLag(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "catalog.yaml")
	w := world{}
	for i := range rounds {
		w[fmt.Sprintf("fresh-del-%02d", i)] = "to delete"
	}
	for i := range 2 {
		w[fmt.Sprintf("fresh-edit-%d", i)] = "rev-0"
	}
	if err := os.WriteFile(file, w.yaml(), 0o600); err != nil {
		t.Fatal(err)
	}
	locs, _ := json.Marshal([]map[string]string{{"type": "file", "target": file}})
	t.Setenv("APP_CONFIG_catalog_locations", string(locs))
	bs := harness.StartWith(t, ctx, harness.Options{LogFile: filepath.Join(dir, "backstage.log"), MinEntities: len(w) + 3})
	rest := &restClient{bs: bs, hc: &http.Client{Timeout: 10 * time.Second}}
	locRef := rest.locationRef(t, file)

	s := newMirrorServer(t, bs, dir)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	mc := servertest.ConnectHTTP(t, hs.URL+"/mcp", "")
	// The first full sync: wait until the agent sees the catalog.
	waitFor(t, "the mirror's first sync", func() bool {
		res, _, err := getEntity(mc, "component:default/fresh-edit-0")
		return err == nil && res != nil && !res.IsError
	})

	var all []*change
	for r := range rounds {
		// Start each round at a random phase of the sync cycle.
		time.Sleep(rand.N(syncInterval))
		edit := fmt.Sprintf("fresh-edit-%d", r%2)
		title := fmt.Sprintf("rev-%d", r+1)
		add := fmt.Sprintf("fresh-add-%02d", r)
		del := fmt.Sprintf("fresh-del-%02d", r)
		delUID := rest.uid(t, del)
		w[edit] = title
		w[add] = "added"
		delete(w, del)
		cs := []*change{{op: "edit", name: edit, title: title}, {op: "add", name: add}, {op: "delete", name: del}}

		write := time.Now()
		if err := os.WriteFile(file, w.yaml(), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			c.write = write
		}
		// Refreshing an entity refreshes its location ancestors, which
		// read the file again; the location brings in the new entity.
		rest.refresh(t, "component:default/"+edit)
		rest.refresh(t, locRef)
		rest.unregister(t, delUID)

		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(2)
			go func() { defer wg.Done(); c.rest, c.restErr = pollREST(rest, c) }()
			go func() { defer wg.Done(); c.visible, c.syncedAt, c.mcpErr = pollMCP(mc, c) }()
		}
		wg.Wait()
		for _, c := range cs {
			if err := errors.Join(c.restErr, c.mcpErr); err != nil {
				t.Fatalf("%s %s: %v", c.op, c.name, err)
			}
		}
		all = append(all, cs...)
	}

	// The behaviour bound: once Backstage shows a change, the agent sees it
	// within catalog.maxStaleness.
	for _, c := range all {
		if lag := c.visible.Sub(c.rest); lag > maxStaleness {
			t.Errorf("%s %s: visible to the agent %s after Backstage showed it, more than maxStaleness %s",
				c.op, c.name, lag, maxStaleness)
		}
	}
	report(t, all)
}

// report logs the figures: lag after Backstage's REST API shows the change
// (split into the wait for the next sync and the sync's own cost), lag
// after the write, and Backstage's own processing time.
func report(t *testing.T, all []*change) {
	var lag, wait, cost, fromWrite, backstage []time.Duration
	var deletes []time.Duration
	for _, c := range all {
		lag = append(lag, c.visible.Sub(c.rest))
		wait = append(wait, c.syncedAt.Sub(c.rest))
		cost = append(cost, c.visible.Sub(c.syncedAt))
		fromWrite = append(fromWrite, c.visible.Sub(c.write))
		backstage = append(backstage, c.rest.Sub(c.write))
		if c.op == "delete" {
			deletes = append(deletes, c.visible.Sub(c.rest))
		}
	}
	in := func(d time.Duration) string { return fmt.Sprintf("%.2f×", d.Seconds()/syncInterval.Seconds()) }
	t.Logf("mirror freshness: %d changes (%d edits, %d adds, %d deletes), syncInterval %s, maxStaleness %s",
		len(all), rounds, rounds, rounds, syncInterval, maxStaleness)
	t.Logf("  lag after Backstage shows it (REST):  p50 %s (%s syncInterval)  p99 %s (%s)  max %s",
		pct(lag, 50), in(pct(lag, 50)), pct(lag, 99), in(pct(lag, 99)), pct(lag, 100))
	t.Logf("    = wait for the next sync to start:  p50 %s (%s)  p99 %s (%s)",
		pct(wait, 50), in(pct(wait, 50)), pct(wait, 99), in(pct(wait, 99)))
	t.Logf("    + fixed cost (sync, swap, answer):   p50 %s  p99 %s", pct(cost, 50), pct(cost, 99))
	t.Logf("  deletes only, after REST:             p50 %s  p99 %s", pct(deletes, 50), pct(deletes, 99))
	t.Logf("  lag after the write (file + refresh): p50 %s  p99 %s", pct(fromWrite, 50), pct(fromWrite, 99))
	t.Logf("  Backstage's own lag (write → REST):   p50 %s  p99 %s", pct(backstage, 50), pct(backstage, 99))
	t.Logf("  (polling every %s on REST and %s on MCP bounds the resolution)", restPoll, mcpPoll)
}

// pct is the p-th percentile (nearest rank) of ds, rounded to the
// millisecond.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = min(max(i, 1), len(s))
	return s[i-1].Round(time.Millisecond)
}

func newMirrorServer(t *testing.T, bs *harness.Backstage, dir string) *server.Server {
	t.Helper()
	root := harness.RepoRoot(t)
	p := filepath.Join(dir, "config.yaml")
	cfg := "backstage:\n  baseUrl: " + bs.BaseURL + "\n  token: ${E2E_BACKSTAGE_TOKEN}\n" +
		"policy:\n  file: " + filepath.Join(root, "testdata/policies/anonymous-read.yaml") + "\n" +
		"audit:\n  path: " + filepath.Join(dir, "audit.log") + "\n" +
		"catalog:\n  mode: mirror\n  syncInterval: " + syncInterval.String() + "\n  maxStaleness: " + maxStaleness.String() + "\n" +
		// The test polls faster than an agent calls; rate limits are not under test.
		"rateLimits:\n  defaultClass: high\n  classes:\n    high: {unlimited: true}\n  agent: {unlimited: true}\n  global: {unlimited: true}\n"
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := server.LoadConfig(p, func(k string) string {
		if k == "E2E_BACKSTAGE_TOKEN" {
			return bs.Token
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	s, closeFn, err := server.Build(context.Background(), c, server.BuildOptions{LocalUser: localUser, Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return s
}

// pollREST polls Backstage's REST API until it shows c.
func pollREST(rest *restClient, c *change) (time.Time, error) {
	deadline := c.write.Add(giveUp)
	for time.Now().Before(deadline) {
		title, found, err := rest.title(c.name)
		if err != nil {
			return time.Time{}, err
		}
		if shows(c, found, title) {
			return time.Now(), nil
		}
		time.Sleep(restPoll)
	}
	return time.Time{}, fmt.Errorf("Backstage did not show the change within %s", giveUp)
}

// pollMCP polls the catalog_get_entity tool until it shows c, and returns
// when it did and the catalogSyncedAt of that answer.
func pollMCP(mc *client.Client, c *change) (time.Time, time.Time, error) {
	deadline := c.write.Add(giveUp)
	for time.Now().Before(deadline) {
		res, body, err := getEntity(mc, "component:default/"+c.name)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		now := time.Now()
		found := !res.IsError
		if res.IsError && !strings.Contains(servertest.Text(res), "not found") {
			return time.Time{}, time.Time{}, fmt.Errorf("tool error: %s", servertest.Text(res))
		}
		if shows(c, found, body.Title) {
			var synced time.Time
			if res.Meta != nil {
				s, _ := res.Meta.AdditionalFields["catalogSyncedAt"].(string)
				synced, _ = time.Parse(time.RFC3339Nano, s)
			}
			if synced.IsZero() {
				return time.Time{}, time.Time{}, errors.New("the answer has no _meta.catalogSyncedAt")
			}
			return now, synced, nil
		}
		time.Sleep(mcpPoll)
	}
	return time.Time{}, time.Time{}, fmt.Errorf("the agent did not see the change within %s", giveUp)
}

// shows reports whether a read (entity found, with title) reflects c.
func shows(c *change, found bool, title string) bool {
	switch c.op {
	case "edit":
		return found && title == c.title
	case "add":
		return found
	default:
		return !found
	}
}

type summary struct {
	Title string `json:"title"`
}

// getEntity calls catalog_get_entity; body is the structured summary of a
// successful answer.
func getEntity(mc *client.Client, ref string) (*mcp.CallToolResult, summary, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "catalog_get_entity"
	req.Params.Arguments = map[string]any{"ref": ref}
	res, err := mc.CallTool(ctx, req)
	var s summary
	if err != nil {
		return nil, s, fmt.Errorf("catalog_get_entity: %w", err)
	}
	if !res.IsError {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, s, fmt.Errorf("catalog_get_entity: structured content: %w", err)
		}
	}
	return res, s, nil
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(giveUp)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restClient writes to and reads Backstage's catalog REST API with the
// harness's static token.
type restClient struct {
	bs *harness.Backstage
	hc *http.Client
}

func (r *restClient) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := r.bs.NewRequest(context.Background(), method, path, rd)
	if err != nil {
		return 0, nil, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, data, err
}

// title reads a component's title; found is false on 404.
func (r *restClient) title(name string) (title string, found bool, err error) {
	code, data, err := r.do(http.MethodGet, "/api/catalog/entities/by-name/component/default/"+name, nil)
	switch {
	case err != nil:
		return "", false, err
	case code == http.StatusNotFound:
		return "", false, nil
	case code != http.StatusOK:
		return "", false, fmt.Errorf("GET %s: status %d", name, code)
	}
	var e struct {
		Metadata struct {
			Title string `json:"title"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return "", false, err
	}
	return e.Metadata.Title, true, nil
}

func (r *restClient) uid(t *testing.T, name string) string {
	t.Helper()
	var e struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	if err := r.bs.GetJSON(context.Background(), "/api/catalog/entities/by-name/component/default/"+name, &e); err != nil {
		t.Fatal(err)
	}
	return e.Metadata.UID
}

func (r *restClient) refresh(t *testing.T, ref string) {
	t.Helper()
	code, data, err := r.do(http.MethodPost, "/api/catalog/refresh", map[string]string{"entityRef": ref})
	if err != nil || code/100 != 2 {
		t.Fatalf("refresh %s: %d %s %v", ref, code, data, err)
	}
}

// unregister deletes an entity by uid, as Backstage's "unregister entity"
// does for an entity its location no longer holds.
func (r *restClient) unregister(t *testing.T, uid string) {
	t.Helper()
	code, data, err := r.do(http.MethodDelete, "/api/catalog/entities/by-uid/"+uid, nil)
	if err != nil || code/100 != 2 {
		t.Fatalf("delete %s: %d %s %v", uid, code, data, err)
	}
}

// locationRef finds the Location entity Backstage made for the config
// location of file.
func (r *restClient) locationRef(t *testing.T, file string) string {
	t.Helper()
	var page struct {
		Items []struct {
			Metadata struct {
				Name, Namespace string
			} `json:"metadata"`
			Spec struct {
				Target  string   `json:"target"`
				Targets []string `json:"targets"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := r.bs.GetJSON(context.Background(), "/api/catalog/entities/by-query?filter=kind=location&limit=100", &page); err != nil {
		t.Fatal(err)
	}
	for _, it := range page.Items {
		if strings.HasSuffix(it.Spec.Target, filepath.Base(file)) || slices.ContainsFunc(it.Spec.Targets, func(s string) bool {
			return strings.HasSuffix(s, filepath.Base(file))
		}) {
			return "location:" + it.Metadata.Namespace + "/" + it.Metadata.Name
		}
	}
	t.Fatalf("no Location entity for %s among %d", file, len(page.Items))
	return ""
}
