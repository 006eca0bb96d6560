package memcatalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// predicate is Backstage's filter-predicate form ({"kind":"component"},
// {"$all":[…]}, {"$any":[…]}, {"$not":…}, {"key":{"$exists":true}},
// {"key":{"$in":[…]}}, {"key":{"$hasPrefix":"…"}}, {"key":{"$contains":…}}).
type predicate struct {
	op     string // "all", "any", "not", "field"
	kids   []*predicate
	key    string // field: the key as written
	cond   string // field: "eq", "in", "exists", "prefix", "relation"
	values []string
	exists bool
	// relation ($contains on "relations"): values holds the lowercase targets
	relType string
}

// filterClause is one key of one filter parameter: key, and either values
// (ORed) or nothing (existence).
type filterClause struct {
	key    string
	values []string
	hasVal bool
}

// parseFilterString parses one filter parameter value ("a=b,c,d=e") as
// Backstage does. It returns nil when the string holds no statements.
func parseFilterString(s string) ([]filterClause, error) {
	var clauses []filterClause
	pos := map[string]int{}
	for _, st := range strings.Split(s, ",") {
		st = jsTrim(st)
		if st == "" {
			continue
		}
		key, value, hasVal := st, "", false
		if i := strings.IndexByte(st, '='); i >= 0 {
			key, value, hasVal = jsTrim(st[:i]), jsTrim(st[i+1:]), true
		}
		if key == "" {
			return nil, inputError("Invalid filter, '%s' is not a valid statement (expected a string on the form a=b or a= or a)", st)
		}
		i, ok := pos[key]
		if !ok {
			i = len(clauses)
			pos[key] = i
			clauses = append(clauses, filterClause{key: key})
		}
		if hasVal {
			clauses[i].values = append(clauses[i].values, value)
			clauses[i].hasVal = true
		}
	}
	return clauses, nil
}

// parseFilterParams turns the filter query parameters into one predicate
// (nil when there is none): statements of one parameter are ANDed, separate
// parameters ORed.
func parseFilterParams(params []string) (*predicate, error) {
	var outer []*predicate
	for _, s := range params {
		clauses, err := parseFilterString(s)
		if err != nil {
			return nil, err
		}
		if len(clauses) == 0 {
			continue
		}
		inner := make([]*predicate, 0, len(clauses))
		for _, c := range clauses {
			p := &predicate{op: "field", key: c.key}
			switch {
			case !c.hasVal:
				p.cond, p.exists = "exists", true
			case len(c.values) == 1:
				p.cond, p.values = "eq", c.values
			default:
				p.cond, p.values = "in", c.values
			}
			inner = append(inner, p)
		}
		outer = append(outer, joinPredicates("all", inner))
	}
	return joinPredicates("any", outer), nil
}

// jsTrim trims like String.prototype.trim.
func jsTrim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		switch r {
		case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
			return true
		}
		return r >= 0x2000 && r <= 0x200a
	})
}

// json is the predicate as Backstage writes it into cursors.
func (p *predicate) json() []byte {
	var b bytes.Buffer
	p.marshal(&b)
	return b.Bytes()
}

// marshal writes the predicate as Backstage writes it into cursors.
func (p *predicate) marshal(buf *bytes.Buffer) {
	str := func(s string) {
		b, _ := encodeJSON(s)
		buf.Write(b)
	}
	list := func(vs []string) {
		buf.WriteByte('[')
		for i, v := range vs {
			if i > 0 {
				buf.WriteByte(',')
			}
			str(v)
		}
		buf.WriteByte(']')
	}
	switch p.op {
	case "all", "any":
		buf.WriteString(`{"$` + p.op + `":[`)
		for i, k := range p.kids {
			if i > 0 {
				buf.WriteByte(',')
			}
			k.marshal(buf)
		}
		buf.WriteString("]}")
	case "not":
		buf.WriteString(`{"$not":`)
		p.kids[0].marshal(buf)
		buf.WriteByte('}')
	default:
		buf.WriteByte('{')
		str(p.key)
		buf.WriteByte(':')
		switch p.cond {
		case "eq":
			str(p.values[0])
		case "in":
			buf.WriteString(`{"$in":`)
			list(p.values)
			buf.WriteByte('}')
		case "exists":
			if p.exists {
				buf.WriteString(`{"$exists":true}`)
			} else {
				buf.WriteString(`{"$exists":false}`)
			}
		case "prefix":
			buf.WriteString(`{"$hasPrefix":`)
			str(p.values[0])
			buf.WriteByte('}')
		case "relation":
			buf.WriteString(`{"$contains":{"type":`)
			str(p.relType)
			if p.values != nil {
				buf.WriteString(`,"targetRef":{"$in":`)
				list(p.values)
				buf.WriteByte('}')
			}
			buf.WriteString("}}")
		}
		buf.WriteByte('}')
	}
}

// parsePredicateJSON reads a filter predicate from decoded JSON (numbers as
// json.Number), rejecting what Backstage rejects.
func parsePredicateJSON(v any) (*predicate, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		b, _ := encodeJSON(v)
		return nil, inputError("Invalid filter predicate: top-level primitive values are not supported. Wrap the value in a field expression, e.g. { \"kind\": %s }", b)
	}
	for k := range obj {
		if strings.HasPrefix(k, "$") {
			if len(obj) != 1 {
				b, _ := encodeJSON(v)
				return nil, inputError("Invalid filter predicate: operators must be a single $all or $any with an array, or $not, but got %s", b)
			}
			switch k {
			case "$not":
				kid, err := parsePredicateJSON(obj[k])
				if err != nil {
					return nil, err
				}
				return &predicate{op: "not", kids: []*predicate{kid}}, nil
			case "$all", "$any":
				arr, ok := obj[k].([]any)
				if !ok {
					break
				}
				p := &predicate{op: k[1:]}
				for _, item := range arr {
					kid, err := parsePredicateJSON(item)
					if err != nil {
						return nil, err
					}
					p.kids = append(p.kids, kid)
				}
				return p, nil
			}
			b, _ := encodeJSON(v)
			return nil, inputError("Invalid filter predicate: operators must be a single $all or $any with an array, or $not, but got %s", b)
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	all := &predicate{op: "all"}
	for _, k := range keys {
		f, err := parseFieldCondition(k, obj[k])
		if err != nil {
			return nil, err
		}
		all.kids = append(all.kids, f)
	}
	if len(all.kids) == 1 {
		return all.kids[0], nil
	}
	return all, nil
}

func parseFieldCondition(key string, v any) (*predicate, error) {
	lkey := strings.ToLower(key)
	p := &predicate{op: "field", key: key}
	if isPrimitive(v) {
		p.cond, p.values = "eq", []string{jsString(v)}
		return p, nil
	}
	if m, ok := v.(map[string]any); ok {
		if e, ok := m["$exists"]; ok {
			p.cond, p.exists = "exists", truthy(e)
			return p, nil
		}
		if in, ok := m["$in"]; ok {
			arr, ok := in.([]any)
			if !ok {
				return nil, inputError("Invalid filter predicate value for field %q: $in must be an array", lkey)
			}
			p.cond = "in"
			p.values = make([]string, 0, len(arr))
			for _, x := range arr {
				p.values = append(p.values, jsString(x))
			}
			return p, nil
		}
		if pre, ok := m["$hasPrefix"]; ok {
			s, ok := pre.(string)
			if !ok {
				return nil, inputError("Invalid filter predicate value for field %q: $hasPrefix must be a string", lkey)
			}
			p.cond, p.values = "prefix", []string{s}
			return p, nil
		}
		if target, ok := m["$contains"]; ok {
			if isPrimitive(target) {
				p.cond, p.values = "eq", []string{jsString(target)}
				return p, nil
			}
			if tm, ok := target.(map[string]any); ok {
				if lkey != "relations" {
					return nil, inputError("Object form of $contains is not supported for field %q", lkey)
				}
				return parseContainsRelation(p, tm)
			}
			b, _ := encodeJSON(target)
			return nil, inputError("Unsupported $contains target for field %q: %s", lkey, b)
		}
	}
	b, _ := encodeJSON(v)
	return nil, inputError("Invalid filter predicate value for field %q: expected a primitive value, $exists, $in, $hasPrefix, or $contains operator, but got %s", lkey, b)
}

func parseContainsRelation(p *predicate, tm map[string]any) (*predicate, error) {
	p.cond = "relation"
	var haveType, haveTarget bool
	for rawKey, v := range tm {
		switch strings.ToLower(rawKey) {
		case "type":
			if haveType {
				return nil, inputError("Duplicate key %q in $contains for \"relations\"", rawKey)
			}
			s, ok := v.(string)
			if !ok {
				return nil, inputError(`The $contains operator for "relations" requires a "type" string property`)
			}
			p.relType, haveType = s, true
		case "targetref":
			if haveTarget {
				return nil, inputError("Duplicate key %q in $contains for \"relations\"", rawKey)
			}
			haveTarget = true
			switch t := v.(type) {
			case string:
				p.values = []string{t}
			case map[string]any:
				arr, ok := t["$in"].([]any)
				if !ok || len(t) != 1 {
					b, _ := encodeJSON(v)
					return nil, inputError(`Unsupported value in $contains for "relations": expected a string or { "$in": [strings] }, but got %s`, b)
				}
				if len(arr) == 0 {
					return nil, inputError(`Empty "$in" array for $contains on "relations" is not allowed`)
				}
				for _, x := range arr {
					s, ok := x.(string)
					if !ok {
						b, _ := encodeJSON(v)
						return nil, inputError(`Unsupported value in $contains for "relations": expected a string or { "$in": [strings] }, but got %s`, b)
					}
					p.values = append(p.values, s)
				}
			default:
				b, _ := encodeJSON(v)
				return nil, inputError(`Unsupported value in $contains for "relations": expected a string or { "$in": [strings] }, but got %s`, b)
			}
		default:
			return nil, inputError(`Unsupported key %q in $contains for "relations". Only "type" and "targetRef" are supported`, rawKey)
		}
	}
	if p.relType == "" {
		return nil, inputError(`The $contains operator for "relations" requires a "type" string property`)
	}
	return p, nil
}

// parseLegacyFilter reads the older {key,values}|{not}|{anyOf}|{allOf} form
// that cursors may carry under "filter".
func parseLegacyFilter(v any) (*predicate, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("filter is not an object")
	}
	if k, ok := m["key"].(string); ok {
		p := &predicate{op: "field", key: k}
		vals, _ := m["values"].([]any)
		switch {
		case m["values"] == nil:
			p.cond, p.exists = "exists", true
		case len(vals) == 1:
			p.cond, p.values = "eq", []string{jsString(vals[0])}
		default:
			p.cond = "in"
			for _, x := range vals {
				p.values = append(p.values, jsString(x))
			}
		}
		return p, nil
	}
	if n, ok := m["not"]; ok {
		kid, err := parseLegacyFilter(n)
		if err != nil {
			return nil, err
		}
		return &predicate{op: "not", kids: []*predicate{kid}}, nil
	}
	for _, op := range []string{"anyOf", "allOf"} {
		if arr, ok := m[op].([]any); ok {
			p := &predicate{op: strings.TrimSuffix(op, "Of")}
			for _, x := range arr {
				kid, err := parseLegacyFilter(x)
				if err != nil {
					return nil, err
				}
				p.kids = append(p.kids, kid)
			}
			return p, nil
		}
	}
	return nil, fmt.Errorf("filter has no key, not, anyOf or allOf")
}

func isPrimitive(v any) bool {
	switch v.(type) {
	case string, bool, json.Number, float64:
		return true
	}
	return false
}

func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case string:
		return t != ""
	case json.Number:
		f, err := t.Float64()
		return err == nil && f != 0
	}
	return true
}

// eval returns the entities matching p.
func (idx *searchIndex) eval(p *predicate) bitset {
	switch p.op {
	case "all":
		if len(p.kids) == 0 {
			return fullBitset(idx.n)
		}
		out := idx.eval(p.kids[0])
		for _, k := range p.kids[1:] {
			out.and(idx.eval(k))
		}
		return out
	case "any":
		out := newBitset(idx.n)
		for _, k := range p.kids {
			out.or(idx.eval(k))
		}
		return out
	case "not":
		out := idx.eval(p.kids[0])
		out.not(idx.n)
		return out
	}
	out := newBitset(idx.n)
	key := strings.ToLower(p.key)
	switch p.cond {
	case "exists":
		idx.orList("e\x00"+key, idx.exists[key], out)
		if !p.exists {
			out.not(idx.n)
		}
	case "eq", "in":
		for _, v := range p.values {
			v = strings.ToLower(v)
			idx.orRows("p\x00"+key+"\x00"+v, idx.valueRows(key, v), out)
		}
	case "prefix":
		prefix := strings.ToLower(p.values[0])
		for _, r := range idx.byKey[key] {
			if strings.HasPrefix(r.value, prefix) {
				out.set(r.ent)
			}
		}
	case "relation":
		rk := "relations." + strings.ToLower(p.relType)
		if p.values == nil {
			idx.orList("e\x00"+rk, idx.exists[rk], out)
			break
		}
		for _, v := range p.values {
			v = strings.ToLower(v)
			idx.orRows("p\x00"+rk+"\x00"+v, idx.valueRows(rk, v), out)
		}
	}
	return out
}

// joinPredicates joins ps under op ("all" or "any"): nil for none, the
// predicate itself for one.
func joinPredicates(op string, ps []*predicate) *predicate {
	switch len(ps) {
	case 0:
		return nil
	case 1:
		return ps[0]
	}
	return &predicate{op: op, kids: ps}
}
