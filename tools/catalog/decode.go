package catalog

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// DecodeObject decodes a JSON object into map[string]any with exactly the
// result and the errors of json.Unmarshal into a map[string]any: objects
// are map[string]any, arrays []any (empty, not nil, when empty), numbers
// float64, a repeated key keeps its last value, and JSON null is a nil map.
//
// It is the decoder of catalog entities, which every tool reads one by
// one: it makes one copy of raw and cuts every plain string and key out
// of it, instead of one allocation per string, and it skips the
// reflection of encoding/json. Anything it does not decode itself (a
// string with escapes or invalid UTF-8, deep nesting, a syntax error, a
// number out of range, a document that is not an object) is handed to
// json.Unmarshal, for the whole document or the one string, so that the
// two never differ.
func DecodeObject(raw []byte) (map[string]any, error) {
	d := objDecoder{s: string(raw)}
	d.ws()
	if d.p < len(d.s) && d.s[d.p] == '{' {
		m, ok := d.object(0)
		if ok {
			d.ws()
			if d.p == len(d.s) {
				return m, nil
			}
		}
	}
	var m map[string]any
	err := json.Unmarshal(raw, &m)
	return m, err
}

// maxDecodeDepth is the nesting that DecodeObject decodes itself; deeper
// documents go to json.Unmarshal (which has its own, larger limit).
const maxDecodeDepth = 200

// objDecoder is DecodeObject's cursor over its copy of the document. A
// false ok from any method means "not decoded here": the caller falls
// back to json.Unmarshal.
type objDecoder struct {
	s string
	p int
}

func (d *objDecoder) ws() {
	for d.p < len(d.s) {
		switch d.s[d.p] {
		case ' ', '\t', '\n', '\r':
			d.p++
		default:
			return
		}
	}
}

func (d *objDecoder) value(depth int) (any, bool) {
	if d.p >= len(d.s) {
		return nil, false
	}
	switch c := d.s[d.p]; {
	case c == '{':
		m, ok := d.object(depth + 1)
		return m, ok
	case c == '[':
		return d.array(depth + 1)
	case c == '"':
		s, ok := d.str()
		return s, ok
	case c == 't':
		return true, d.lit("true")
	case c == 'f':
		return false, d.lit("false")
	case c == 'n':
		return nil, d.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	default:
		return nil, false
	}
}

func (d *objDecoder) object(depth int) (map[string]any, bool) {
	if depth > maxDecodeDepth {
		return nil, false
	}
	d.p++ // {
	m := map[string]any{}
	d.ws()
	if d.p < len(d.s) && d.s[d.p] == '}' {
		d.p++
		return m, true
	}
	for {
		if d.p >= len(d.s) || d.s[d.p] != '"' {
			return nil, false
		}
		k, ok := d.str()
		if !ok {
			return nil, false
		}
		d.ws()
		if d.p >= len(d.s) || d.s[d.p] != ':' {
			return nil, false
		}
		d.p++
		d.ws()
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		m[k] = v
		more, ok := d.sep('}')
		if !ok {
			return nil, false
		}
		if !more {
			return m, true
		}
	}
}

// sep reads what follows a member or an element: ',' (more follow) or
// closer (the end); ok is false on anything else.
func (d *objDecoder) sep(closer byte) (more, ok bool) {
	d.ws()
	if d.p >= len(d.s) {
		return false, false
	}
	switch d.s[d.p] {
	case ',':
		d.p++
		d.ws()
		return true, true
	case closer:
		d.p++
		return false, true
	}
	return false, false
}

func (d *objDecoder) array(depth int) ([]any, bool) {
	if depth > maxDecodeDepth {
		return nil, false
	}
	d.p++ // [
	l := make([]any, 0)
	d.ws()
	if d.p < len(d.s) && d.s[d.p] == ']' {
		d.p++
		return l, true
	}
	for {
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		l = append(l, v)
		more, ok := d.sep(']')
		if !ok {
			return nil, false
		}
		if !more {
			return l, true
		}
	}
}

// str decodes the string at d.p. Plain strings (no escapes, valid UTF-8)
// are cut out of the document; any other is decoded by json.Unmarshal.
func (d *objDecoder) str() (string, bool) {
	start := d.p + 1
	plain, ascii := true, true
	for i := start; i < len(d.s); i++ {
		switch c := d.s[i]; {
		case c == '"':
			if !plain {
				var s string
				if json.Unmarshal([]byte(d.s[d.p:i+1]), &s) != nil {
					return "", false
				}
				d.p = i + 1
				return s, true
			}
			s := d.s[start:i]
			if !ascii && !utf8.ValidString(s) {
				// encoding/json replaces invalid bytes with U+FFFD.
				var u string
				if json.Unmarshal([]byte(d.s[d.p:i+1]), &u) != nil {
					return "", false
				}
				s = u
			}
			d.p = i + 1
			return s, true
		case c == '\\':
			if i+1 >= len(d.s) {
				return "", false
			}
			plain = false
			i++ // the escaped byte cannot end the string
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

func (d *objDecoder) lit(word string) bool {
	if len(d.s)-d.p < len(word) || d.s[d.p:d.p+len(word)] != word {
		return false
	}
	d.p += len(word)
	return true
}

// number decodes a number with JSON's grammar, as encoding/json does for
// an interface value: strconv.ParseFloat of its text.
func (d *objDecoder) number() (any, bool) {
	s, p := d.s, d.p
	if p < len(s) && s[p] == '-' {
		p++
	}
	switch {
	case p < len(s) && s[p] == '0':
		p++
	case p < len(s) && s[p] >= '1' && s[p] <= '9':
		p = digitsEnd(s, p)
	default:
		return nil, false
	}
	if p < len(s) && s[p] == '.' {
		q := digitsEnd(s, p+1)
		if q == p+1 {
			return nil, false
		}
		p = q
	}
	if p < len(s) && (s[p] == 'e' || s[p] == 'E') {
		p++
		if p < len(s) && (s[p] == '+' || s[p] == '-') {
			p++
		}
		q := digitsEnd(s, p)
		if q == p {
			return nil, false
		}
		p = q
	}
	f, err := strconv.ParseFloat(s[d.p:p], 64)
	if err != nil {
		return nil, false
	}
	d.p = p
	return f, true
}

func digitsEnd(s string, p int) int {
	for p < len(s) && s[p] >= '0' && s[p] <= '9' {
		p++
	}
	return p
}
