package redact

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The key cache keeps clean keys only: a key that holds a secret is judged
// every time and never stored.
func TestKeyCacheKeepsNoSecretKey(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	secretKey := "ghp_" + strings.Repeat("aB3dE5fG7h", 3) + "iJ9kL0"
	for range 3 {
		out, rep, err := r.Value(map[string]any{secretKey: "x", "owner": "team-a"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Total() != 1 || strings.Contains(fmt.Sprint(out), secretKey) {
			t.Fatalf("key not redacted: %v %v", out, rep.Counts)
		}
	}
	for i := range r.keys.slots {
		if ki := r.keys.slots[i].Load(); ki != nil && string(ki.name) == secretKey {
			t.Fatal("a key holding a secret was cached")
		}
	}
	if ki := r.keyInfo([]byte("owner")); !ki.clean || r.keyInfo([]byte("owner")) != ki {
		t.Fatal("a clean key is not cached")
	}
}

// Many goroutines judging the same and colliding keys get the same answers
// as one (run with -race).
func TestKeyCacheConcurrent(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{}
	for i := range 300 {
		doc[fmt.Sprintf("acme.io/setting-%d", i)] = "plain"
		doc[fmt.Sprintf("db_password_%d", i)] = "Zq7-k2Lm9Qp4Rt8Vw1"
	}
	want, wrep, err := r.Value(doc)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(want)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				got, rep, err := r.Value(doc)
				b, _ := json.Marshal(got)
				if err != nil || string(b) != string(wantJSON) || rep.Total() != wrep.Total() {
					errs <- string(b)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("concurrent result differs: %.200s", e)
	}
	if wrep.Counts["generic-secret"] != 300 {
		t.Fatalf("counts %v", wrep.Counts)
	}
}

func TestContainsFold(t *testing.T) {
	for _, tc := range []struct {
		text, needle string
		want         bool
	}{
		{"Server=db;Password=x", "server=", true},
		{"DATA SOURCE=h", "data source=", true},
		{"datasource=h", "data source=", false},
		{"ab", "abc", false},
		{"", "a", false},
		{"x", "", true},
	} {
		if got := containsFold([]byte(tc.text), tc.needle); got != tc.want {
			t.Errorf("containsFold(%q, %q) = %v", tc.text, tc.needle, got)
		}
	}
	for _, d := range defaultRuleDefs() {
		for _, n := range d.need {
			if n != strings.ToLower(n) {
				t.Errorf("rule %s: need word %q is not lower case", d.id, n)
			}
		}
	}
}

func TestIsConstName(t *testing.T) {
	for s, want := range map[string]bool{
		"SOME_PASSWORD": true, "DB_PASS_2": true, "PASSWORD": false, "QWERTZUIOP": false,
		"Some_Password": false, "_X": false, "": false, "A_b": false,
	} {
		if got := isConstName(s); got != want {
			t.Errorf("isConstName(%q) = %v", s, got)
		}
	}
}
