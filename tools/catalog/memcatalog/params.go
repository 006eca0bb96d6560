package memcatalog

import (
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// paramKind is how Backstage's OpenAPI spec types a query parameter.
type paramKind int

const (
	paramArray   paramKind = iota // repeatable string
	paramString                   // single string
	paramInteger                  // single integer >= 0
	paramTotal                    // single string: include | exclude
)

type paramSpec struct {
	name string
	kind paramKind
}

// queryParams is a parsed query string that remembers key order.
type queryParams struct {
	values url.Values
	order  []string
}

func parseQuery(raw string) queryParams {
	qp := queryParams{values: url.Values{}}
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			key = k
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			val = v
		}
		if _, ok := qp.values[key]; !ok {
			qp.order = append(qp.order, key)
		}
		qp.values[key] = append(qp.values[key], val)
	}
	return qp
}

// check validates the query the way Backstage's OpenAPI request validator
// does, in the order it reports problems.
func (qp queryParams) check(specs []paramSpec, required ...string) error {
	known := map[string]bool{}
	for _, s := range specs {
		known[s.name] = true
	}
	for _, k := range qp.order {
		if !known[k] {
			return inputError("Unknown query parameter '%s'", k)
		}
	}
	for _, k := range qp.order {
		for _, v := range qp.values[k] {
			if v == "" {
				return inputError("Empty value found for query parameter '%s'", k)
			}
		}
	}
	for _, r := range required {
		if _, ok := qp.values[r]; !ok {
			return inputError("request/query must have required property '%s'", r)
		}
	}
	for _, s := range specs {
		vs, ok := qp.values[s.name]
		if !ok {
			continue
		}
		switch s.kind {
		case paramInteger:
			if len(vs) != 1 {
				return inputError("request/query/%s must be integer", s.name)
			}
			n, ok := jsInteger(vs[0])
			if !ok {
				return inputError("request/query/%s must be integer", s.name)
			}
			if n < 0 {
				return inputError("request/query/%s must be >= 0", s.name)
			}
		case paramString:
			if len(vs) != 1 {
				return inputError("request/query/%s must be string", s.name)
			}
		case paramTotal:
			if len(vs) != 1 {
				return inputError("request/query/%s must be string", s.name)
			}
			if vs[0] != "include" && vs[0] != "exclude" {
				return inputError("request/query/%s must be equal to one of the allowed values: include, exclude", s.name)
			}
		}
	}
	return nil
}

// integer returns the coerced value of an integer parameter already checked.
func (qp queryParams) integer(name string) (int, bool) {
	vs := qp.values[name]
	if len(vs) != 1 {
		return 0, false
	}
	n, ok := jsInteger(vs[0])
	if !ok {
		return 0, false
	}
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	return int(n), true
}

func (qp queryParams) first(name string) (string, bool) {
	vs := qp.values[name]
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

var reDecimal = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

// jsInteger converts like JavaScript's Number(s) and reports whether the
// result is an integer.
func jsInteger(s string) (float64, bool) {
	s = jsTrim(s)
	if s == "" {
		return 0, true
	}
	var f float64
	if len(s) > 2 && s[0] == '0' && strings.ContainsRune("xXoObB", rune(s[1])) {
		base := map[byte]int{'x': 16, 'X': 16, 'o': 8, 'O': 8, 'b': 2, 'B': 2}[s[1]]
		u, err := strconv.ParseUint(s[2:], base, 64)
		if err != nil {
			return 0, false
		}
		f = float64(u)
	} else {
		if !reDecimal.MatchString(s) {
			return 0, false
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		f = v
	}
	if math.IsInf(f, 0) || math.IsNaN(f) || f != math.Trunc(f) {
		return 0, false
	}
	return f, true
}
