package redact

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON redacts every string leaf (and object key) of a JSON document, judging
// each value with its key as context, and removes invisible Unicode from
// strings. The output is valid JSON with the same structure and formatting.
// On error the result must not be used.
func (r *Redactor) JSON(doc []byte) ([]byte, Report, error) {
	return r.JSONUntil(doc, nil)
}

// JSONUntil is JSON that asks stop, before each string it checks, whether
// to go on; when stop reports true it returns ErrStopped and nothing else.
// It lets a caller bound the work spent on one document (a deadline) while
// this package stays free of clocks: the bound per string is the caller's
// cap on string length. A nil stop never stops.
func (r *Redactor) JSONUntil(doc []byte, stop func() bool) ([]byte, Report, error) {
	r.calls.json.Add(1)
	var rep Report
	w := jsonWalker{r: r, in: doc, rep: &rep, stop: stop}
	if err := w.run(); err != nil {
		return nil, Report{}, err
	}
	out := make([]byte, 0, len(doc)+len(w.out))
	out = append(out, w.out...)
	out = append(out, doc[w.flushed:]...)
	return out, rep, nil
}

// FindJSON returns the secrets that JSON would redact in its first pass, with
// byte offsets into doc.
func (r *Redactor) FindJSON(doc []byte) ([]Finding, error) {
	w := jsonWalker{r: r, in: doc, find: true, rep: &Report{}}
	if err := w.run(); err != nil {
		return nil, err
	}
	return w.findings, nil
}

type jsonWalker struct {
	r        *Redactor
	in       []byte
	pos      int
	out      []byte // output up to in[flushed]
	flushed  int
	rep      *Report
	find     bool
	findings []Finding
	stop     func() bool
}

func (w *jsonWalker) errf(format string, a ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrInvalidJSON, w.pos, fmt.Sprintf(format, a...))
}

func (w *jsonWalker) run() error {
	if len(w.in) > w.r.maxSize {
		return fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(w.in), w.r.maxSize)
	}
	w.ws()
	if err := w.value(nil, 0); err != nil {
		return err
	}
	w.ws()
	if w.pos != len(w.in) {
		return w.errf("trailing data")
	}
	return nil
}

func (w *jsonWalker) ws() {
	for w.pos < len(w.in) {
		switch w.in[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *jsonWalker) value(key []byte, depth int) error {
	if depth > w.r.maxDepth {
		return fmt.Errorf("%w (limit %d)", ErrTooDeep, w.r.maxDepth)
	}
	if w.pos >= len(w.in) {
		return w.errf("unexpected end")
	}
	switch c := w.in[w.pos]; {
	case c == '{':
		return w.object(depth)
	case c == '[':
		return w.array(key, depth)
	case c == '"':
		s, e, simple, err := w.str()
		if err != nil {
			return err
		}
		if w.stop != nil && w.stop() {
			return ErrStopped
		}
		w.leaf(s, e, simple, key)
		return nil
	case c == 't':
		return w.lit("true")
	case c == 'f':
		return w.lit("false")
	case c == 'n':
		return w.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return w.number()
	default:
		return w.errf("unexpected %q", c)
	}
}

func (w *jsonWalker) object(depth int) error {
	w.pos++ // {
	w.ws()
	if w.pos < len(w.in) && w.in[w.pos] == '}' {
		w.pos++
		return nil
	}
	var nameVal []byte // value of a sibling "name" (or "key") string, for name/value pairs
	for {
		if w.pos >= len(w.in) || w.in[w.pos] != '"' {
			return w.errf("expected object key")
		}
		ks, ke, ksimple, err := w.str()
		if err != nil {
			return err
		}
		key := w.in[ks:ke]
		if !ksimple {
			key = jsonUnescape(key, nil)
		}
		// A key already judged clean (no invisible Unicode, nothing
		// detected: see keyInfo) would come out of leaf unchanged, with
		// nothing found.
		if len(key) == 0 || len(key) > keyCacheMaxLen || !w.r.keyInfo(key).clean {
			if w.stop != nil && w.stop() {
				return ErrStopped
			}
			w.leaf(ks, ke, ksimple, nil)
		}
		w.ws()
		if w.pos >= len(w.in) || w.in[w.pos] != ':' {
			return w.errf("expected ':'")
		}
		w.pos++
		w.ws()
		ctx := key
		if nameVal != nil && (string(key) == "value" || string(key) == "secretValue") {
			ctx = nameVal
		}
		isName := (string(key) == "name" || string(key) == "key") && w.pos < len(w.in) && w.in[w.pos] == '"'
		vstart := w.pos
		if err := w.value(ctx, depth+1); err != nil {
			return err
		}
		if isName && w.pos-vstart >= 2 {
			nameVal = jsonUnescape(w.in[vstart+1:w.pos-1], nil)
		}
		if done, err := w.next('}', "object"); done || err != nil {
			return err
		}
	}
}

func (w *jsonWalker) array(key []byte, depth int) error {
	w.pos++ // [
	w.ws()
	if w.pos < len(w.in) && w.in[w.pos] == ']' {
		w.pos++
		return nil
	}
	for {
		if err := w.value(key, depth+1); err != nil {
			return err
		}
		if done, err := w.next(']', "array"); done || err != nil {
			return err
		}
	}
}

// next consumes what follows a member of an object or array: ',' (more
// members follow) or the closing byte (done).
func (w *jsonWalker) next(closing byte, in string) (done bool, err error) {
	w.ws()
	if w.pos >= len(w.in) {
		return false, w.errf("unexpected end in %s", in)
	}
	switch w.in[w.pos] {
	case ',':
		w.pos++
		w.ws()
		return false, nil
	case closing:
		w.pos++
		return true, nil
	default:
		return false, w.errf("expected ',' or '%c'", closing)
	}
}

func (w *jsonWalker) lit(s string) error {
	if len(w.in)-w.pos < len(s) || string(w.in[w.pos:w.pos+len(s)]) != s {
		return w.errf("invalid literal")
	}
	w.pos += len(s)
	return nil
}

func (w *jsonWalker) number() error {
	in, p := w.in, w.pos
	if p < len(in) && in[p] == '-' {
		p++
	}
	switch {
	case p < len(in) && in[p] == '0':
		p++
	case p < len(in) && in[p] >= '1' && in[p] <= '9':
		p = digits(in, p)
	default:
		w.pos = p
		return w.errf("invalid number")
	}
	if p < len(in) && in[p] == '.' {
		d := p + 1
		if p = digits(in, d); p == d {
			w.pos = p
			return w.errf("invalid number")
		}
	}
	if p < len(in) && (in[p] == 'e' || in[p] == 'E') {
		p++
		if p < len(in) && (in[p] == '+' || in[p] == '-') {
			p++
		}
		d := p
		if p = digits(in, p); p == d {
			w.pos = p
			return w.errf("invalid number")
		}
	}
	w.pos = p
	return nil
}

// digits returns the offset just past the ASCII digits of in from p on.
func digits(in []byte, p int) int {
	for p < len(in) && in[p] >= '0' && in[p] <= '9' {
		p++
	}
	return p
}

// str scans a string token at w.pos. It returns the content range (without
// quotes) and whether the content is plain ASCII without escapes.
func (w *jsonWalker) str() (start, end int, simple bool, err error) {
	in := w.in
	p := w.pos + 1
	start = p
	simple = true
	for p < len(in) {
		c := in[p]
		switch {
		case c == '"':
			w.pos = p + 1
			return start, p, simple, nil
		case c == '\\':
			simple = false
			if p+1 >= len(in) {
				w.pos = p
				return 0, 0, false, w.errf("unterminated escape")
			}
			switch in[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				if p+5 >= len(in) {
					w.pos = p
					return 0, 0, false, w.errf("invalid \\u escape")
				}
				for _, h := range in[p+2 : p+6] {
					if !isHex(h) {
						w.pos = p
						return 0, 0, false, w.errf("invalid \\u escape")
					}
				}
				p += 6
			default:
				w.pos = p
				return 0, 0, false, w.errf("invalid escape")
			}
		case c < 0x20:
			w.pos = p
			return 0, 0, false, w.errf("control character in string")
		case c >= 0x80:
			simple = false
			p++
		default:
			p++
		}
	}
	w.pos = p
	return 0, 0, false, w.errf("unterminated string")
}

// leaf redacts (or, in find mode, records findings in) the string whose
// content is in[s:e].
func (w *jsonWalker) leaf(s, e int, simple bool, keyName []byte) {
	key := w.r.keyOf(keyName)
	raw := w.in[s:e]
	r := w.r
	if simple {
		if w.find {
			for _, sp := range r.detect(raw, key) {
				w.findings = append(w.findings, Finding{Rule: r.rules[sp.rule].id, Start: s + sp.start, End: s + sp.end})
			}
			return
		}
		out, changed := r.process(raw, key, w.rep)
		if changed {
			w.replace(s, e, out, true)
		}
		return
	}
	var starts1 []int
	if w.find {
		starts1 = make([]int, 0, len(raw)+1)
	}
	decoded := jsonUnescape(raw, &starts1)
	clean, n, starts2 := sanitizeMap(string(decoded), w.find)
	if w.find {
		for _, sp := range r.detect([]byte(clean), key) {
			a, b := sp.start, sp.end
			if starts2 != nil {
				a, b = starts2[a], starts2[b]
			}
			w.findings = append(w.findings, Finding{Rule: r.rules[sp.rule].id, Start: s + starts1[a], End: s + starts1[b]})
		}
		return
	}
	w.rep.Invisible += n
	out, changed := r.process([]byte(clean), key, w.rep)
	if changed || n > 0 {
		w.replace(s, e, out, false)
	}
}

// replace substitutes the content of the string at in[s:e]. When raw is true
// content is already JSON-escaped.
func (w *jsonWalker) replace(s, e int, content []byte, raw bool) {
	w.out = append(w.out, w.in[w.flushed:s]...)
	if raw {
		w.out = append(w.out, content...)
	} else {
		w.out = appendEscaped(w.out, content)
	}
	w.flushed = e
}

// appendEscaped appends s JSON-escaped (without quotes).
func appendEscaped(dst, s []byte) []byte {
	const hexd = "0123456789abcdef"
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// jsonUnescape decodes the content of a valid JSON string. When starts is
// non-nil it receives, for every output byte and one past the end, the
// offset in raw it came from.
func jsonUnescape(raw []byte, starts *[]int) []byte {
	out := make([]byte, 0, len(raw))
	mark := func(i, n int) {
		if starts != nil {
			for k := 0; k < n; k++ {
				*starts = append(*starts, i)
			}
		}
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			out = append(out, c)
			mark(i, 1)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			rn, n := decodeU(raw[i:])
			if n == 0 {
				out = append(out, c)
				mark(i, 1)
				i++
				continue
			}
			if n == 6 && utf16.IsSurrogate(rn) {
				rn = utf8.RuneError
			}
			before := len(out)
			out = utf8.AppendRune(out, rn)
			mark(i, len(out)-before)
			i += n
			continue
		default:
			out = append(out, raw[i+1])
		}
		mark(i, 1)
		i += 2
	}
	if starts != nil {
		*starts = append(*starts, len(raw))
	}
	return out
}

// Value redacts a decoded JSON value (map[string]any, []any, string, float64,
// bool, nil, json.Number; also map[string]string and []string). The input
// is never modified. Maps and slices in which nothing changed are returned
// as they are, not copied: the result may share them with the input.
func (r *Redactor) Value(v any) (any, Report, error) {
	r.calls.value.Add(1)
	var rep Report
	out, _, err := r.value(v, nil, 0, &rep)
	if err != nil {
		return nil, Report{}, err
	}
	return out, rep, nil
}

// KeyedValue redacts v as if it sat under the JSON key key: a facet value
// is judged with its facet path ("metadata.annotations.aws-secret-key"), an
// error text or log attribute with its field name. An empty key is the
// same as Value.
func (r *Redactor) KeyedValue(key string, v any) (any, Report, error) {
	r.calls.keyed.Add(1)
	var rep Report
	out, _, err := r.value(v, r.keyOf(view(key)), 0, &rep)
	if err != nil {
		return nil, Report{}, err
	}
	return out, rep, nil
}

// str redacts one string and reports whether it changed. The scan reads
// the string's own bytes; a change is a new slice.
func (r *Redactor) str(s string, key *keyInfo, rep *Report) (string, bool) {
	clean, n := Sanitize(s)
	rep.Invisible += n
	out, changed := r.process(view(clean), key, rep)
	if changed {
		return string(out), true
	}
	return clean, n > 0
}

// key redacts a map key, skipping keys already judged clean.
func (r *Redactor) key(k string, ki *keyInfo, rep *Report) (string, bool) {
	if ki.clean {
		return k, false
	}
	return r.str(k, nil, rep)
}

func (r *Redactor) value(v any, key *keyInfo, depth int, rep *Report) (any, bool, error) {
	if depth > r.maxDepth {
		return nil, false, fmt.Errorf("%w (limit %d)", ErrTooDeep, r.maxDepth)
	}
	switch t := v.(type) {
	case nil, bool, float64, json.Number, int, int64, float32, int32, uint, uint64, uint32:
		return v, false, nil
	case string:
		out, changed := r.str(t, key, rep)
		if !changed {
			return v, false, nil // no new interface value
		}
		return out, true, nil
	case map[string]any:
		var out map[string]any // copy on the first change
		for k, x := range t {
			ki := r.keyInfo(view(k))
			ctx := ki
			if k == "value" || k == "secretValue" {
				if nameVal := siblingName(t); nameVal != nil {
					ctx = r.keyOf(nameVal)
				}
			}
			nv, changed, err := r.value(x, ctx, depth+1, rep)
			if err != nil {
				return nil, false, err
			}
			nk, kChanged := r.key(k, ki, rep)
			if !changed && !kChanged {
				continue
			}
			out = putChanged(out, t, k, nk, nv)
		}
		if out == nil {
			return v, false, nil
		}
		return out, true, nil
	case map[string]string:
		var out map[string]string
		for k, x := range t {
			ki := r.keyInfo(view(k))
			nk, kChanged := r.key(k, ki, rep)
			nv, changed := r.str(x, ki, rep)
			if !changed && !kChanged {
				continue
			}
			out = putChanged(out, t, k, nk, nv)
		}
		if out == nil {
			return v, false, nil
		}
		return out, true, nil
	case []any:
		var out []any
		for i, x := range t {
			nv, changed, err := r.value(x, key, depth+1, rep)
			if err != nil {
				return nil, false, err
			}
			if !changed {
				continue
			}
			out = setChanged(out, t, i, nv)
		}
		if out == nil {
			return v, false, nil
		}
		return out, true, nil
	case []string:
		var out []string
		for i, x := range t {
			nv, changed := r.str(x, key, rep)
			if !changed {
				continue
			}
			out = setChanged(out, t, i, nv)
		}
		if out == nil {
			return v, false, nil
		}
		return out, true, nil
	default:
		return nil, false, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
	}
}

// siblingName is the value of a map's "name" (or else "key") string, the
// context of its "value" in name/value pairs; nil when it has none.
func siblingName(t map[string]any) []byte {
	for _, nk := range [...]string{"name", "key"} {
		if s, ok := t[nk].(string); ok {
			return view(s)
		}
	}
	return nil
}

// putChanged records that key k of src became nk with value nv in out, a
// copy of src made on the first change (out is nil until then).
func putChanged[V any](out, src map[string]V, k, nk string, nv V) map[string]V {
	if out == nil {
		out = make(map[string]V, len(src))
		maps.Copy(out, src)
	}
	if nk != k {
		delete(out, k)
	}
	out[nk] = nv
	return out
}

// setChanged records that item i of src became nv in out, a copy of src
// made on the first change (out is nil until then).
func setChanged[V any](out, src []V, i int, nv V) []V {
	if out == nil {
		out = slices.Clone(src)
	}
	out[i] = nv
	return out
}
