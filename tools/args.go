package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

type paramType int

const (
	tString paramType = iota
	tInt
	tStrings
)

// param describes one tool argument. The same description produces the
// JSON Schema the client sees and drives the strict decoder, so the two
// cannot drift apart.
type param struct {
	name     string
	typ      paramType
	desc     string
	enum     []string
	min, max int // for tInt; max items for tStrings
	maxLen   int // per string
	def      any
}

const defaultMaxLen = 256

// schema renders the params as a JSON Schema object that rejects unknown
// keys. The model reads it with every tools/list, so it says what a
// caller chooses (types, enums, defaults, numeric ranges) and leaves out
// the size guards (string lengths, list lengths), which decodeArgs
// enforces and names in its errors; a parameter without a description is
// described by its tool's.
func schema(params []param, required ...string) json.RawMessage {
	props := map[string]any{}
	for _, p := range params {
		s := map[string]any{}
		if p.desc != "" {
			s["description"] = p.desc
		}
		switch p.typ {
		case tString:
			s["type"] = "string"
			if len(p.enum) > 0 {
				s["enum"] = p.enum
			}
		case tInt:
			s["type"] = "integer"
			s["minimum"] = p.min
			s["maximum"] = p.max
		case tStrings:
			item := map[string]any{"type": "string"}
			if len(p.enum) > 0 {
				item["enum"] = p.enum
			}
			s["type"] = "array"
			s["items"] = item
		}
		if p.def != nil {
			s["default"] = p.def
		}
		props[p.name] = s
	}
	doc := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		doc["required"] = required
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("tools: schema: %v", err)) // static data; cannot fail
	}
	return b
}

// argError is a bad-argument error whose text is safe to show the caller.
type argError struct{ msg string }

func (e *argError) Error() string { return e.msg }

func badArg(format string, a ...any) error { return &argError{fmt.Sprintf(format, a...)} }

// args holds validated arguments.
type args map[string]any

func (a args) str(name string) string {
	s, _ := a[name].(string)
	return s
}

func (a args) num(name string, def int) int {
	if n, ok := a[name].(int); ok {
		return n
	}
	return def
}

func (a args) list(name string) []string {
	l, _ := a[name].([]string)
	return l
}

func (a args) has(name string) bool { _, ok := a[name]; return ok }

// decodeArgs strictly decodes a tool's JSON arguments: the top level must
// be an object; keys must match a declared parameter exactly (case
// included) and appear once; values must have the declared type and
// bounds. Errors name the argument and say what is expected.
func decodeArgs(raw json.RawMessage, params []param) (args, error) {
	out := args{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return out, nil
	}
	if len(raw) > 64<<10 {
		return nil, badArg("arguments larger than 64 KiB")
	}
	byName := make(map[string]*param, len(params))
	for i := range params {
		byName[params[i].name] = &params[i]
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, badArg("arguments must be a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, badArg("arguments are not valid JSON")
		}
		key, _ := kt.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, badArg("arguments are not valid JSON")
		}
		if seen[key] {
			return nil, badArg("argument %q appears more than once", key)
		}
		seen[key] = true
		p, ok := byName[key]
		if !ok {
			return nil, badArg("unknown argument %q; expected one of: %s", key, names(params))
		}
		if bytes.Equal(val, []byte("null")) {
			continue
		}
		v, err := p.decode(val)
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, badArg("arguments are not valid JSON")
	}
	if dec.More() {
		return nil, badArg("arguments must be a single JSON object")
	}
	return out, nil
}

func names(params []param) string {
	n := make([]string, len(params))
	for i, p := range params {
		n[i] = p.name
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func (p *param) decode(val json.RawMessage) (any, error) {
	switch p.typ {
	case tString:
		var s string
		if err := json.Unmarshal(val, &s); err != nil {
			return nil, badArg("argument %q must be a string", p.name)
		}
		return p.checkString(s)
	case tInt:
		var n json.Number
		if len(val) == 0 || val[0] == '"' || json.Unmarshal(val, &n) != nil {
			return nil, badArg("argument %q must be an integer from %d to %d", p.name, p.min, p.max)
		}
		i, err := n.Int64()
		if err != nil || i < int64(p.min) || i > int64(p.max) {
			return nil, badArg("argument %q must be an integer from %d to %d", p.name, p.min, p.max)
		}
		return int(i), nil
	case tStrings:
		var l []json.RawMessage
		if err := json.Unmarshal(val, &l); err != nil {
			return nil, badArg("argument %q must be an array of strings", p.name)
		}
		if p.max > 0 && len(l) > p.max {
			return nil, badArg("argument %q takes at most %d items", p.name, p.max)
		}
		out := make([]string, 0, len(l))
		for _, it := range l {
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, badArg("argument %q must be an array of strings", p.name)
			}
			v, err := p.checkString(s)
			if err != nil {
				return nil, err
			}
			out = append(out, v.(string))
		}
		return out, nil
	}
	return nil, errors.New("tools: unknown parameter type")
}

func (p *param) checkString(s string) (any, error) {
	maxLen := p.maxLen
	if maxLen == 0 {
		maxLen = defaultMaxLen
	}
	if !utf8.ValidString(s) {
		return nil, badArg("argument %q is not valid UTF-8", p.name)
	}
	if len(s) > maxLen {
		return nil, badArg("argument %q is longer than %d bytes", p.name, maxLen)
	}
	if len(p.enum) > 0 {
		for _, e := range p.enum {
			if s == e {
				return s, nil
			}
		}
		return nil, badArg("argument %q must be one of: %s (got %q)", p.name, strings.Join(p.enum, ", "), s)
	}
	return s, nil
}
