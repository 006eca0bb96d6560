package policy

import (
	"reflect"
	"testing"
)

func TestReadFields(t *testing.T) {
	doc := oneRole([]Condition{
		leaf(RuleIsEntityOwner, map[string]any{"claims": []string{ClaimOwnershipRefs}}),
		{AnyOf: []Condition{
			leaf(RuleHasAnnotation, map[string]any{"annotation": "backstage.io/techdocs-ref"}),
			{Not: &Condition{Rule: RuleHasSpec, Params: map[string]any{"key": "profile.email"}}},
		}},
	}, []Condition{
		leaf(RuleHasLabel, map[string]any{"label": "tier"}),
		leaf(RuleHasMetadata, map[string]any{"key": "title", "value": "x"}),
	})
	g := mustCompile(t, doc).Grant(jane)
	want := []string{"kind", "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
		"metadata.title", "relations", "spec.profile"}
	if got := g.ReadFields(); !reflect.DeepEqual(got, want) {
		t.Errorf("ReadFields = %v, want %v", got, want)
	}
	kinds := mustCompile(t, oneRole([]Condition{leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"component"}})}, nil)).Grant(jane)
	if got := kinds.ReadFields(); !reflect.DeepEqual(got, []string{"kind", "metadata.name", "metadata.namespace"}) {
		t.Errorf("kind-only grant reads %v", got)
	}
}
