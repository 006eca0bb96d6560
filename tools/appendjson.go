package tools

import (
	"strconv"
	"unicode/utf8"
)

// The structured answers of the search and get tools encode themselves
// (AppendJSON): the server's egress encodes every answer before redacting
// it, and encoding/json spends most of that time on reflection. Each
// AppendJSON writes exactly the bytes json.Marshal writes for the same
// value (TestAppendJSONMatchesMarshal holds them to it), or reports false
// and leaves the encoding to json.Marshal.

// AppendJSON appends the result as json.Marshal encodes it. It reports
// false, appending nothing, when an item is not a Summary (or a pointer
// to one).
func (r SearchEntitiesResult) AppendJSON(dst []byte) ([]byte, bool) {
	if r.Items == nil {
		return dst, false // json.Marshal writes null: not worth a case
	}
	for _, it := range r.Items {
		switch it.(type) {
		case Summary, *Summary:
		default:
			return dst, false
		}
	}
	dst = append(dst, `{"items":[`...)
	for i, it := range r.Items {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch s := it.(type) {
		case Summary:
			dst, _ = s.AppendJSON(dst)
		case *Summary:
			dst, _ = s.AppendJSON(dst)
		}
	}
	dst = append(dst, ']')
	if r.NextCursor != "" {
		dst = append(dst, `,"nextCursor":`...)
		dst = appendJSONString(dst, r.NextCursor)
	}
	if r.TotalItems != nil {
		dst = append(dst, `,"totalItems":`...)
		dst = strconv.AppendInt(dst, int64(*r.TotalItems), 10)
	}
	if r.Note != "" {
		dst = append(dst, `,"note":`...)
		dst = appendJSONString(dst, r.Note)
	}
	return append(dst, '}'), true
}

// AppendJSON appends the summary as json.Marshal encodes it.
func (s Summary) AppendJSON(dst []byte) ([]byte, bool) {
	dst = append(dst, `{"ref":`...)
	dst = appendJSONString(dst, s.Ref)
	for _, f := range [...]struct{ name, v string }{
		{`,"title":`, s.Title}, {`,"description":`, s.Description}, {`,"type":`, s.Type},
		{`,"lifecycle":`, s.Lifecycle}, {`,"owner":`, s.Owner}, {`,"system":`, s.System}, {`,"domain":`, s.Domain}, {`,"email":`, s.Email},
	} {
		if f.v != "" {
			dst = append(dst, f.name...)
			dst = appendJSONString(dst, f.v)
		}
	}
	if len(s.Tags) > 0 {
		dst = append(dst, `,"tags":[`...)
		for i, t := range s.Tags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, t)
		}
		dst = append(dst, ']')
	}
	if len(s.Links) > 0 {
		dst = append(dst, `,"links":[`...)
		for i, l := range s.Links {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			if l.Title != "" {
				dst = append(dst, `"title":`...)
				dst = appendJSONString(dst, l.Title)
				dst = append(dst, ',')
			}
			dst = append(dst, `"url":`...)
			dst = appendJSONString(dst, l.URL)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if len(s.Annotations) > 0 {
		dst = append(dst, `,"annotations":{`...)
		var arr [16]string
		for i, k := range sortedKeys(arr[:0], s.Annotations) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, s.Annotations[k])
		}
		dst = append(dst, '}')
	}
	if len(s.Relations) > 0 {
		dst = append(dst, `,"relations":[`...)
		for i, rr := range s.Relations {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"type":`...)
			dst = appendJSONString(dst, rr.Type)
			dst = append(dst, `,"refs":`...)
			if rr.Refs == nil {
				dst = append(dst, "null"...)
			} else {
				dst = append(dst, '[')
				for j, t := range rr.Refs {
					if j > 0 {
						dst = append(dst, ',')
					}
					dst = appendJSONString(dst, t)
				}
				dst = append(dst, ']')
			}
			dst = append(dst, `,"total":`...)
			dst = strconv.AppendInt(dst, int64(rr.Total), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), true
}

// appendJSONString appends s as a JSON string the way encoding/json
// writes one (HTML escaping on): '"' and '\\' escaped; \b, \f, \n, \r and
// \t by name; other control characters and '<', '>', '&' as \u00XX; each
// invalid UTF-8 byte as \ufffd; U+2028 and U+2029 as \u2028 and \u2029;
// everything else as it is.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
