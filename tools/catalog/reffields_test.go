package catalog

import (
	"reflect"
	"strings"
	"testing"
)

// TestRefFieldsOf checks the grouped lookup against a plain filter of
// RefFields, for every kind in any case and for kinds without ref fields.
func TestRefFieldsOf(t *testing.T) {
	kinds := []string{"", "Location", "Template", "component", "COMPONENT", "aPi"}
	for _, f := range RefFields {
		kinds = append(kinds, f.Kind, strings.ToLower(f.Kind), strings.ToUpper(f.Kind))
	}
	for _, k := range kinds {
		var want []RefField
		for _, f := range RefFields {
			if strings.EqualFold(f.Kind, k) {
				want = append(want, f)
			}
		}
		if got := RefFieldsOf(k); !reflect.DeepEqual(got, want) {
			t.Errorf("RefFieldsOf(%q) = %v, want %v", k, got, want)
		}
	}
}
