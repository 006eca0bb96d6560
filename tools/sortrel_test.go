package tools

import (
	"strings"
	"testing"
)

// TestRelationCmp checks relationCmp against the comparison of the
// concatenated keys it stands for, on every pair of a set of types and
// targets with prefixes, NULs, high bytes and empty strings.
func TestRelationCmp(t *testing.T) {
	parts := []string{"", "a", "ab", "abc", "a\x00", "a\x00b", "\x00", "b", "ownedBy", "ownedByX", "owned", "é", "\xff", "A"}
	for _, t1 := range parts {
		for _, r1 := range parts {
			for _, t2 := range parts {
				for _, r2 := range parts {
					want := strings.Compare(t1+"\x00"+r1, t2+"\x00"+r2)
					if got := relationCmp(t1, r1, t2, r2); got != want {
						t.Fatalf("relationCmp(%q, %q, %q, %q) = %d, want %d", t1, r1, t2, r2, got, want)
					}
				}
			}
		}
	}
}

// TestSortRelationsStable checks the order of sortRelations: by type, then
// target, equal keys and malformed items keeping their relative order.
func TestSortRelationsStable(t *testing.T) {
	a := map[string]any{"type": "ownedBy", "targetRef": "group:default/b", "n": 1.0}
	b := map[string]any{"type": "dependsOn", "targetRef": "component:default/x"}
	c := map[string]any{"type": "ownedBy", "targetRef": "group:default/a"}
	d := map[string]any{"type": "ownedBy", "targetRef": "group:default/b", "n": 2.0}
	m := map[string]any{"relations": []any{a, "junk", b, d, c, nil}}
	sortRelations(m)
	got := m["relations"].([]any)
	want := []any{"junk", nil, b, c, a, d}
	for i := range want {
		if g, ok := got[i].(map[string]any); ok {
			if w, ok := want[i].(map[string]any); !ok || g["targetRef"] != w["targetRef"] || g["n"] != w["n"] {
				t.Fatalf("item %d = %v, want %v", i, got[i], want[i])
			}
		} else if got[i] != want[i] {
			t.Fatalf("item %d = %v, want %v", i, got[i], want[i])
		}
	}
}
