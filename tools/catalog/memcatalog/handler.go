package memcatalog

import (
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"

	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes is the largest request body accepted; Backstage's JSON body
// parser uses the same 100 KiB default. Larger bodies are InputErrors.
const MaxBodyBytes = 100 * 1024

const apiPrefix = "/api/catalog"

var (
	specsByQuery = []paramSpec{
		{"fields", paramArray}, {"limit", paramInteger}, {"offset", paramInteger},
		{"orderField", paramArray}, {"cursor", paramString}, {"filter", paramArray},
		{"totalItems", paramTotal}, {"fullTextFilterTerm", paramString}, {"fullTextFilterFields", paramArray},
	}
	specsEntities = []paramSpec{
		{"fields", paramArray}, {"limit", paramInteger}, {"filter", paramArray},
		{"offset", paramInteger}, {"after", paramString}, {"order", paramArray},
	}
	specsFacets = []paramSpec{{"facet", paramArray}, {"filter", paramArray}}
	specsByRefs = []paramSpec{{"filter", paramArray}}
)

func (c *Catalog) serve(w http.ResponseWriter, r *http.Request) {
	var body []byte
	var bodyErr error
	if r.Body != nil {
		body, bodyErr = io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		_ = r.Body.Close()
	}
	if c.maxRecorded >= 0 {
		c.record(RecordedRequest{
			Method:        r.Method,
			Path:          r.URL.Path,
			RawQuery:      r.URL.RawQuery,
			Query:         parseQuery(r.URL.RawQuery).values,
			Authorization: r.Header.Get("Authorization"),
			Body:          body,
		})
	}

	escaped := r.URL.EscapedPath()
	if !strings.HasPrefix(escaped, apiPrefix+"/") {
		http.NotFound(w, r)
		return
	}
	rest := escaped[len(apiPrefix):]
	relURL := rest
	if r.URL.RawQuery != "" {
		relURL += "?" + r.URL.RawQuery
	}
	fail := func(err error) { writeError(w, r, relURL, err) }

	if err := c.authenticate(r); err != nil {
		fail(err)
		return
	}
	if bodyErr != nil {
		fail(inputError("request aborted"))
		return
	}
	if len(body) > MaxBodyBytes {
		fail(inputError("request entity too large"))
		return
	}

	segs := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1] // one trailing slash is tolerated
	}
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			fail(inputError("Failed to decode param '%s'", s))
			return
		}
		segs[i] = u
	}
	route := strings.ToLower(strings.Join(segs, "/"))
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	qp := parseQuery(r.URL.RawQuery)

	var err error
	switch {
	case get && route == "entities/by-query":
		err = c.byQuery(w, qp)
	case get && route == "entities":
		err = c.listEntities(w, qp)
	case get && route == "entity-facets":
		err = c.facets(w, qp)
	case r.Method == http.MethodPost && route == "entities/by-refs":
		err = c.byRefs(w, r, qp, body)
	case get && len(segs) == 5 && strings.EqualFold(segs[0], "entities") && strings.EqualFold(segs[1], "by-name") &&
		segs[2] != "" && segs[3] != "" && segs[4] != "":
		err = c.byName(w, qp, segs[2], segs[3], segs[4])
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if err != nil {
		fail(err)
	}
}

var reBearer = regexp.MustCompile(`(?i)^bearer +(\S+)$`)

func (c *Catalog) authenticate(r *http.Request) error {
	if c.token == nil {
		return nil
	}
	m := reBearer.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return authError("Missing credentials")
	}
	if subtle.ConstantTimeCompare([]byte(m[1]), c.token) != 1 {
		return authError("Illegal token")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// writeEntities appends a JSON array of entities (null for nil) to buf.
func writeEntities(buf *bytes.Buffer, items []*entry, fields []string) error {
	var proj *projector
	if fields != nil {
		proj = newProjector(fields)
	}
	buf.WriteByte('[')
	for i, en := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		switch {
		case en == nil:
			buf.WriteString("null")
		case fields == nil:
			buf.WriteString(en.json)
		default:
			b, err := encodeJSON(proj.project(en.json))
			if err != nil {
				return err
			}
			buf.Write(b)
		}
	}
	buf.WriteByte(']')
	return nil
}

// parseOrderFields reads orderField parameters ("field,asc").
func parseOrderFields(params []string) ([]orderField, error) {
	out := []orderField{}
	for _, p := range params {
		parts := strings.Split(p, ",")
		o := orderField{Field: parts[0]}
		if len(parts) > 1 {
			if parts[1] != "asc" && parts[1] != "desc" {
				return nil, inputError("Invalid order field order, must be asc or desc")
			}
			o.Order = parts[1]
		}
		out = append(out, o)
	}
	return out, nil
}

func (c *Catalog) byQuery(w http.ResponseWriter, qp queryParams) error {
	if err := qp.check(specsByQuery); err != nil {
		return err
	}
	fields, err := parseFields(nil, qp.values["fields"])
	if err != nil {
		return err
	}
	q := &queryRequest{limit: DefaultLimit, totalMode: "include", fields: fields}
	if n, ok := qp.integer("limit"); ok {
		q.limit = n
	}
	if n, ok := qp.integer("offset"); ok {
		q.offset = n
	}
	if s, ok := qp.first("cursor"); ok {
		cur, err := decodeCursor(s)
		if err != nil {
			return err
		}
		q.cur, q.isCursor = cur, true
	} else {
		pred, err := parseFilterParams(qp.values["filter"])
		if err != nil {
			return err
		}
		ofs, err := parseOrderFields(qp.values["orderField"])
		if err != nil {
			return err
		}
		if t, ok := qp.first("totalItems"); ok {
			q.totalMode = t
		}
		term, _ := qp.first("fullTextFilterTerm")
		ft := &fullTextFilter{Term: term}
		if vs, ok := qp.values["fullTextFilterFields"]; ok {
			ft.HasFields = true
			ft.Fields = []string{}
			for _, v := range vs {
				ft.Fields = append(ft.Fields, strings.Split(v, ",")...)
			}
		}
		cur := &cursor{orderFields: ofs, fullText: ft, pred: pred}
		if pred != nil {
			cur.query = pred.json()
		}
		q.cur = cur
	}
	res := c.run(q)

	var buf bytes.Buffer
	buf.WriteString(`{"items":`)
	if err := writeEntities(&buf, res.items, q.fields); err != nil {
		return err
	}
	fmt.Fprintf(&buf, `,"totalItems":%d,"pageInfo":{`, res.totalItems)
	sep := ""
	if res.next != nil {
		fmt.Fprintf(&buf, `"nextCursor":%q`, res.next.encode())
		sep = ","
	}
	if res.prev != nil {
		fmt.Fprintf(&buf, `%s"prevCursor":%q`, sep, res.prev.encode())
	}
	buf.WriteString("}}")
	writeJSON(w, buf.Bytes())
	return nil
}

func (c *Catalog) byName(w http.ResponseWriter, qp queryParams, kind, namespace, name string) error {
	if err := qp.check(nil); err != nil {
		return err
	}
	en := c.byRef[catalog.Ref{Kind: kind, Namespace: namespace, Name: name}.Key()]
	if en == nil {
		return notFoundError("No entity named '%s' found, with kind '%s' in namespace '%s'", name, kind, namespace)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, en.json)
	return nil
}

func (c *Catalog) byRefs(w http.ResponseWriter, r *http.Request, qp queryParams, body []byte) error {
	if err := qp.check(specsByRefs); err != nil {
		return err
	}
	obj, err := parseJSONBody(r, body)
	if err != nil {
		return err
	}
	if obj == nil {
		return inputError("Malformed request body (did you remember to specify an application/json content type?), Validation error: Required at \"entityRefs\"")
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return inputError("request/body must be object")
	}
	refsV, ok := m["entityRefs"]
	if !ok {
		return inputError("request/body must have required property 'entityRefs'")
	}
	refsA, ok := refsV.([]any)
	if !ok {
		return inputError("request/body/entityRefs must be array")
	}
	refs := make([]string, len(refsA))
	for i, v := range refsA {
		s, ok := v.(string)
		if !ok {
			return inputError("request/body/entityRefs/%d must be string", i)
		}
		refs[i] = s
	}
	var extra []string
	if fv, ok := m["fields"]; ok {
		fa, ok := fv.([]any)
		if !ok {
			return inputError("request/body/fields must be array")
		}
		for i, v := range fa {
			s, ok := v.(string)
			if !ok {
				return inputError("request/body/fields/%d must be string", i)
			}
			extra = append(extra, s)
		}
	}
	pred, err := parseFilterParams(qp.values["filter"])
	if err != nil {
		return err
	}
	if qv, ok := m["query"]; ok {
		if _, isObj := qv.(map[string]any); !isObj {
			return inputError("request/body/query must be object")
		}
		qpred, err := parsePredicateJSON(qv)
		if err != nil {
			return err
		}
		if pred != nil {
			pred = &predicate{op: "all", kids: []*predicate{pred, qpred}}
		} else {
			pred = qpred
		}
	}
	fields, err := parseFields(extra, nil)
	if err != nil {
		return err
	}
	var allowed bitset
	if pred != nil {
		allowed = c.idx.eval(pred)
	}
	items := make([]*entry, len(refs))
	for i, ref := range refs {
		en := c.byRef[strings.ToLower(ref)]
		if en != nil && allowed != nil && !allowed.has(en.pos) {
			en = nil
		}
		items[i] = en
	}
	var buf bytes.Buffer
	buf.WriteString(`{"items":`)
	if err := writeEntities(&buf, items, fields); err != nil {
		return err
	}
	buf.WriteString("}")
	writeJSON(w, buf.Bytes())
	return nil
}

// parseJSONBody decodes a JSON request body; nil means no body.
func parseJSONBody(r *http.Request, body []byte) (any, error) {
	if len(body) == 0 {
		return nil, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		if mt == "" {
			return nil, nil
		}
		return nil, inputError("unsupported media type %s", mt)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, inputError("%s", jsonErrorMessage(body, err))
	}
	return v, nil
}

// jsonErrorMessage approximates the SyntaxError text Node prints.
func jsonErrorMessage(body []byte, err error) string {
	var se *json.SyntaxError
	pos := len(body)
	if errors.As(err, &se) && se.Offset > 0 {
		pos = int(se.Offset) - 1
	}
	if pos >= len(body) {
		return "Unexpected end of JSON input"
	}
	for pos > 0 && !utf8.RuneStart(body[pos]) {
		pos--
	}
	r, _ := utf8.DecodeRune(body[pos:])
	snippet := string(body)
	if utf8.RuneCountInString(snippet) > 32 {
		snippet = string([]rune(snippet)[:32]) + "..."
	}
	return fmt.Sprintf("Unexpected token '%c', \"%s\" is not valid JSON", r, snippet)
}

func (c *Catalog) facets(w http.ResponseWriter, qp queryParams) error {
	if err := qp.check(specsFacets, "facet"); err != nil {
		return err
	}
	pred, err := parseFilterParams(qp.values["filter"])
	if err != nil {
		return err
	}
	var allowed bitset
	if pred != nil {
		allowed = c.idx.eval(pred)
	}
	var buf bytes.Buffer
	buf.WriteString(`{"facets":{`)
	done := map[string]bool{}
	for _, f := range qp.values["facet"] {
		if done[f] {
			continue
		}
		done[f] = true
		counts := map[string]int{}
		for _, r := range c.idx.byKey[strings.ToLower(f)] {
			if allowed == nil || allowed.has(r.ent) {
				counts[c.idx.orig(r)]++
			}
		}
		values := make([]string, 0, len(counts))
		for v := range counts {
			values = append(values, v)
		}
		sort.Strings(values)
		if len(done) > 1 {
			buf.WriteByte(',')
		}
		k, _ := encodeJSON(f)
		buf.Write(k)
		buf.WriteString(":[")
		for i, v := range values {
			if i > 0 {
				buf.WriteByte(',')
			}
			vb, _ := encodeJSON(v)
			fmt.Fprintf(&buf, `{"value":%s,"count":%d}`, vb, counts[v])
		}
		buf.WriteByte(']')
	}
	buf.WriteString("}}")
	writeJSON(w, buf.Bytes())
	return nil
}

var reLegacyOrder = regexp.MustCompile(`^(asc|desc):(.+)$`)

// listEntities is the legacy GET /entities.
func (c *Catalog) listEntities(w http.ResponseWriter, qp queryParams) error {
	if err := qp.check(specsEntities); err != nil {
		return err
	}
	pred, err := parseFilterParams(qp.values["filter"])
	if err != nil {
		return err
	}
	fields, err := parseFields(nil, qp.values["fields"])
	if err != nil {
		return err
	}
	var order []orderField
	for _, o := range qp.values["order"] {
		m := reLegacyOrder.FindStringSubmatch(o)
		if m == nil {
			return inputError("Invalid order parameter %q, expected \"<asc or desc>:<field name>\"", o)
		}
		order = append(order, orderField{Field: m[2], Order: m[1]})
	}
	limit, hasLimit := qp.integer("limit")
	offset, hasOffset := qp.integer("offset")
	after, hasAfter := qp.first("after")

	var buf bytes.Buffer
	if !hasLimit && !hasOffset && !hasAfter {
		cur := &cursor{orderFields: order, pred: pred, fullText: &fullTextFilter{}}
		if cur.orderFields == nil {
			cur.orderFields = []orderField{}
		}
		res := c.run(&queryRequest{cur: cur, limit: math.MaxInt32, totalMode: "exclude"})
		if err := writeEntities(&buf, res.items, fields); err != nil {
			return err
		}
		writeJSON(w, buf.Bytes())
		return nil
	}
	if hasLimit && limit <= 0 {
		return inputError("Invalid limit, must be greater than zero")
	}
	if hasAfter {
		var cur map[string]any
		dec := json.NewDecoder(bytes.NewReader(lenientBase64(after)))
		dec.UseNumber()
		if err := dec.Decode(&cur); err != nil {
			return inputError("Malformed after cursor, could not be parsed")
		}
		if v, ok := cur["limit"]; ok {
			n, ok := jsonInt(v)
			if !ok {
				return inputError("Malformed after cursor, limit was not an number")
			}
			limit, hasLimit = n, true
		}
		if v, ok := cur["offset"]; ok {
			n, ok := jsonInt(v)
			if !ok {
				return inputError("Malformed after cursor, offset was not a number")
			}
			offset = n
		}
	}

	allowed := fullBitset(c.idx.n)
	if pred != nil {
		allowed = c.idx.eval(pred)
	}
	rows := c.legacyRows(allowed, order)
	if offset > len(rows) {
		offset = len(rows)
	}
	rows = rows[offset:]
	hasNext := hasLimit && len(rows) > limit
	if hasNext {
		rows = rows[:limit]
		next := fmt.Sprintf(`{"limit":%d,"offset":%d}`, limit, offset+limit)
		w.Header().Set("Link", "<"+legacyNextURL(qp, base64.StdEncoding.EncodeToString([]byte(next)))+">; rel=\"next\"")
	}
	if err := writeEntities(&buf, rows, fields); err != nil {
		return err
	}
	writeJSON(w, buf.Bytes())
	return nil
}

func jsonInt(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

// legacyRows orders entities as the legacy endpoint does: by entity ref when
// unordered; otherwise by each order field's indexed values (the field used
// as the index key as written; one row per value; missing values last), then
// by uid.
func (c *Catalog) legacyRows(allowed bitset, order []orderField) []*entry {
	if len(order) == 0 {
		var out []*entry
		for _, en := range c.entries {
			if allowed.has(en.pos) {
				out = append(out, en)
			}
		}
		sort.Slice(out, func(a, b int) bool { return out[a].ref < out[b].ref })
		return out
	}
	// values[k][ent] = the entity's non-null values for order field k
	values := make([]map[int32][]string, len(order))
	for k, o := range order {
		values[k] = map[int32][]string{}
		for _, r := range c.idx.byKey[o.Field] {
			values[k][r.ent] = append(values[k][r.ent], r.value)
		}
	}
	type lrow struct {
		en   *entry
		vals []*string
	}
	var rows []lrow
	for _, en := range c.entries {
		if !allowed.has(en.pos) {
			continue
		}
		combos := [][]*string{{}}
		for k := range order {
			vs := values[k][en.pos]
			var next [][]*string
			for _, cmb := range combos {
				if len(vs) == 0 {
					next = append(next, append(append([]*string{}, cmb...), nil))
					continue
				}
				for i := range vs {
					next = append(next, append(append([]*string{}, cmb...), &vs[i]))
				}
			}
			combos = next
		}
		for _, cmb := range combos {
			rows = append(rows, lrow{en, cmb})
		}
	}
	sort.SliceStable(rows, func(a, b int) bool {
		for k, o := range order {
			va, vb := rows[a].vals[k], rows[b].vals[k]
			switch {
			case va == nil && vb == nil:
				continue
			case va == nil:
				return false
			case vb == nil:
				return true
			case *va == *vb:
				continue
			case o.Order == "desc":
				return *va > *vb
			default:
				return *va < *vb
			}
		}
		return rows[a].en.uid < rows[b].en.uid
	})
	out := make([]*entry, len(rows))
	for i, r := range rows {
		out[i] = r.en
	}
	return out
}

// legacyNextURL rebuilds the request URL without offset and with after, as
// URLSearchParams would serialise it.
func legacyNextURL(qp queryParams, after string) string {
	var parts []string
	setAfter := false
	for _, k := range qp.order {
		if k == "offset" {
			continue
		}
		if k == "after" {
			if !setAfter {
				parts = append(parts, formEncode(k)+"="+formEncode(after))
				setAfter = true
			}
			continue
		}
		for _, v := range qp.values[k] {
			parts = append(parts, formEncode(k)+"="+formEncode(v))
		}
	}
	if !setAfter {
		parts = append(parts, "after="+formEncode(after))
	}
	return "/entities?" + strings.Join(parts, "&")
}

// formEncode is application/x-www-form-urlencoded as URLSearchParams writes it.
func formEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9',
			ch == '*', ch == '-', ch == '.', ch == '_':
			b.WriteByte(ch)
		case ch == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
