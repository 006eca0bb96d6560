package tools

import (
	"strings"
	"testing"
)

// TestOwnerTextContactsSorted: the contacts of find_owner's text come in
// name order, so the same answer has the same bytes every time.
func TestOwnerTextContactsSorted(t *testing.T) {
	o := OwnerResult{Entity: "component:default/a", Owner: "group:default/t",
		Contacts: map[string]string{"slack": "#t", "email": "t@example.com", "oncall": "t-primary", "jira": "T"}}
	want := "component:default/a is owned by group:default/t\nemail: t@example.com\njira: T\noncall: t-primary\nslack: #t"
	for range 20 {
		if got := o.text(); got != want {
			t.Fatalf("text:\n%s\nwant:\n%s", got, want)
		}
	}
	if !strings.Contains(o.text(), "oncall") {
		t.Fatal("contact missing")
	}
}
