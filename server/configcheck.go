package server

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// nodeChecker walks a parsed configuration file against the Go types
// before it is decoded, so that a mistake is reported in the file's own
// terms: the key path, the line, what the key wants and what it got,
// and for an unknown key the key that was probably meant.
type nodeChecker struct {
	file string
	// subst holds the scalars filled by ${VAR} substitution, with the
	// text they replaced: their values are never echoed in errors.
	subst map[*yaml.Node]string
	// lines records the line of every key path seen (and of every list
	// item), so that Validate's errors can point at the file.
	lines map[string]int
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// check reports the first problem of n as the value of a key of type t.
func (c *nodeChecker) check(n *yaml.Node, t reflect.Type, path string) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && c.subst[n] == "" {
		return nil // null leaves the default, as the decoder does
	}
	switch {
	case t.Kind() == reflect.Struct && t != durationType:
		if n.Kind != yaml.MappingNode {
			return c.typeErr(n, t, path)
		}
		return c.mapping(n, t, path)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return c.typeErr(n, t, path)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return &ConfigError{File: c.file, Line: k.Line, Key: path, Msg: "keys must be plain names"}
			}
			kp := joinKey(path, k.Value)
			c.lines[kp] = k.Line
			if err := c.check(v, t.Elem(), kp); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return c.typeErr(n, t, path)
		}
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			c.lines[p] = e.Line
			if err := c.check(e, t.Elem(), p); err != nil {
				return err
			}
		}
		return nil
	}
	return c.scalar(n, t, path)
}

// mapping checks the keys of a mapping against struct type t.
func (c *nodeChecker) mapping(n *yaml.Node, t reflect.Type, path string) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			if err := c.merge(v, t, path); err != nil {
				return err
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return &ConfigError{File: c.file, Line: k.Line, Key: path, Msg: "keys must be plain names"}
		}
		kp := joinKey(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			return &ConfigError{File: c.file, Line: k.Line, Key: kp, Msg: fmt.Sprintf("set twice (first on line %d)", first)}
		}
		seen[k.Value] = k.Line
		f, ok := fieldByKey(t, k.Value)
		if !ok {
			return &ConfigError{File: c.file, Line: k.Line, Key: kp, Msg: unknownKeyMsg(t, path, k.Value), keyInMsg: true}
		}
		c.lines[kp] = k.Line
		if err := c.check(v, f.Type, kp); err != nil {
			return err
		}
	}
	return nil
}

// merge checks the value of a YAML merge key (<<: *anchor).
func (c *nodeChecker) merge(v *yaml.Node, t reflect.Type, path string) error {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return c.mapping(v, t, path)
	case yaml.SequenceNode:
		for _, e := range v.Content {
			if err := c.merge(e, t, path); err != nil {
				return err
			}
		}
		return nil
	}
	return &ConfigError{File: c.file, Line: v.Line, Key: path, Msg: "<< must merge a map (or a list of maps)"}
}

// scalar checks a scalar against a scalar type, with the decoder's own
// rules (it decodes the node into a value of that type).
func (c *nodeChecker) scalar(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.ScalarNode {
		return c.typeErr(n, t, path)
	}
	if _, ok := c.subst[n]; ok && t.Kind() != reflect.String {
		// A value from the environment is text; for a number, a boolean
		// or a duration it is read as if written in the file unquoted.
		n.Tag, n.Style = "", 0
	}
	v := reflect.New(t)
	if err := n.Decode(v.Interface()); err != nil {
		return c.typeErr(n, t, path)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if t != durationType && n.ShortTag() == "!!float" {
			// The decoder would silently drop the fraction (1.5 → 1).
			if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err != nil || f != float64(int64(f)) {
				return c.typeErr(n, t, path)
			}
		}
	}
	return nil
}

// typeErr says what the key wants and what it got.
func (c *nodeChecker) typeErr(n *yaml.Node, t reflect.Type, path string) error {
	msg := "want " + wantWords(t) + ", got " + c.gotWords(n)
	if t.Kind() == reflect.Slice && n.Kind == yaml.ScalarNode && c.subst[n] == "" {
		msg += fmt.Sprintf(" (for a list of one, write [%s])", n.Value)
	}
	if path == "" {
		msg = "the file must be a map of keys (" + keyNames(t) + "), got " + c.gotWords(n)
	}
	return &ConfigError{File: c.file, Line: n.Line, Key: path, Msg: msg}
}

func (c *nodeChecker) gotWords(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a map"
	}
	if ref, ok := c.subst[n]; ok {
		return "the value of " + ref + " (not shown)"
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// wantWords says what a value of type t looks like.
func wantWords(t reflect.Type) string {
	switch t {
	case durationType:
		return `a duration such as "10s" or "1m30s"`
	case rateType:
		return "a rate such as {requests: 60, per: 1m, burst: 10} or {unlimited: true}"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "a list of maps, each with the keys " + keyNames(t.Elem())
		}
		return "a list of " + plural(typeWords(t.Elem())) + " such as [a, b]"
	case reflect.Map:
		return "a map from names to " + strings.TrimPrefix(wantWords(t.Elem()), "a ")
	case reflect.Struct:
		return "a map with the keys " + keyNames(t)
	}
	return t.String()
}

// keyNames lists the keys of struct type t.
func keyNames(t reflect.Type) string {
	fs := configFields(t)
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// unknownKeyMsg reports key, unknown in struct type t at path parent, with
// the key probably meant: a key of the same section spelt alike (case
// aside, or within a small edit distance), else a key of that name in
// another section.
func unknownKeyMsg(t reflect.Type, parent, key string) string {
	full := joinKey(parent, key)
	msg := "unknown key " + full
	if s := suggestKey(t, parent, key); s != "" {
		return msg + " (did you mean " + s + "?)"
	}
	if parent == "" {
		return msg + " (the top-level keys are " + keyNames(t) + ")"
	}
	return msg + " (the keys of " + parent + " are " + keyNames(t) + ")"
}

func suggestKey(t reflect.Type, parent, key string) string {
	lower := strings.ToLower(key)
	fs := configFields(t)
	for _, f := range fs {
		if strings.ToLower(f.Name) == lower {
			return joinKey(parent, f.Name)
		}
	}
	best, bestD := "", maxEdits(key)+1
	for _, f := range fs {
		if d := editDistance(lower, strings.ToLower(f.Name)); d < bestD {
			best, bestD = f.Name, d
		}
	}
	if best != "" {
		return joinKey(parent, best)
	}
	// The right name in the wrong section.
	if ps := keyIndex()[lower]; len(ps) > 0 && len(ps) <= 3 {
		switch len(ps) {
		case 1:
			return ps[0]
		default:
			return strings.Join(ps[:len(ps)-1], ", ") + " or " + ps[len(ps)-1]
		}
	}
	return ""
}

// maxEdits is how far a misspelling of key may be from the key meant.
func maxEdits(key string) int {
	switch n := len(key); {
	case n <= 4:
		return 1
	case n <= 9:
		return 2
	default:
		return 3
	}
}

// editDistance is the optimal string alignment distance between a and b
// (bytes): insertions, deletions, substitutions and transpositions of
// two neighbours each count one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
