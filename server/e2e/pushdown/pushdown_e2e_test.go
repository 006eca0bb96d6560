//go:build e2e

// Package pushdown measures, on a real Backstage, what the shape of a
// pushed-down policy condition costs Backstage's query builder, so that
// the tools send the cheapest shape that selects the same entities, and
// what asking for the summary's fields costs against whole entities.
//
// Run it with
//
//	go test -tags e2e -count=1 -v -run TestPushdownShapes ./server/e2e/pushdown/
//
// (PUSHDOWN_ENTITIES sets the catalog size, 10,000 by default). It reports
// latencies; it asserts only that every shape, and both projections,
// select the same entities.
package pushdown

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
)

// catalog writes n entities in files of 500: components, APIs and
// resources owned by 100 teams, 85% in namespace default, 10% in platform
// and 5% in sandbox, the distribution of a catalog whose policy allows
// [default, platform]. It returns the files.
func catalog(t *testing.T, dir string, n int) []string {
	t.Helper()
	var files []string
	var b strings.Builder
	count := 0
	flush := func() {
		if b.Len() == 0 {
			return
		}
		file := filepath.Join(dir, fmt.Sprintf("catalog-%03d.yaml", len(files)))
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, file)
		b.Reset()
	}
	write := func(e map[string]any) {
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(j)
		b.WriteString("\n")
		if count++; count%500 == 0 {
			flush()
		}
	}
	const teams = 100
	for i := range teams {
		write(map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
			"metadata": map[string]any{"name": fmt.Sprintf("team-%d", i)},
			"spec":     map[string]any{"type": "team", "children": []any{}}})
	}
	for i := range n - teams {
		ns := "default"
		switch i % 20 {
		case 0, 1:
			ns = "platform"
		case 2:
			ns = "sandbox"
		}
		kind, typ := "Component", "service"
		switch i % 7 {
		case 0:
			kind, typ = "API", "openapi"
		case 1:
			kind, typ = "Resource", "database"
		}
		spec := map[string]any{"type": typ, "lifecycle": "production", "owner": fmt.Sprintf("group:default/team-%d", i%teams)}
		if kind == "API" {
			spec["definition"] = "openapi: 3.0.0"
		}
		write(map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": kind,
			"metadata": map[string]any{"name": fmt.Sprintf("e-%05d", i), "namespace": ns,
				"description": "Generated entity " + strconv.Itoa(i), "tags": []any{"gen", "t" + strconv.Itoa(i%13)}},
			"spec": spec})
	}
	flush()
	return files
}

// shape is one way of writing the same selection as Backstage filters.
type shape struct {
	name    string
	filters []string
	// post re-checks an entity on our side (nil: Backstage's answer is
	// already the selection).
	post func(ns string) bool
}

func allowed(ns string) bool { return ns == "default" || ns == "platform" }

// shapesFor writes "user condition AND namespace in [default, platform]"
// four ways.
func shapesFor(user string) []shape {
	return []shape{
		{name: "two-valued", filters: []string{user + ",metadata.namespace=default,metadata.namespace=platform"}},
		{name: "split", filters: []string{user + ",metadata.namespace=default", user + ",metadata.namespace=platform"}},
		{name: "dropped+post", filters: []string{user}, post: allowed},
		{name: "one-valued (ref)", filters: []string{user + ",metadata.namespace=default"}},
	}
}

type client struct {
	bs *harness.Backstage
	hc *http.Client
}

type page struct {
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	} `json:"items"`
	TotalItems int `json:"totalItems"`
	PageInfo   struct {
		NextCursor string `json:"nextCursor"`
	} `json:"pageInfo"`
}

func (c *client) query(ctx context.Context, v url.Values) (*page, time.Duration, error) {
	req, err := c.bs.NewRequest(ctx, http.MethodGet, "/api/catalog/entities/by-query?"+v.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	d := time.Since(t0)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, 0, err
	}
	return &p, d, nil
}

// firstPage is what a 20-result search costs Backstage: the first page of
// a query (its total counted), with the fields a summary reads, refilled
// from further pages while the post-filter drops entities. It returns the
// kept names and the time spent.
func (c *client) firstPage(ctx context.Context, s shape, want int) ([]string, time.Duration, error) {
	var names []string
	var total time.Duration
	v := url.Values{}
	for _, f := range s.filters {
		v.Add("filter", f)
	}
	v.Set("limit", strconv.Itoa(want+1))
	v.Set("fields", "kind,metadata.name,metadata.namespace,metadata.title,metadata.description,metadata.tags,spec.type,spec.lifecycle,spec.owner,spec.system,relations")
	for {
		p, d, err := c.query(ctx, v)
		if err != nil {
			return nil, 0, err
		}
		total += d
		for _, it := range p.Items {
			if s.post == nil || s.post(it.Metadata.Namespace) {
				names = append(names, it.Metadata.Namespace+"/"+it.Metadata.Name)
			}
		}
		if len(names) > want || p.PageInfo.NextCursor == "" {
			return names[:min(len(names), want+1)], total, nil
		}
		v = url.Values{"cursor": {p.PageInfo.NextCursor}, "limit": {strconv.Itoa(want + 1)}, "fields": {v.Get("fields")}}
	}
}

// all reads every entity a shape selects (for the equality check).
func (c *client) all(ctx context.Context, s shape) ([]string, int, error) {
	v := url.Values{}
	for _, f := range s.filters {
		v.Add("filter", f)
	}
	v.Set("limit", "1000")
	v.Set("fields", "metadata.name,metadata.namespace")
	var names []string
	total := -1
	for {
		p, _, err := c.query(ctx, v)
		if err != nil {
			return nil, 0, err
		}
		if total < 0 {
			total = p.TotalItems
		}
		for _, it := range p.Items {
			if s.post == nil || s.post(it.Metadata.Namespace) {
				names = append(names, it.Metadata.Namespace+"/"+it.Metadata.Name)
			}
		}
		if p.PageInfo.NextCursor == "" {
			sort.Strings(names)
			return names, total, nil
		}
		v = url.Values{"cursor": {p.PageInfo.NextCursor}, "limit": {"1000"}, "fields": {v.Get("fields")}}
	}
}

// startCatalog starts a real Backstage with the generated catalog of
// PUSHDOWN_ENTITIES entities (10,000 by default) and waits until its
// owner relations are stitched.
func startCatalog(t *testing.T) (*client, int) {
	t.Helper()
	n := 10000
	if s := os.Getenv("PUSHDOWN_ENTITIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1000 {
			t.Fatalf("PUSHDOWN_ENTITIES=%q", s)
		}
	}
	dir := t.TempDir()
	var locList []map[string]string
	for _, f := range catalog(t, dir, n) {
		locList = append(locList, map[string]string{"type": "file", "target": f})
	}
	locs, _ := json.Marshal(locList)
	t.Setenv("APP_CONFIG_catalog_locations", string(locs))
	t.Setenv("APP_CONFIG_catalog_processingInterval_seconds", "3600")
	t.Setenv("NODE_OPTIONS", "--max-old-space-size=4096")
	t0 := time.Now()
	bs := harness.StartWith(t, context.Background(), harness.Options{LogFile: filepath.Join(dir, "backstage.log"), MinEntities: n + len(locList),
		BootTimeout: 5*time.Minute + time.Duration(n)*120*time.Millisecond})
	t.Logf("Backstage ready with %d entities in %s", bs.Entities, time.Since(t0).Round(time.Second))
	c := &client{bs: bs, hc: &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}}
	ctx := context.Background()
	// Relations are stitched after the entities are in: wait until the
	// owner relation of the last entity is there.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, total, err := c.all(ctx, shape{filters: []string{"relations.ownedby=group:default/team-7"}})
		if err != nil {
			t.Fatal(err)
		}
		if total >= (n-100)/100 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	return c, n
}

// TestPushdownShapes starts one Backstage for both measurements: the
// shapes of a pushed-down namespace condition, and the cost of asking for
// the summary's fields (TestPushdownShapes/projection).
func TestPushdownShapes(t *testing.T) {
	c, _ := startCatalog(t)
	t.Run("shapes", func(t *testing.T) { shapeCost(t, c) })
	t.Run("projection", func(t *testing.T) { projectionCost(t, c) })
}

// shapeCost measures the shapes of "user condition AND namespace in
// [default, platform]" on the first page of a search.
func shapeCost(t *testing.T, c *client) {
	ctx := context.Background()

	queries := []struct{ name, user string }{
		{"kind=component", "kind=component"},
		{"kind=component,owner", "kind=component,relations.ownedby=group:default/team-7"},
		{"type=service", "spec.type=service"},
	}
	rounds, perBlock := 6, 5
	if testing.Short() {
		rounds = 2
	}
	for _, q := range queries {
		shapes := shapesFor(q.user)
		// Same selection: every shape but the reference reads the same
		// entities (after the post-filter), and the exact shapes count
		// them.
		want, wantTotal, err := c.all(ctx, shapes[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range shapes[1:3] {
			got, total, err := c.all(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s %s: %d entities, two-valued %d", q.name, s.name, len(got), len(want))
			}
			if s.post == nil && total != wantTotal {
				t.Errorf("%s %s: totalItems %d, two-valued %d", q.name, s.name, total, wantTotal)
			}
		}
		lat := make([][]time.Duration, len(shapes))
		for range rounds {
			for i, s := range shapes {
				for range perBlock {
					_, d, err := c.firstPage(ctx, s, 20)
					if err != nil {
						t.Fatal(err)
					}
					lat[i] = append(lat[i], d)
				}
			}
		}
		base := median(lat[0])
		for i, s := range shapes {
			m := median(lat[i])
			t.Logf("%-22s %-18s p50 %6.1f ms  mean %6.1f ms  (%+.0f%% vs two-valued; %d selected, total %d)",
				q.name, s.name, ms(m), ms(mean(lat[i])), 100*(ms(m)/ms(base)-1), len(want), wantTotal)
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// projectionCost measures what asking Backstage for the summary's fields
// (`fields=`, as the tools' searches do) costs or saves Backstage against
// whole entities, one request at a time and 16 at once, on the first page
// of a 20-result owner search. Run it alone with
//
//	go test -tags e2e -count=1 -v -run 'TestPushdownShapes/projection' ./server/e2e/pushdown/
//
// It asserts only that both ask for the same entities.
func projectionCost(t *testing.T, c *client) {
	ctx := context.Background()
	const summary = "kind,metadata.description,metadata.links,metadata.name,metadata.namespace,metadata.tags,metadata.title,relations,spec.lifecycle,spec.owner,spec.system,spec.type"
	type variant struct {
		name   string
		fields string
		limit  int
	}
	variants := []variant{
		{"whole, limit 20 (REST)", "", 20},
		{"summary fields, limit 21 (ours)", summary, 21},
		{"whole, limit 21", "", 21},
		{"summary fields, limit 20", summary, 20},
	}
	ask := func(v variant, team int) ([]string, time.Duration, error) {
		q := url.Values{}
		q.Set("filter", fmt.Sprintf("kind=component,relations.ownedby=group:default/team-%d", team))
		q.Set("limit", strconv.Itoa(v.limit))
		if v.fields != "" {
			q.Set("fields", v.fields)
		}
		p, d, err := c.query(ctx, q)
		if err != nil {
			return nil, 0, err
		}
		var names []string
		for _, it := range p.Items {
			names = append(names, it.Metadata.Namespace+"/"+it.Metadata.Name)
		}
		return names, d, nil
	}
	// Same entities.
	for team := range 5 {
		a, _, err := ask(variants[0], team)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := ask(variants[1], team)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < len(a) || strings.Join(a, " ") != strings.Join(b[:len(a)], " ") {
			t.Errorf("team-%d: whole %v, summary %v", team, a, b)
		}
	}
	rounds, perBlock := 6, 5
	if testing.Short() {
		rounds = 2
	}
	lat := make([][]time.Duration, len(variants))
	team := 0
	for range rounds {
		for i, v := range variants {
			for range perBlock {
				team = (team + 1) % 100
				_, d, err := ask(v, team)
				if err != nil {
					t.Fatal(err)
				}
				lat[i] = append(lat[i], d)
			}
		}
	}
	base := median(lat[0])
	for i, v := range variants {
		m := median(lat[i])
		t.Logf("c1  %-32s p50 %6.1f ms  mean %6.1f ms  (%+.0f%% vs whole, limit 20)", v.name, ms(m), ms(mean(lat[i])), 100*(ms(m)/ms(base)-1))
	}
	// 16 at once: calls per second over blocks of 64 requests, the
	// variants alternating.
	const conc, block = 16, 64
	secs := make([]time.Duration, len(variants))
	for r := range rounds / 2 {
		for k := range variants {
			i := k
			if r%2 == 1 {
				i = len(variants) - 1 - k
			}
			work := make(chan int, block)
			for j := range block {
				work <- j % 100
			}
			close(work)
			errs := make(chan error, conc)
			t0 := time.Now()
			for range conc {
				go func() {
					for tm := range work {
						if _, _, err := ask(variants[i], tm); err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				}()
			}
			for range conc {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			secs[i] += time.Since(t0)
		}
	}
	for i, v := range variants {
		n := float64(block * (rounds / 2))
		t.Logf("c16 %-32s %6.1f calls/s", v.name, n/secs[i].Seconds())
	}
}
