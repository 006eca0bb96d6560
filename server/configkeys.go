package server

import (
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
)

// The configuration's keys are read from the Go types by reflection (their
// yaml tags), so that the checker, the documentation test and the JSON
// Schema can never disagree with what the decoder accepts.

var (
	durationType = reflect.TypeFor[time.Duration]()
	// rateType is a value type: a rate is documented and described once,
	// as {requests, per, burst, unlimited}, wherever a key takes one.
	rateType = reflect.TypeFor[ratelimit.Rate]()
)

// configField is one key of a struct in the configuration.
type configField struct {
	Name  string       // the YAML key
	Type  reflect.Type // the Go type of its value
	Owner reflect.Type // the struct that declares the Go field (an inlined one for inlined fields)
	Go    string       // the Go field name
}

// docKey names the field in the generated documentation: "pkg.Type.Field".
func (f configField) docKey() string { return typeKey(f.Owner) + "." + f.Go }

// typeKey names a named type: "pkg.Type".
func typeKey(t reflect.Type) string {
	p := t.PkgPath()
	return p[strings.LastIndex(p, "/")+1:] + "." + t.Name()
}

// configFields lists the YAML keys of struct type t in declaration order,
// inlined structs included; fields tagged "-", unexported fields and
// fields of types no file can hold (functions, interfaces) are left out.
func configFields(t reflect.Type) []configField {
	var out []configField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			out = append(out, configFields(f.Type)...)
			continue
		}
		switch f.Type.Kind() {
		case reflect.Func, reflect.Interface, reflect.Chan:
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, configField{Name: name, Type: f.Type, Owner: t, Go: f.Name})
	}
	return out
}

// fieldByKey finds key among the fields of struct type t.
func fieldByKey(t reflect.Type, key string) (configField, bool) {
	for _, f := range configFields(t) {
		if f.Name == key {
			return f, true
		}
	}
	return configField{}, false
}

// ConfigKey is one key a configuration file may set, as the documentation
// lists it.
type ConfigKey struct {
	// Path is the key's path: dotted, "[]" for any item of a list,
	// "<name>" for any key of a map, e.g. auth.issuers[].url or
	// rateLimits.classes.<name>.
	Path string
	// Type is the value's kind in the documentation's words: string,
	// boolean, integer, number, duration, rate, list of strings, map of
	// rates.
	Type string
	// Values lists the values a string key accepts, when it is one of a
	// known set.
	Values []string
}

// ConfigKeys lists every key a configuration file may set, leaves only
// (a section such as server, or a list of objects such as auth.issuers,
// is not itself a key; its keys are), in declaration order. A rate
// ({requests, per, burst, unlimited}) is one key.
func ConfigKeys() []ConfigKey {
	var out []ConfigKey
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for _, f := range configFields(t) {
			p := prefix + f.Name
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != rateType:
				walk(f.Type, p+".")
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), p+"[].")
			case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct && f.Type.Elem() != rateType:
				walk(f.Type.Elem(), p+".<name>.")
			default:
				out = append(out, ConfigKey{Path: p, Type: typeWords(f.Type), Values: configEnums[f.docKey()]})
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// typeWords names a value type for people.
func typeWords(t reflect.Type) string {
	switch t {
	case durationType:
		return "duration"
	case rateType:
		return "rate"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list of " + plural(typeWords(t.Elem()))
	case reflect.Map:
		return "map of " + plural(typeWords(t.Elem()))
	case reflect.Struct:
		return "object"
	}
	return t.String()
}

func plural(s string) string {
	if strings.HasSuffix(s, "s") {
		return s
	}
	return s + "s"
}

// keyIndex maps each key name to the full paths where it is valid, for
// suggesting the right place of a key written at the wrong level.
var keyIndex = sync.OnceValue(func() map[string][]string {
	idx := map[string][]string{}
	var walk func(t reflect.Type, prefix string, depth int)
	walk = func(t reflect.Type, prefix string, depth int) {
		if depth > 6 {
			return
		}
		for _, f := range configFields(t) {
			p := prefix + f.Name
			lower := strings.ToLower(f.Name)
			idx[lower] = append(idx[lower], p)
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, p+".", depth+1)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), p+"[].", depth+1)
			case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), p+".<name>.", depth+1)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", 0)
	for _, ps := range idx {
		sort.Slice(ps, func(i, j int) bool {
			if a, b := strings.Count(ps[i], "."), strings.Count(ps[j], "."); a != b {
				return a < b
			}
			return ps[i] < ps[j]
		})
	}
	return idx
})
