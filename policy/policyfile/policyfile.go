// Package policyfile loads a backstage-mcp policy from YAML and reports
// problems with file, line and column, so admins can fix them in their
// editor:
//
//	policy.yaml:12:7: roles[1].entities.allow[0]: unknown rule "IS_OWNER" (expected one of HAS_ANNOTATION, …)
//
// Decoding is strict: unknown keys, duplicate keys, YAML aliases, several
// documents in one file and non-string scalars where strings are expected
// are all errors. Semantic validation is policy.Lint's; this package only
// maps its field paths back to positions.
package policyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"go.yaml.in/yaml/v3"
)

// MaxSize bounds the size of a policy file.
const MaxSize = 1 << 20

// Diagnostic is one problem found in a policy file.
type Diagnostic struct {
	File     string
	Line     int // 1-based; 0 when unknown
	Col      int // 1-based; 0 when unknown
	Severity policy.Severity
	Path     string // field path, e.g. roles[1].entities.allow[0]
	Message  string
}

// String renders "file:line:col: [warning: ]path: message".
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", d.Line, d.Col)
	}
	b.WriteString(": ")
	if d.Severity == policy.SeverityWarning {
		b.WriteString("warning: ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Error is returned by Parse when the file has errors; Diagnostics lists
// them (errors only), in file order.
type Error struct {
	Diagnostics []Diagnostic
}

// Error renders the diagnostics, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		lines[i] = "policyfile: " + d.String()
	}
	return strings.Join(lines, "\n")
}

// Parse decodes and compiles a policy file. filename is used in messages
// only. On failure the error is a *Error.
func Parse(data []byte, filename string) (*policy.Policy, policy.Document, error) {
	doc, d := decode(data, filename)
	if errs := onlyErrors(d.diags); len(errs) > 0 {
		return nil, doc, &Error{Diagnostics: errs}
	}
	p, err := policy.Compile(doc)
	if err != nil {
		var ve *policy.ValidationError
		if errors.As(err, &ve) {
			return nil, doc, &Error{Diagnostics: d.fromProblems(ve.Problems)}
		}
		return nil, doc, fmt.Errorf("policyfile: %w", err)
	}
	return p, doc, nil
}

// Check returns every error and warning for a policy file, in file order.
// The file is valid when no diagnostic has SeverityError.
func Check(data []byte, filename string) []Diagnostic {
	doc, d := decode(data, filename)
	out := d.diags
	if len(onlyErrors(out)) == 0 {
		out = append(out, d.fromProblems(policy.Lint(doc))...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Col < out[j].Col
	})
	return out
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(ds []Diagnostic) bool { return len(onlyErrors(ds)) > 0 }

func onlyErrors(ds []Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range ds {
		if d.Severity == policy.SeverityError {
			out = append(out, d)
		}
	}
	return out
}

type position struct{ line, col int }

type decoder struct {
	file  string
	pos   map[string]position
	diags []Diagnostic
}

func (d *decoder) mark(path string, n *yaml.Node) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = position{n.Line, n.Column}
	}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	d.diags = append(d.diags, Diagnostic{File: d.file, Line: line, Col: col, Severity: policy.SeverityError, Path: path, Message: fmt.Sprintf(format, args...)})
}

// lookup finds the position of a field path, or of its nearest recorded
// ancestor.
func (d *decoder) lookup(path string) position {
	for p := path; p != ""; {
		if pos, ok := d.pos[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	if pos, ok := d.pos[""]; ok {
		return pos
	}
	return position{1, 1}
}

func (d *decoder) fromProblems(ps []policy.Problem) []Diagnostic {
	out := make([]Diagnostic, 0, len(ps))
	for _, p := range ps {
		pos := d.lookup(p.Path)
		out = append(out, Diagnostic{File: d.file, Line: pos.line, Col: pos.col, Severity: p.Severity, Path: p.Path, Message: p.Message})
	}
	return out
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func decode(data []byte, filename string) (policy.Document, *decoder) {
	d := &decoder{file: filename, pos: map[string]position{}}
	var doc policy.Document
	if len(data) > MaxSize {
		d.errorf(nil, "", "file larger than %d bytes", MaxSize)
		return doc, d
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorf(&yaml.Node{Line: 1, Column: 1}, "", "empty policy file")
			return doc, d
		}
		line, msg := 0, strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimPrefix(msg, m[0]+": ")
		}
		d.diags = append(d.diags, Diagnostic{File: filename, Line: line, Col: 1, Message: msg})
		return doc, d
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "", "more than one YAML document in the file")
		return doc, d
	} else if !errors.Is(err, io.EOF) {
		d.errorf(&extra, "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return doc, d
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		d.errorf(&root, "", "empty policy file")
		return doc, d
	}
	if !d.noAliases(root.Content[0], 0) {
		return doc, d
	}
	top := root.Content[0]
	d.mark("", top)
	d.mapping(top, "", map[string]func(k, v *yaml.Node){
		"version": func(k, v *yaml.Node) {
			d.mark("version", v)
			if v.Kind != yaml.ScalarNode || v.Tag != "!!int" {
				d.errorf(v, "version", "expected an integer (1)")
				return
			}
			n, err := strconv.Atoi(v.Value)
			if err != nil {
				d.errorf(v, "version", "expected an integer (1)")
				return
			}
			doc.Version = n
		},
		"scopes": func(k, v *yaml.Node) {
			d.mark("scopes", k)
			doc.Scopes = map[string][]string{}
			d.mapping(v, "scopes", nil, func(k2, v2 *yaml.Node) {
				p := "scopes." + k2.Value
				d.mark(p, k2)
				doc.Scopes[k2.Value] = d.strList(v2, p)
			})
		},
		"toolScopes": func(k, v *yaml.Node) {
			d.mark("toolScopes", k)
			doc.ToolScopes = map[string]string{}
			d.mapping(v, "toolScopes", nil, func(k2, v2 *yaml.Node) {
				p := "toolScopes." + k2.Value
				d.mark(p, k2)
				doc.ToolScopes[k2.Value] = d.str(v2, p)
			})
		},
		"roles": func(k, v *yaml.Node) {
			d.mark("roles", k)
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, "roles", "expected a list of roles")
				return
			}
			for i, rn := range v.Content {
				doc.Roles = append(doc.Roles, d.role(rn, fmt.Sprintf("roles[%d]", i)))
			}
		},
	}, nil)
	return doc, d
}

// noAliases rejects anchors and aliases (no billion-laughs expansion, and
// every value has one position) and bounds nesting.
func (d *decoder) noAliases(n *yaml.Node, depth int) bool {
	if depth > 100 {
		d.errorf(n, "", "nesting deeper than 100 levels")
		return false
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.errorf(n, "", "YAML anchors and aliases are not allowed in a policy file")
		return false
	}
	for _, c := range n.Content {
		if !d.noAliases(c, depth+1) {
			return false
		}
	}
	return true
}

// mapping walks a mapping node. Known keys go to fields; with fields nil,
// every key goes to each. Unknown and duplicate keys are errors.
func (d *decoder) mapping(n *yaml.Node, path string, fields map[string]func(k, v *yaml.Node), each func(k, v *yaml.Node)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := joinPath(path, k.Value)
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			d.errorf(k, path, "keys must be strings")
			continue
		}
		if seen[k.Value] {
			d.errorf(k, kp, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		if fields == nil {
			each(k, v)
			continue
		}
		f, ok := fields[k.Value]
		if !ok {
			d.errorf(k, path, "unknown key %q (expected one of %s)", k.Value, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			continue
		}
		f(k, v)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) str(n *yaml.Node, path string) string {
	d.mark(path, n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		if n.Kind == yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s (quote it: %q)", strings.TrimPrefix(n.Tag, "!!"), n.Value)
		} else {
			d.errorf(n, path, "expected a string")
		}
		return ""
	}
	return n.Value
}

func (d *decoder) boolean(n *yaml.Node, path string) bool {
	d.mark(path, n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, path, "expected true or false")
		return false
	}
	return n.Value == "true"
}

// strList decodes a list of strings; the result is non-nil when the node
// is a sequence, even an empty one.
func (d *decoder) strList(n *yaml.Node, path string) []string {
	d.mark(path, n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, d.str(c, fmt.Sprintf("%s[%d]", path, i)))
	}
	return out
}

func (d *decoder) role(n *yaml.Node, path string) policy.Role {
	var r policy.Role
	d.mark(path, n)
	d.mapping(n, path, map[string]func(k, v *yaml.Node){
		"name": func(k, v *yaml.Node) { r.Name = d.str(v, path+".name") },
		"bind": func(k, v *yaml.Node) { d.mark(path+".bind", k); r.Bind = d.binding(v, path+".bind") },
		"tools": func(k, v *yaml.Node) {
			d.mark(path+".tools", k)
			r.Tools = d.strList(v, path+".tools")
		},
		"entities": func(k, v *yaml.Node) {
			d.mark(path+".entities", k)
			ep := path + ".entities"
			d.mapping(v, ep, map[string]func(k, v *yaml.Node){
				"allow": func(k, v *yaml.Node) { d.mark(ep+".allow", k); r.Entities.Allow = d.conditions(v, ep+".allow", 0) },
				"deny":  func(k, v *yaml.Node) { d.mark(ep+".deny", k); r.Entities.Deny = d.conditions(v, ep+".deny", 0) },
			}, nil)
		},
		"fieldMasks": func(k, v *yaml.Node) {
			mp := path + ".fieldMasks"
			d.mark(mp, k)
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, mp, "expected a list of field masks")
				return
			}
			for i, mn := range v.Content {
				p := fmt.Sprintf("%s[%d]", mp, i)
				d.mark(p, mn)
				var m policy.FieldMask
				d.mapping(mn, p, map[string]func(k, v *yaml.Node){
					"kinds":  func(k, v *yaml.Node) { m.Kinds = d.strList(v, p+".kinds") },
					"fields": func(k, v *yaml.Node) { m.Fields = d.strList(v, p+".fields") },
				}, nil)
				r.FieldMasks = append(r.FieldMasks, m)
			}
		},
		"rateClass": func(k, v *yaml.Node) { r.RateClass = d.str(v, path+".rateClass") },
	}, nil)
	return r
}

func (d *decoder) binding(n *yaml.Node, path string) policy.Binding {
	var b policy.Binding
	d.mark(path, n)
	d.mapping(n, path, map[string]func(k, v *yaml.Node){
		"anonymous":       func(k, v *yaml.Node) { b.Anonymous = d.boolean(v, path+".anonymous") },
		"authenticated":   func(k, v *yaml.Node) { b.Authenticated = d.boolean(v, path+".authenticated") },
		"idpGroups":       func(k, v *yaml.Node) { b.IdPGroups = d.strList(v, path+".idpGroups") },
		"backstageGroups": func(k, v *yaml.Node) { b.BackstageGroups = d.strList(v, path+".backstageGroups") },
		"users":           func(k, v *yaml.Node) { b.Users = d.strList(v, path+".users") },
		"agents":          func(k, v *yaml.Node) { b.Agents = d.strList(v, path+".agents") },
		"claims": func(k, v *yaml.Node) {
			d.mark(path+".claims", k)
			b.Claims = map[string][]string{}
			d.mapping(v, path+".claims", nil, func(k2, v2 *yaml.Node) {
				p := path + ".claims." + k2.Value
				d.mark(p, k2)
				b.Claims[k2.Value] = d.strList(v2, p)
			})
		},
	}, nil)
	return b
}

func (d *decoder) conditions(n *yaml.Node, path string, depth int) []policy.Condition {
	d.mark(path, n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list of conditions")
		return nil
	}
	out := make([]policy.Condition, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, d.condition(c, fmt.Sprintf("%s[%d]", path, i), depth))
	}
	return out
}

func (d *decoder) condition(n *yaml.Node, path string, depth int) policy.Condition {
	var c policy.Condition
	d.mark(path, n)
	if depth > 32 {
		d.errorf(n, path, "conditions nested too deeply")
		return c
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		if n.Kind == yaml.MappingNode {
			var keys []string
			for i := 0; i < len(n.Content); i += 2 {
				keys = append(keys, n.Content[i].Value)
			}
			d.errorf(n, path, "a condition has exactly one key (allOf, anyOf, not or a rule such as IS_ENTITY_KIND), got %d: %s", len(keys), strings.Join(keys, ", "))
		} else {
			d.errorf(n, path, "expected a condition such as { IS_ENTITY_KIND: { kinds: [component] } }")
		}
		return c
	}
	k, v := n.Content[0], n.Content[1]
	if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
		d.errorf(k, path, "keys must be strings")
		return c
	}
	switch k.Value {
	case "allOf":
		c.AllOf = d.conditions(v, path+".allOf", depth+1)
		if c.AllOf == nil {
			c.AllOf = []policy.Condition{}
		}
	case "anyOf":
		c.AnyOf = d.conditions(v, path+".anyOf", depth+1)
		if c.AnyOf == nil {
			c.AnyOf = []policy.Condition{}
		}
	case "not":
		sub := d.condition(v, path+".not", depth+1)
		c.Not = &sub
	default:
		c.Rule = k.Value
		rp := path + "." + k.Value
		d.mark(rp, k)
		c.Params = map[string]any{}
		d.mapping(v, rp, nil, func(pk, pv *yaml.Node) {
			pp := rp + "." + pk.Value
			d.mark(pp, pk)
			if pv.Kind == yaml.SequenceNode {
				c.Params[pk.Value] = d.strList(pv, pp)
			} else {
				c.Params[pk.Value] = d.str(pv, pp)
			}
		})
	}
	return c
}
