package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// readDocs parses a generated file: JSON documents separated by "---".
func readDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, e)
	}
	return out
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{"smallest", 100},
		{"two files", 1500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			g, err := generate(dir, tc.n, 3)
			if err != nil {
				t.Fatal(err)
			}
			if g.Entities != tc.n {
				t.Errorf("generated %d entities, want %d", g.Entities, tc.n)
			}
			if want := (tc.n + 999) / 1000; len(g.Files) != want {
				t.Errorf("%d files, want %d", len(g.Files), want)
			}
			names := map[string]bool{}
			groups := map[string]bool{}
			var docs []map[string]any
			for _, f := range g.Files {
				docs = append(docs, readDocs(t, f)...)
			}
			if len(docs) != tc.n {
				t.Fatalf("files hold %d entities, want %d", len(docs), tc.n)
			}
			for _, d := range docs {
				md := d["metadata"].(map[string]any)
				key := strings.ToLower(d["kind"].(string)) + ":" + md["name"].(string)
				if names[key] {
					t.Errorf("duplicate entity %s", key)
				}
				names[key] = true
				if d["kind"] == "Group" {
					groups[md["name"].(string)] = true
				}
			}
			for _, d := range docs {
				spec, _ := d["spec"].(map[string]any)
				if o, ok := spec["owner"].(string); ok && !groups[o] {
					t.Errorf("%v owned by unknown group %q", d["metadata"], o)
				}
			}
			if len(g.All()) != tc.n {
				t.Errorf("All() has %d refs, want %d", len(g.All()), tc.n)
			}
			if len(g.Secrets) == 0 {
				t.Fatal("no secret planted")
			}
			all := ""
			for _, f := range g.Files {
				b, _ := os.ReadFile(f)
				all += string(b)
			}
			for _, s := range g.Secrets {
				esc, _ := json.Marshal(s.Value)
				if !strings.Contains(all, string(esc[1:len(esc)-1])) {
					t.Errorf("secret %s of %s is not in the files", s.Type, s.Entity)
				}
			}
		})
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := generate(t.TempDir(), 300, 9)
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate(t.TempDir(), 300, 9)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := os.ReadFile(a.Files[0])
	db, _ := os.ReadFile(b.Files[0])
	if !bytes.Equal(da, db) {
		t.Error("same seed, different catalogs")
	}
}

func TestGenerateRejectsTinyCatalogs(t *testing.T) {
	if _, err := generate(t.TempDir(), 10, 1); err == nil {
		t.Error("want an error for 10 entities")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(l ...int) []time.Duration {
		var out []time.Duration
		for _, x := range l {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of hundred is the 99th", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(1, 2, 3), 100, 3 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestLatencyStats(t *testing.T) {
	p50, p90, p99, mean := latencyStats([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	if p50 != 2 || p90 != 3 || p99 != 3 || mean != 2 {
		t.Errorf("got p50 %v p90 %v p99 %v mean %v, want 2 3 3 2", p50, p90, p99, mean)
	}
}

func TestSoakMix(t *testing.T) {
	qs := questionSet{
		distinct:   []entityRef{{Kind: "component", Namespace: "default", Name: "a"}},
		hot:        []entityRef{{Kind: "component", Namespace: "default", Name: "b"}},
		searches:   []question{{Kind: qSearch, Team: "t", Of: "Component"}},
		components: []entityRef{{Kind: "component", Namespace: "default", Name: "c"}},
		apis:       []entityRef{{Kind: "api", Namespace: "default", Name: "d"}},
	}
	count := map[string]int{}
	for i := int64(0); i < 2000; i++ {
		name, args := soakCall(i, qs)
		if len(args) == 0 {
			t.Fatalf("%s without arguments", name)
		}
		count[name]++
	}
	want := map[string]int{"catalog_get_entity": 800, "catalog_search_entities": 400, "catalog_get_relations": 300, "catalog_find_owner": 300, "catalog_get_api_definition": 200}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("%s: %d calls of 2000, want %d", k, count[k], v)
		}
	}
}

func TestApproxTokens(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", 0},
		{"short word", "kind", 1},
		{"long word", "component", 3},
		{"punctuation", `{"a":1}`, 7},
		{"spaces are free", "a b  c", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := approxTokens(tc.in); got != tc.want {
				t.Errorf("approxTokens(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}
