// Package filter is the one spelling of Backstage's catalog filter
// grammar: which keys and values one `filter=` query parameter can carry,
// and how a clause is written. Backstage has no escaping in this grammar,
// so anything that could be read as a separator is refused, never escaped.
//
// It is pure (standard library only) and shared by the two packages that
// write filters: policy, which pushes a grant's entity conditions down as
// filters, and tools/catalog, the REST client that sends callers'
// filters. A key or value one accepts, the other accepts.
package filter

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clause is one filter: every key must match (AND), and a key matches
// when the entity's value equals any of its values (OR); a key with no
// values means "the field exists". Separate clauses in one query are ORed
// by Backstage.
type Clause map[string][]string

// ErrInvalid is matched (errors.Is) by every *Error.
var ErrInvalid = errors.New("invalid catalog filter")

// Error names the key, and the value when the key itself is valid, that
// the grammar refuses, and why.
type Error struct {
	Key    string
	Value  string // empty when the key itself is refused
	Reason string
}

// Error describes the problem in words a caller can act on.
func (e *Error) Error() string {
	switch {
	case e.Value == "" && e.Key == "":
		return "invalid filter: " + e.Reason
	case e.Value == "":
		return fmt.Sprintf("invalid filter key %q: %s", e.Key, e.Reason)
	case e.Key == "":
		return fmt.Sprintf("invalid filter value %q: %s", e.Value, e.Reason)
	}
	return fmt.Sprintf("invalid filter value %q for key %q: %s", e.Value, e.Key, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

const (
	// MaxKeyLen is Backstage's search-index limit on keys.
	MaxKeyLen = 200
	// MaxValueLen bounds one value.
	MaxValueLen = 1024
)

// CheckKey accepts dot paths of ASCII letters, digits and the characters
// . _ - / : @ ~ $ that annotation and label keys use, 1 to MaxKeyLen
// bytes. Backstage compares keys without regard to case.
func CheckKey(k string) error {
	if r := keyProblem(k); r != "" {
		return &Error{Key: k, Reason: r}
	}
	return nil
}

// CheckValue accepts non-empty valid UTF-8 of at most MaxValueLen bytes
// without ',' or '=' (or their look-alikes), '%', control or format
// characters, line separators, the replacement character, or leading or
// trailing white space (which Backstage trims).
func CheckValue(v string) error {
	if r := valueProblem(v); r != "" {
		return &Error{Value: v, Reason: r}
	}
	return nil
}

// Encode renders the clause as the value of one `filter` query parameter,
// e.g. "kind=component,spec.type=service", keys sorted and each key's
// values sorted and deduplicated, so the output is deterministic. The
// result must go through URL query encoding (url.Values), never be
// concatenated into a URL by hand.
func (c Clause) Encode() (string, error) {
	if len(c) == 0 {
		return "", &Error{Reason: "empty filter"}
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if r := keyProblem(k); r != "" {
			return "", &Error{Key: k, Reason: r}
		}
		vs := c[k]
		if len(vs) == 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k)
			continue
		}
		vs = append([]string(nil), vs...)
		sort.Strings(vs)
		for j, v := range vs {
			if j > 0 && v == vs[j-1] {
				continue
			}
			if r := valueProblem(v); r != "" {
				return "", &Error{Key: k, Value: v, Reason: r}
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

// Clone returns a deep copy of the clause (a nil value list stays nil:
// "the key exists").
func (c Clause) Clone() Clause {
	out := make(Clause, len(c))
	for k, v := range c {
		if v == nil {
			out[k] = nil
		} else {
			out[k] = append([]string(nil), v...)
		}
	}
	return out
}

func keyProblem(k string) string {
	if k == "" {
		return "empty key"
	}
	if len(k) > MaxKeyLen {
		return fmt.Sprintf("key longer than %d bytes", MaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-' || c == '/' || c == ':' || c == '@' || c == '~' || c == '$':
		default:
			return fmt.Sprintf("character %q not allowed (only ASCII letters, digits and . _ - / : @ ~ $)", c)
		}
	}
	return ""
}

// lookalikes are characters whose compatibility form (NFKC) is ',' or '='.
var lookalikes = [...]rune{
	'\uFE10', '\uFE50', '\uFF0C', // commas
	'\uFE66', '\uFF1D', '\u207C', '\u208C', // equals signs
}

func valueProblem(v string) string {
	if v == "" {
		return "empty value"
	}
	if len(v) > MaxValueLen {
		return fmt.Sprintf("value longer than %d bytes", MaxValueLen)
	}
	if !utf8.ValidString(v) {
		return "value is not valid UTF-8"
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	if trimmed(first) || trimmed(last) {
		return "leading or trailing white space"
	}
	for _, r := range v {
		switch {
		case r == ',' || r == '=':
			return fmt.Sprintf("may not contain %q (it would add a filter condition)", r)
		case r == '%':
			return "'%' not allowed (percent-encoded forms are refused)"
		case isLookalike(r):
			return fmt.Sprintf("look-alike of a separator %U", r)
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == '\u2028', r == '\u2029':
			return fmt.Sprintf("control or format character %U", r)
		case r == unicode.ReplacementChar:
			return "replacement character U+FFFD (a value that was not valid text)"
		}
	}
	return ""
}

func isLookalike(r rune) bool {
	for _, l := range lookalikes {
		if r == l {
			return true
		}
	}
	return false
}

// trimmed reports whether JavaScript's String.prototype.trim removes r.
func trimmed(r rune) bool {
	return unicode.IsSpace(r) || r == '\uFEFF' || unicode.Is(unicode.Zs, r)
}
