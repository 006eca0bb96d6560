package filter

import (
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestEncodeRefusesInjection(t *testing.T) {
	tests := []struct {
		name string
		c    Clause
		want string // "" means an error is expected
	}{
		{"plain", Clause{"kind": {"component"}, "spec.type": {"service"}}, "kind=component,spec.type=service"},
		{"exists", Clause{"metadata.annotations.backstage.io/techdocs-ref": nil}, "metadata.annotations.backstage.io/techdocs-ref"},
		{"repeated values sorted and deduped", Clause{"kind": {"b", "a", "b"}}, "kind=a,kind=b"},
		{"unicode value allowed", Clause{"metadata.title": {"Zürich service"}}, "metadata.title=Zürich service"},
		{"comma in value", Clause{"kind": {"component,kind=user"}}, ""},
		{"equals in value", Clause{"kind": {"a=b"}}, ""},
		{"comma in key", Clause{"kind,kind": {"user"}}, ""},
		{"equals in key", Clause{"kind=user": nil}, ""},
		{"empty key", Clause{"": {"x"}}, ""},
		{"empty value", Clause{"kind": {""}}, ""},
		{"uppercase key (Backstage compares keys without case)", Clause{"Kind": {"x"}}, "Kind=x"},
		{"space in key", Clause{"spec type": {"x"}}, ""},
		{"percent-encoded comma", Clause{"kind": {"component%2Ckind%3Duser"}}, ""},
		{"percent in key", Clause{"kind%2c": {"x"}}, ""},
		{"double-encoded", Clause{"kind": {"a%252Cb"}}, ""},
		{"newline", Clause{"kind": {"a\nb"}}, ""},
		{"carriage return", Clause{"kind": {"a\r"}}, ""},
		{"nul", Clause{"kind": {"a\x00"}}, ""},
		{"tab", Clause{"kind": {"a\tb"}}, ""},
		{"leading space (Backstage trims)", Clause{"kind": {" user"}}, ""},
		{"trailing nbsp (JS trim)", Clause{"kind": {"user\u00a0"}}, ""},
		{"trailing BOM", Clause{"kind": {"user\uFEFF"}}, ""},
		{"fullwidth comma", Clause{"kind": {"a\uFF0Cb"}}, ""},
		{"small comma", Clause{"kind": {"a\uFE50b"}}, ""},
		{"fullwidth equals", Clause{"kind": {"a\uFF1Db"}}, ""},
		{"superscript equals", Clause{"kind": {"a\u207Cb"}}, ""},
		{"zero-width space", Clause{"kind": {"us\u200Ber"}}, ""},
		{"bidi override", Clause{"kind": {"\u202Euser"}}, ""},
		{"line separator", Clause{"kind": {"a\u2028b"}}, ""},
		{"invalid utf-8", Clause{"kind": {"a\xffb"}}, ""},
		{"non-ascii key", Clause{"kınd": {"x"}}, ""},
		{"too long value", Clause{"kind": {strings.Repeat("a", 2000)}}, ""},
		{"empty clause", Clause{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.Encode()
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Encode = %q, want an error", got)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v is not ErrInvalid", err)
				}
				var fe *Error
				if !errors.As(err, &fe) {
					t.Fatalf("error %T is not *Error", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Encode = %q, %v; want %q", got, err, tc.want)
			}
			// What Backstage parses back is exactly the clause.
			if back := parseBackstageFilter(got); !reflect.DeepEqual(back, normalizeForCompare(tc.c)) {
				t.Fatalf("round trip = %v, want %v", back, normalizeForCompare(tc.c))
			}
		})
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"component", "a,b", "a=b", "a%2Cb", "a\nb", "a\uFF0Cb", " x", "Zürich"} {
		f.Add("kind", s)
	}
	f.Add("metadata.annotations.backstage.io/techdocs-ref", "dir:.")
	f.Add("Kind,x", "v")
	f.Fuzz(func(t *testing.T, key, value string) {
		c := Clause{key: {value}}
		s, err := c.Encode()
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		// Whatever is accepted parses back, as Backstage reads it, to
		// exactly one key with exactly this value.
		back := parseBackstageFilter(s)
		if len(back) != 1 || len(back[key]) != 1 || back[key][0] != value {
			t.Fatalf("Encode(%q=%q) = %q parses back as %v", key, value, s, back)
		}
	})
}

// parseBackstageFilter reads one filter parameter as Backstage's catalog
// does: clauses split on ',', key and value on the first '=', both trimmed.
func parseBackstageFilter(s string) map[string][]string {
	out := map[string][]string{}
	for _, st := range strings.Split(s, ",") {
		st = strings.TrimSpace(st)
		if st == "" {
			continue
		}
		k, v, hasEq := strings.Cut(st, "=")
		k = strings.TrimSpace(k)
		if !hasEq {
			if _, ok := out[k]; !ok {
				out[k] = nil
			}
			continue
		}
		out[k] = append(out[k], strings.TrimSpace(v))
	}
	return out
}

// TestCheckKeyAndValue: the two checks the catalog client and the tools
// call on callers' filters are the ones Encode applies.
func TestCheckKeyAndValue(t *testing.T) {
	for _, k := range []string{"kind", "metadata.annotations.backstage.io/techdocs-ref", "Spec.Type", "metadata.labels.acme.com~tier"} {
		if err := CheckKey(k); err != nil {
			t.Errorf("CheckKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "a b", "a,b", "a=b", "kınd", strings.Repeat("k", MaxKeyLen+1)} {
		if err := CheckKey(k); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckKey(%q) = %v, want ErrInvalid", k, err)
		}
	}
	for _, v := range []string{"component", "Zürich service", "group:default/team-a"} {
		if err := CheckValue(v); err != nil {
			t.Errorf("CheckValue(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"", "a,b", "a=b", "a%2Cb", " x", "a\uFF0Cb", "a\u200Bb", strings.Repeat("v", MaxValueLen+1)} {
		err := CheckValue(v)
		var fe *Error
		if !errors.As(err, &fe) || fe.Reason == "" {
			t.Errorf("CheckValue(%q) = %v, want an *Error with a reason", v, err)
		}
	}
}

// normalizeForCompare is the clause as Backstage reads it back: each
// key's values sorted and deduplicated, "exists" as nil.
func normalizeForCompare(c Clause) map[string][]string {
	out := map[string][]string{}
	for k, v := range c {
		if len(v) == 0 {
			out[k] = nil
			continue
		}
		vs := append([]string(nil), v...)
		sort.Strings(vs)
		out[k] = slices.Compact(vs)
	}
	return out
}
