package catalog

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// Filter is one Backstage `filter` query parameter: every key must match
// (AND), and a key matches when the entity's value equals any of its values
// (OR). A key with no values means "the field exists". Separate Filters in
// one query are ORed by Backstage.
type Filter map[string][]string

// Encode renders the filter as Backstage expects it, keys sorted so the
// output is deterministic. It fails when a key or value could add a clause
// or key: Backstage has no escaping, so such values are rejected, never
// escaped.
func (f Filter) Encode() (string, error) {
	if len(f) == 0 {
		return "", fmt.Errorf("%w: empty filter", ErrBadFilter)
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if err := ValidateFilterKey(k); err != nil {
			return "", err
		}
		vals := f[k]
		if len(vals) == 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k)
			continue
		}
		for _, v := range vals {
			if err := ValidateFilterValue(v); err != nil {
				return "", fmt.Errorf("%w (for key %q)", err, k)
			}
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	return b.String(), nil
}

// ValidateFilterKey accepts dot paths of letters, digits and the characters
// - _ . / : @ ~ $ that annotation and label keys use: every key the
// policy pushes down (policy.EncodeFilter) is one of them, so a policy
// condition never makes a query fail here (TestPolicyFiltersEncodeInTheCatalog).
func ValidateFilterKey(k string) error {
	if k == "" || len(k) > 256 {
		return fmt.Errorf("%w: filter key must be 1 to 256 characters", ErrBadFilter)
	}
	for _, c := range k {
		switch {
		case c < 0x80 && (unicode.IsLetter(c) || unicode.IsDigit(c)):
		case c == '.' || c == '-' || c == '_' || c == '/' || c == ':' || c == '@' || c == '~' || c == '$':
		default:
			return fmt.Errorf("%w: filter key %q may hold only ASCII letters, digits and . - _ / : @ ~ $", ErrBadFilter, k)
		}
	}
	return nil
}

// ValidateFilterValue rejects values that could add a clause or a key
// (',' and '='), control and invisible characters, and overlong values.
func ValidateFilterValue(v string) error {
	if v == "" {
		return fmt.Errorf("%w: empty filter value", ErrBadFilter)
	}
	if len(v) > 1024 {
		return fmt.Errorf("%w: filter value longer than 1024 bytes", ErrBadFilter)
	}
	for _, c := range v {
		if c == ',' || c == '=' {
			return fmt.Errorf("%w: filter value %q may not contain ',' or '='", ErrBadFilter, v)
		}
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || c == unicode.ReplacementChar {
			return fmt.Errorf("%w: filter value %q contains a control or invisible character", ErrBadFilter, v)
		}
	}
	return nil
}
