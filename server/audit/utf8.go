package audit

import (
	"unicode/utf8"
)

// replacementEscape stands for an invalid byte inside a JSON string of
// Record.Arguments: the escape encoding/json itself writes for invalid
// UTF-8 in Go strings.
const replacementEscape = `\ufffd`

// validUTF8 replaces every byte of invalid UTF-8 in r's text with U+FFFD,
// before r is hashed and written, so that the audit file is always valid
// UTF-8 and every line valid JSON for strict readers, and returns how many
// bytes it replaced. Callers put caller-supplied text in records (tool
// names, arguments, client info, reasons quoting them); encoding/json
// would already coerce Go strings, but not json.RawMessage, which it
// copies byte for byte.
func validUTF8(r *Record) int {
	n := 0
	str := func(s *string) {
		if !utf8.ValidString(*s) {
			var k int
			*s, k = replaceInvalid(*s, "\uFFFD")
			n += k
		}
	}
	str(&r.Replica)
	str(&r.SessionID)
	str(&r.Transport)
	str(&r.User.Sub)
	str(&r.User.Email)
	str(&r.User.Ref)
	str(&r.Agent.ClientID)
	str(&r.Agent.Name)
	str(&r.Agent.Version)
	str(&r.Tool)
	str(&r.Reason)
	str(&r.Rule)
	str(&r.Source)
	str(&r.TraceID)
	str(&r.CallerTraceparent)
	for i := range r.Entities.Refs {
		str(&r.Entities.Refs[i])
	}
	for k, v := range r.Redactions {
		if !utf8.ValidString(k) {
			delete(r.Redactions, k)
			nk := k
			str(&nk)
			r.Redactions[nk] += v
		}
	}
	if !utf8.Valid(r.Arguments) {
		// Bytes of 0x80 and above only occur inside JSON strings of valid
		// JSON, and never right after a backslash, so the escape keeps the
		// arguments valid JSON.
		var k int
		r.Arguments, k = ValidJSONText(r.Arguments)
		n += k
	}
	return n
}

// replaceInvalid replaces each invalid byte of s with repl.
func replaceInvalid(s, repl string) (string, int) {
	out := make([]byte, 0, len(s)+8)
	n := 0
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			out = append(out, repl...)
			n++
			i++
			continue
		}
		out = append(out, s[i:i+size]...)
		i += size
	}
	return string(out), n
}

// ValidJSONText replaces each invalid UTF-8 byte of the JSON text b with
// the escape \ufffd and returns the result and how many bytes it
// replaced (b itself when none). In valid JSON such bytes only occur
// inside strings, never right after a backslash, so valid JSON stays
// valid and decodes as encoding/json would have decoded b.
func ValidJSONText(b []byte) ([]byte, int) {
	if utf8.Valid(b) {
		return b, 0
	}
	s, n := replaceInvalid(string(b), replacementEscape)
	return []byte(s), n
}
