package memcatalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultLimit is the page size of /entities/by-query when no limit is given,
// as in Backstage. There is no maximum.
const DefaultLimit = 200

type orderField struct {
	Field string
	Order string // "asc", "desc" or "" (not given)
}

type fullTextFilter struct {
	Term      string
	Fields    []string
	HasFields bool
}

// cursor is Backstage's query cursor. Field order on the wire follows
// Backstage: it differs between cursors made from an initial request and
// cursors re-issued from a decoded one.
type cursor struct {
	decoded          bool
	orderFields      []orderField
	isPrevious       bool
	fullText         *fullTextFilter
	orderFieldValues []*string
	legacyFilter     json.RawMessage
	query            json.RawMessage
	firstSortValues  []*string
	hasFirst         bool
	totalItems       *float64

	pred *predicate // query and legacy filter combined
}

func (c *cursor) clone() *cursor {
	n := *c
	return &n
}

func (c *cursor) encode() string {
	var b bytes.Buffer
	str := func(s string) {
		enc, _ := encodeJSON(s)
		b.Write(enc)
	}
	vals := func(vs []*string) {
		b.WriteByte('[')
		for i, v := range vs {
			if i > 0 {
				b.WriteByte(',')
			}
			if v == nil {
				b.WriteString("null")
			} else {
				str(*v)
			}
		}
		b.WriteByte(']')
	}
	b.WriteString(`{"orderFields":[`)
	for i, o := range c.orderFields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"field":`)
		str(o.Field)
		if o.Order != "" {
			b.WriteString(`,"order":`)
			str(o.Order)
		}
		b.WriteByte('}')
	}
	b.WriteString(`],"isPrevious":` + strconv.FormatBool(c.isPrevious))
	writeFT := func() {
		if c.fullText == nil {
			return
		}
		b.WriteString(`,"fullTextFilter":{"term":`)
		str(c.fullText.Term)
		if c.fullText.HasFields {
			b.WriteString(`,"fields":[`)
			for i, f := range c.fullText.Fields {
				if i > 0 {
					b.WriteByte(',')
				}
				str(f)
			}
			b.WriteByte(']')
		}
		b.WriteByte('}')
	}
	if c.decoded {
		writeFT()
		b.WriteString(`,"orderFieldValues":`)
		vals(c.orderFieldValues)
		if c.legacyFilter != nil {
			b.WriteString(`,"filter":`)
			b.Write(c.legacyFilter)
		}
		if c.query != nil {
			b.WriteString(`,"query":`)
			b.Write(c.query)
		}
	} else {
		if c.query != nil {
			b.WriteString(`,"query":`)
			b.Write(c.query)
		}
		writeFT()
		b.WriteString(`,"orderFieldValues":`)
		vals(c.orderFieldValues)
	}
	if c.hasFirst {
		b.WriteString(`,"firstSortFieldValues":`)
		vals(c.firstSortValues)
	}
	if c.totalItems != nil {
		b.WriteString(`,"totalItems":`)
		b.WriteString(jsNumberString(*c.totalItems))
	}
	b.WriteByte('}')
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// lenientBase64 decodes like Node's Buffer.from(s, "base64"): both alphabets,
// padding optional, other characters skipped.
func lenientBase64(s string) []byte {
	var clean strings.Builder
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '+', r == '/':
			clean.WriteRune(r)
		case r == '-':
			clean.WriteByte('+')
		case r == '_':
			clean.WriteByte('/')
		case r == '=':
			goto done
		}
	}
done:
	t := clean.String()
	if len(t)%4 == 1 {
		t = t[:len(t)-1]
	}
	out, err := base64.RawStdEncoding.DecodeString(t)
	if err != nil {
		return nil
	}
	return out
}

// zodIssue renders one zod validation issue the way zod prints them.
func zodIssue(path []any, expected, received string, enum bool) string {
	p, _ := json.MarshalIndent(path, "    ", "  ")
	msg := "Required"
	if received != "undefined" {
		msg = fmt.Sprintf("Expected %s, received %s", expected, received)
	}
	ex, _ := json.Marshal(expected)
	rc, _ := json.Marshal(received)
	ms, _ := json.Marshal(msg)
	if enum {
		return fmt.Sprintf("[\n  {\n    \"expected\": %s,\n    \"received\": %s,\n    \"code\": \"invalid_type\",\n    \"path\": %s,\n    \"message\": %s\n  }\n]", ex, rc, p, ms)
	}
	return fmt.Sprintf("[\n  {\n    \"code\": \"invalid_type\",\n    \"expected\": %s,\n    \"received\": %s,\n    \"path\": %s,\n    \"message\": %s\n  }\n]", ex, rc, p, ms)
}

func jsType(v any, present bool) string {
	if !present {
		return "undefined"
	}
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case []any:
		return "array"
	}
	return "object"
}

func malformed(issue string) error {
	return inputError("Malformed cursor: InputError: Malformed cursor: %s", issue)
}

// decodeCursor parses and validates a cursor parameter as Backstage does.
func decodeCursor(s string) (*cursor, error) {
	data := lenientBase64(s)
	if !utf8.Valid(data) {
		data = []byte(strings.ToValidUTF8(string(data), "\uFFFD"))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return nil, inputError("Malformed cursor: SyntaxError: %s", jsonErrorMessage(data, err))
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, malformed(zodIssue([]any{}, "object", jsType(raw, true), false))
	}
	c := &cursor{decoded: true}

	ofv, present := obj["orderFields"]
	arr, ok := ofv.([]any)
	if !ok {
		return nil, malformed(zodIssue([]any{"orderFields"}, "array", jsType(ofv, present), false))
	}
	for i, item := range arr {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, malformed(zodIssue([]any{"orderFields", i}, "object", jsType(item, true), false))
		}
		f, fok := m["field"].(string)
		if !fok {
			v, p := m["field"]
			return nil, malformed(zodIssue([]any{"orderFields", i, "field"}, "string", jsType(v, p), false))
		}
		o, _ := m["order"].(string)
		if o != "asc" && o != "desc" {
			v, p := m["order"]
			if _, isStr := v.(string); isStr {
				return nil, inputError("Malformed cursor: InputError: Malformed cursor: invalid enum value %q at orderFields.%d.order", o, i)
			}
			return nil, malformed(zodIssue([]any{"orderFields", i, "order"}, "'asc' | 'desc'", jsType(v, p), true))
		}
		c.orderFields = append(c.orderFields, orderField{Field: f, Order: o})
	}
	if c.orderFields == nil {
		c.orderFields = []orderField{}
	}

	if v, present := obj["fullTextFilter"]; present && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, malformed(zodIssue([]any{"fullTextFilter"}, "object", jsType(v, true), false))
		}
		term, ok := m["term"].(string)
		if !ok {
			tv, tp := m["term"]
			return nil, malformed(zodIssue([]any{"fullTextFilter", "term"}, "string", jsType(tv, tp), false))
		}
		ft := &fullTextFilter{Term: term}
		if fv, fp := m["fields"]; fp && fv != nil {
			fa, ok := fv.([]any)
			if !ok {
				return nil, malformed(zodIssue([]any{"fullTextFilter", "fields"}, "array", jsType(fv, true), false))
			}
			ft.HasFields = true
			ft.Fields = []string{}
			for i, x := range fa {
				s, ok := x.(string)
				if !ok {
					return nil, malformed(zodIssue([]any{"fullTextFilter", "fields", i}, "string", jsType(x, true), false))
				}
				ft.Fields = append(ft.Fields, s)
			}
		}
		c.fullText = ft
	}

	vals := func(name string, required bool) ([]*string, bool, error) {
		v, present := obj[name]
		if !present && !required {
			return nil, false, nil
		}
		a, ok := v.([]any)
		if !ok {
			return nil, false, malformed(zodIssue([]any{name}, "array", jsType(v, present), false))
		}
		out := make([]*string, len(a))
		for i, x := range a {
			switch t := x.(type) {
			case nil:
			case string:
				out[i] = &t
			default:
				return nil, false, malformed(zodIssue([]any{name, i}, "string", jsType(x, true), false))
			}
		}
		return out, true, nil
	}
	var err error
	if c.orderFieldValues, _, err = vals("orderFieldValues", true); err != nil {
		return nil, err
	}
	if v, present := obj["filter"]; present && v != nil {
		p, err := parseLegacyFilter(v)
		if err != nil {
			return nil, inputError("Malformed cursor: InputError: Malformed cursor: %s", err.Error())
		}
		c.legacyFilter, _ = encodeJSON(v)
		c.pred = p
	}
	ip, present := obj["isPrevious"]
	b, ok := ip.(bool)
	if !ok {
		return nil, malformed(zodIssue([]any{"isPrevious"}, "boolean", jsType(ip, present), false))
	}
	c.isPrevious = b
	if v, present := obj["query"]; present && v != nil {
		p, err := parsePredicateJSON(v)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				return nil, inputError("Malformed cursor")
			}
			return nil, inputError("Malformed cursor: %s", ae.message)
		}
		c.query, _ = encodeJSON(v)
		if c.pred != nil {
			c.pred = &predicate{op: "all", kids: []*predicate{c.pred, p}}
		} else {
			c.pred = p
		}
	}
	if c.firstSortValues, c.hasFirst, err = vals("firstSortFieldValues", false); err != nil {
		return nil, err
	}
	if v, present := obj["totalItems"]; present && v != nil {
		n, ok := v.(json.Number)
		if !ok {
			return nil, malformed(zodIssue([]any{"totalItems"}, "number", jsType(v, true), false))
		}
		f, _ := n.Float64()
		c.totalItems = &f
	}
	return c, nil
}

// queryRequest is a parsed GET /entities/by-query.
type queryRequest struct {
	cur       *cursor
	isCursor  bool
	totalMode string // "include" or "exclude"
	limit     int
	offset    int
	fields    []string
}

// queryResult is one page.
type queryResult struct {
	items      []*entry
	totalItems int
	next, prev *cursor
}

type qrow struct {
	ent   int32
	value string
}

// likeMatch reports whether value matches SQL LIKE '%term%' (term lowercase;
// '%' and '_' inside it are wildcards, as Backstage does not escape them).
func likeMatch(value, term string) bool {
	if !strings.ContainsAny(term, "%_") {
		return strings.Contains(value, term)
	}
	return likeFrom([]rune(value), []rune("%"+term+"%"))
}

func likeFrom(v, p []rune) bool {
	for len(p) > 0 {
		switch p[0] {
		case '%':
			for len(p) > 0 && p[0] == '%' {
				p = p[1:]
			}
			if len(p) == 0 {
				return true
			}
			for i := 0; i <= len(v); i++ {
				if likeFrom(v[i:], p) {
					return true
				}
			}
			return false
		case '_':
			if len(v) == 0 {
				return false
			}
		default:
			if len(v) == 0 || v[0] != p[0] {
				return false
			}
		}
		v, p = v[1:], p[1:]
	}
	return len(v) == 0
}

// textMatches returns the entities having a row under one of keys whose value
// contains term.
func (idx *searchIndex) textMatches(keys []string, term string) bitset {
	out := newBitset(idx.n)
	for _, k := range keys {
		key := strings.ToLower(k)
		rows := idx.byKey[key]
		if cand, ok := idx.grams.gramCandidates(key, rows, term); ok {
			for _, i := range cand {
				if strings.Contains(rows[i].value, term) {
					out.set(rows[i].ent)
				}
			}
			continue
		}
		for _, r := range rows {
			if likeMatch(r.value, term) {
				out.set(r.ent)
			}
		}
	}
	return out
}

// run executes a query the way DefaultEntitiesCatalog.queryEntities does.
func (c *Catalog) run(q *queryRequest) queryResult {
	idx := c.idx
	cur := q.cur
	var sort *orderField
	if len(cur.orderFields) > 0 {
		sort = &cur.orderFields[0]
	}
	sortKey := ""
	if sort != nil {
		sortKey = strings.ToLower(sort.Field)
	}
	term := ""
	var textFields []string
	if cur.fullText != nil {
		term = strings.ToLower(jsTrim(cur.fullText.Term))
		textFields = cur.fullText.Fields
		if !cur.fullText.HasFields {
			textFields = nil
		}
	}
	if textFields == nil {
		if sortKey != "" {
			textFields = []string{sortKey}
		} else {
			textFields = []string{"metadata.uid"}
		}
	}
	inScope := sort != nil && len(textFields) == 1 && textFields[0] == sortKey

	var base bitset
	if cur.pred != nil {
		base = idx.eval(cur.pred)
	} else {
		base = fullBitset(idx.n)
	}
	var text bitset
	if term != "" {
		text = idx.textMatches(textFields, term)
	}
	rowSet := base
	if text != nil && !inScope {
		rowSet = append(bitset(nil), base...)
		rowSet.and(text)
	}

	var total int
	switch {
	case cur.totalItems != nil:
		total = int(*cur.totalItems)
	case q.isCursor || q.totalMode == "exclude":
		total = 0
	default:
		sets := []bitset{base}
		if text != nil {
			sets = append(sets, text)
		}
		if sort != nil {
			sets = append(sets, idx.sortIndexFor(sortKey).nonNull)
		}
		total = countAll(sets...)
	}

	desc := sort != nil && sort.Order == "desc"
	backwards := cur.isPrevious
	iterDesc := desc != backwards
	want := q.limit + 1
	if backwards {
		want = q.limit
	}
	skip := 0
	if !q.isCursor {
		skip = q.offset
	}

	var rows []qrow
	if q.limit > 0 {
		accept := c.cursorCondition(cur, sort != nil, iterDesc, backwards)
		visit := func(r qrow) bool {
			if !rowSet.has(r.ent) {
				return true
			}
			if inScope && term != "" && !likeMatch(r.value, term) {
				return true
			}
			if !accept(r) {
				return true
			}
			if skip > 0 {
				skip--
				return true
			}
			rows = append(rows, r)
			return len(rows) < want
		}
		if sort != nil {
			all := idx.byKey[sortKey]
			c.walkSorted(rowSet, sortKey, iterDesc, c.sparse(rowSet.count(), len(all), want+skip), accept, visit)
		} else {
			c.walkEntities(rowSet, backwards, accept, visit)
		}
	}

	if backwards {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	hasMore := q.limit > 0 && (backwards || len(rows) > q.limit)
	if len(rows) > q.limit {
		rows = rows[:q.limit]
	}
	sortValues := func(r *qrow) []*string {
		if r == nil {
			if sort != nil {
				return []*string{nil, nil}
			}
			return []*string{nil}
		}
		uid := c.entries[r.ent].uid
		if sort != nil {
			v := r.value
			return []*string{&v, &uid}
		}
		return []*string{&uid}
	}
	var first, last *qrow
	if len(rows) > 0 {
		first, last = &rows[0], &rows[len(rows)-1]
	}
	isInitial := !cur.hasFirst
	firstVals := cur.firstSortValues
	if !cur.hasFirst {
		firstVals = sortValues(first)
	}
	res := queryResult{totalItems: total}
	tot := float64(total)
	if hasMore {
		n := cur.clone()
		n.orderFieldValues = sortValues(last)
		n.firstSortValues, n.hasFirst = firstVals, true
		n.isPrevious = false
		n.totalItems = &tot
		res.next = n
	}
	if !isInitial && len(rows) > 0 && !sameValues(sortValues(first), cur.firstSortValues) {
		p := cur.clone()
		p.orderFieldValues = sortValues(first)
		p.firstSortValues, p.hasFirst = cur.firstSortValues, true
		p.isPrevious = true
		p.totalItems = &tot
		res.prev = p
	}
	res.items = make([]*entry, len(rows))
	for i, r := range rows {
		res.items[i] = c.entries[r.ent]
	}
	return res
}

func sameValues(a, b []*string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if (a[i] == nil) != (b[i] == nil) || (a[i] != nil && *a[i] != *b[i]) {
			return false
		}
	}
	return true
}

// cursorCondition is the keyset condition of a cursor: rows strictly after the
// cursor position in iteration order.
func (c *Catalog) cursorCondition(cur *cursor, sorted, iterDesc, backwards bool) func(qrow) bool {
	vals := cur.orderFieldValues
	switch {
	case len(vals) == 2 && sorted:
		if vals[0] == nil || vals[1] == nil {
			return func(qrow) bool { return false }
		}
		v, u := *vals[0], *vals[1]
		return func(r qrow) bool {
			uid := c.entries[r.ent].uid
			if iterDesc {
				return r.value < v || (r.value == v && uid < u)
			}
			return r.value > v || (r.value == v && uid > u)
		}
	case len(vals) == 1:
		if vals[0] == nil {
			return func(qrow) bool { return false }
		}
		u := *vals[0]
		return func(r qrow) bool {
			uid := c.entries[r.ent].uid
			if backwards {
				return uid < u
			}
			return uid > u
		}
	}
	return func(qrow) bool { return true }
}
