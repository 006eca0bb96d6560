package server

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// scrape reads every sample of the admin listener's /metrics that a
// caller's calls could move, keyed by series. Timing (histogram sums and
// buckets) and the Go runtime's and process's own series are left out:
// they move with the machine, not with the data.
func scrape(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.HasPrefix(line, "go_") || strings.HasPrefix(line, "process_") || strings.HasPrefix(line, "promhttp_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		name := line[:i]
		base, _, _ := strings.Cut(name, "{")
		if strings.HasSuffix(base, "_sum") || strings.HasSuffix(base, "_bucket") {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[name] = v
	}
	return out
}

// diff is after − before, non-zero series only, in a stable order.
func diff(before, after map[string]float64) []string {
	var d []string
	for k, v := range after {
		if dv := v - before[k]; dv != 0 {
			d = append(d, k+" "+strconv.FormatFloat(dv, 'g', -1, 64))
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			d = append(d, k+" "+strconv.FormatFloat(-v, 'g', -1, 64))
		}
	}
	sort.Strings(d)
	return d
}

// TestMetricsSameForHiddenAndMissing: what every metric series does around
// a call on an entity the caller may not see is what it does around the
// same call on an entity that does not exist. (The metrics are on the
// admin listener only; this keeps them free of the oracle even for an
// operator who is also a caller, and for a scraper that leaks.)
func TestMetricsSameForHiddenAndMissing(t *testing.T) {
	env := newPolicyEnv(t, twoTeamsPolicy, ben, teamScopes...)
	hidden := []string{"component:default/orders-service", "api:default/orders-api", "resource:default/orders-db"}
	missing := []string{"component:default/orders-servicf", "api:default/orders-apj", "resource:default/orders-dc"}
	for _, tool := range []string{"catalog_get_entity", "catalog_get_relations", "catalog_find_owner"} {
		for i := range hidden {
			probe := func(ref string) ([]string, string) {
				before := scrape(t, env.s)
				_, text, isErr, err := env.call(t, tool, `{"ref":"`+ref+`"}`)
				if err != nil || !isErr {
					t.Fatalf("%s(%s) = %q, %v; want a tool error", tool, ref, text, err)
				}
				return diff(before, scrape(t, env.s)), text
			}
			dh, th := probe(hidden[i])
			dm, tm := probe(missing[i])
			if strings.Join(dh, "\n") != strings.Join(dm, "\n") {
				t.Errorf("%s: metrics around a hidden entity differ from a missing one:\nhidden:  %v\nmissing: %v", tool, dh, dm)
			}
			if strings.ReplaceAll(th, hidden[i], "REF") != strings.ReplaceAll(tm, missing[i], "REF") {
				t.Errorf("%s: answers differ: %q vs %q", tool, th, tm)
			}
		}
	}
}
