package catalog

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// DefaultNamespace is the namespace Backstage assumes when a ref names none.
const DefaultNamespace = "default"

// Ref is a parsed Backstage entity reference, kind:namespace/name.
type Ref struct {
	Kind      string
	Namespace string
	Name      string
}

// String renders the ref the way Backstage writes relation targets:
// kind and namespace in lower case, the name as given.
func (r Ref) String() string {
	var b strings.Builder
	b.Grow(len(r.Kind) + len(r.Namespace) + len(r.Name) + 2)
	writeLower(&b, r.Kind)
	b.WriteByte(':')
	writeLower(&b, r.Namespace)
	b.WriteByte('/')
	b.WriteString(r.Name)
	return b.String()
}

// writeLower writes strings.ToLower(s) to b, without a string of its own
// when s is ASCII.
func writeLower(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			b.WriteString(strings.ToLower(s))
			return
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
}

// Equal compares two refs case-insensitively, as Backstage does.
func (r Ref) Equal(o Ref) bool {
	return strings.EqualFold(r.Kind, o.Kind) &&
		strings.EqualFold(r.Namespace, o.Namespace) &&
		strings.EqualFold(r.Name, o.Name)
}

// RefFormat is the human description of a ref used in error messages.
const RefFormat = `kind:namespace/name, e.g. component:default/my-service (namespace defaults to "default")`

// ParseRef parses a Backstage entity ref of the form [kind:][namespace/]name.
// defaultKind is used when the ref has no kind (empty means a kind is
// required); the namespace defaults to "default". Every part is validated
// with Backstage's naming rules, so a parsed ref can never carry characters
// that would alter a catalog filter or URL path.
func ParseRef(s, defaultKind string) (Ref, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, fmt.Errorf("%w: empty entity ref; expected %s", ErrInvalidRef, RefFormat)
	}
	var r Ref
	if i := strings.IndexByte(s, ':'); i >= 0 {
		r.Kind, s = s[:i], s[i+1:]
	} else {
		r.Kind = defaultKind
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		r.Namespace, s = s[:i], s[i+1:]
	} else {
		r.Namespace = DefaultNamespace
	}
	r.Name = s
	if r.Kind == "" {
		return Ref{}, fmt.Errorf("%w: %q has no kind; expected %s", ErrInvalidRef, in, RefFormat)
	}
	if err := r.validate(); err != nil {
		return Ref{}, fmt.Errorf("%w: %q: %w; expected %s", ErrInvalidRef, in, err, RefFormat)
	}
	return r, nil
}

// NewRef builds a ref from its parts (an empty namespace is the default
// one), each checked as ParseRef checks it; no part can spill into
// another, as a string joined and parsed back could.
func NewRef(kind, namespace, name string) (Ref, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	r := Ref{Kind: kind, Namespace: namespace, Name: name}
	if err := r.validate(); err != nil {
		return Ref{}, fmt.Errorf("%w: %w; expected %s", ErrInvalidRef, err, RefFormat)
	}
	return r, nil
}

func (r Ref) validate() error {
	if err := ValidateKind(r.Kind); err != nil {
		return err
	}
	if err := ValidateNamespace(r.Namespace); err != nil {
		return err
	}
	return ValidateName(r.Name)
}

// ValidateKind checks a kind: a letter followed by letters and digits, at most 63 characters.
func ValidateKind(k string) error {
	if k == "" || len(k) > 63 {
		return fmt.Errorf("kind must be 1 to 63 characters")
	}
	for i, c := range k {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return fmt.Errorf("kind %q may hold only letters and digits, starting with a letter", k)
		}
	}
	return nil
}

// ValidateNamespace checks a namespace: a DNS label (lower-case letters,
// digits and inner dashes), at most 63 characters. Upper case is accepted
// because Backstage compares namespaces case-insensitively.
func ValidateNamespace(ns string) error {
	if ns == "" || len(ns) > 63 {
		return fmt.Errorf("namespace must be 1 to 63 characters")
	}
	for i, c := range ns {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(ns)-1:
		default:
			return fmt.Errorf("namespace %q may hold only letters, digits and inner dashes", ns)
		}
	}
	return nil
}

// ValidateName checks an entity name: at most 63 characters of letters and
// digits separated by single '-', '_' or '.'.
func ValidateName(n string) error {
	if n == "" || len(n) > 63 {
		return fmt.Errorf("name must be 1 to 63 characters")
	}
	prevSep := true
	for _, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			prevSep = false
		case c == '-' || c == '_' || c == '.':
			if prevSep {
				return fmt.Errorf("name %q may not start with or repeat a separator", n)
			}
			prevSep = true
		default:
			return fmt.Errorf("name %q may hold only letters, digits and the separators '-', '_' and '.'", n)
		}
	}
	if prevSep {
		return fmt.Errorf("name %q may not end with a separator", n)
	}
	return nil
}

// EntityText returns an entity's kind and the given metadata string fields
// (name, title, description, …) without decoding the whole entity.
func EntityText(raw []byte, fields ...string) (kind string, metadata map[string]any) {
	kind = gjson.GetBytes(raw, "kind").String()
	metadata = make(map[string]any, len(fields))
	for _, f := range fields {
		if v := gjson.GetBytes(raw, "metadata."+gjsonEscape(f)); v.Type == gjson.String {
			metadata[f] = v.String()
		}
	}
	return kind, metadata
}

// gjsonEscape escapes gjson's path syntax characters in one key.
func gjsonEscape(k string) string {
	var b strings.Builder
	for _, r := range k {
		if strings.ContainsRune(`.*?|#@\!=<>%`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
