package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/audit/ship"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/state"
)

// Known string sets, shared by Validate and the JSON Schema.
var (
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"auto", "json", "text"}
	catalogModes  = []string{CatalogPassthrough, CatalogMirror}
	stateKinds    = []string{state.Memory, state.RedisStore}
	resolverNames = []string{
		identity.ResolverEmailMatchingUserEntityProfileEmail,
		identity.ResolverEmailLocalPartMatchingUserEntityName,
		identity.ResolverUsernameMatchingUserEntityName,
	}
)

// shipFormats are the formats of audit.format and of a sink's format.
var shipFormats = []string{string(ship.FormatNative), string(ship.FormatOCSF), string(ship.FormatECS)}

// configEnums are the values a string key accepts, by Go field
// ("pkg.Type.Field").
var configEnums = map[string][]string{
	"server.LogConfig.Level":       logLevels,
	"server.LogConfig.Format":      logFormats,
	"server.CatalogConfig.Mode":    catalogModes,
	"server.Config.State":          stateKinds,
	"identity.ResolverConfig.Name": resolverNames,
	"audit.Config.Sink":            {string(audit.SinkFile), string(audit.SinkStdout)},
	"audit.Config.Sync":            {string(audit.SyncEvery), string(audit.SyncInterval), string(audit.SyncNone)},
	"server.AuditConfig.Format":    shipFormats,
	"ship.SinkConfig.Format":       shipFormats,
	"ship.SinkConfig.Type":         {string(ship.SinkStdout), string(ship.SinkSyslog), string(ship.SinkOTLP), string(ship.SinkHEC)},
}

// Patterns of the JSON Schema. envRefPattern matches a value that is
// (or holds) a ${VAR} reference, substituted when the file is read.
const (
	envRefPattern   = `\$\{[A-Za-z_][A-Za-z0-9_]*\}`
	durationPattern = `^([-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)|.*` + envRefPattern + `.*)$`
)

// ConfigJSONSchema returns the JSON Schema (draft 2020-12) of the
// configuration file, made from the Go types: every key with its type and
// description (from the Go doc comments), the known values of string keys,
// durations as strings with a pattern, and no other keys
// (additionalProperties false). ${VAR} references are accepted wherever
// the server substitutes them. The schema has no $ref and no $defs, so it
// can be embedded as is (without its "$schema") under a key of another
// schema, such as the Helm chart's config value.
func ConfigJSONSchema() ([]byte, error) {
	root := objectSchema(reflect.TypeFor[Config]())
	doc := append(jsonObject{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"title", "backstage-mcp configuration"},
		{"description", "The backstage-mcp server configuration: one YAML file (serve --config FILE; check it with backstage-mcp config check FILE). " +
			"Every string value may use ${ENV_VAR} substitution as in Backstage's app-config ($${…} for a literal ${…}). Reference: docs/configuration.md."},
	}, root...)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("config: schema: %w", err)
	}
	return b.Bytes(), nil
}

// jsonObject is a JSON object that keeps its keys in order.
type jsonObject []jsonMember

type jsonMember struct {
	Key   string
	Value any
}

// MarshalJSON writes the members in order, without HTML escaping.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, v := range []any{m.Key, m.Value} {
			if j == 1 {
				b.WriteByte(':')
			}
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(v); err != nil {
				return nil, err
			}
			b.Truncate(b.Len() - 1) // Encode's newline
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// objectSchema describes a struct type.
func objectSchema(t reflect.Type) jsonObject {
	var props jsonObject
	for _, f := range configFields(t) {
		s := valueSchema(f.Type, configEnums[f.docKey()])
		if d := configDocs[f.docKey()]; d != "" {
			s = append(jsonObject{{"description", d}}, s...)
		}
		props = append(props, jsonMember{f.Name, s})
	}
	return jsonObject{
		{"type", "object"},
		{"properties", props},
		{"additionalProperties", false},
	}
}

// valueSchema describes a value of type t; enum lists the values of a
// string key, if known.
func valueSchema(t reflect.Type, enum []string) jsonObject {
	switch {
	case t == durationType:
		return jsonObject{{"type", "string"}, {"pattern", durationPattern}}
	case t.Kind() == reflect.String && len(enum) > 0:
		return jsonObject{{"type", "string"}, {"anyOf", []jsonObject{
			{{"enum", enum}},
			{{"pattern", envRefPattern}},
		}}}
	}
	// A number or boolean may also come from a ${VAR}.
	scalar := func(typ string) jsonObject {
		return jsonObject{{"type", []string{typ, "string"}}, {"pattern", envRefPattern}}
	}
	switch t.Kind() {
	case reflect.String:
		return jsonObject{{"type", "string"}}
	case reflect.Bool:
		return scalar("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar("integer")
	case reflect.Float32, reflect.Float64:
		return scalar("number")
	case reflect.Slice:
		return jsonObject{{"type", "array"}, {"items", valueSchema(t.Elem(), nil)}}
	case reflect.Map:
		return jsonObject{{"type", "object"}, {"additionalProperties", valueSchema(t.Elem(), nil)}}
	case reflect.Struct:
		return objectSchema(t)
	}
	panic("config: no schema for " + t.String())
}
