package catalog

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestProject(t *testing.T) {
	raw := json.RawMessage(`{"apiVersion":"v1","kind":"Component","metadata":{"name":"a","title":"T","annotations":{"x.io/y":"1"},"tags":["go"]},` +
		`"spec":{"type":"service","owner":"team-a","dependsOn":["c:b"]},"relations":[{"type":"ownedBy","targetRef":"group:default/team-a"}],"odd\"key":1}`)
	for _, tc := range []struct {
		name   string
		fields []string
		want   string
	}{
		{"summary-like", []string{"kind", "metadata.name", "metadata.title", "spec.owner", "relations"},
			`{"kind":"Component","metadata":{"name":"a","title":"T"},"spec":{"owner":"team-a"},"relations":[{"type":"ownedBy","targetRef":"group:default/team-a"}]}`},
		{"whole subtree", []string{"metadata"}, `{"metadata":{"name":"a","title":"T","annotations":{"x.io/y":"1"},"tags":["go"]}}`},
		{"deeper paths keep their two-key prefix", []string{"metadata.annotations.x.io/y"}, `{"metadata":{"annotations":{"x.io/y":"1"}}}`},
		{"absent fields and empty objects are left out", []string{"kind", "spec.lifecycle", "status"}, `{"kind":"Component"}`},
		{"escaped keys", []string{`odd"key`}, `{"odd\"key":1}`},
		{"no fields", nil, string(raw)},
	} {
		got := Project(raw, tc.fields)
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: invalid JSON %s: %v", tc.name, got, err)
		}
		_ = json.Unmarshal([]byte(tc.want), &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: Project = %s, want %s", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{`[1,2]`, `"x"`, `not json`} {
		if got := Project(json.RawMessage(bad), []string{"kind"}); string(got) != bad {
			t.Errorf("Project(%s) = %s, want it unchanged", bad, got)
		}
	}
}
