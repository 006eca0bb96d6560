package demo

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// namePattern and the 63-character limit are Backstage's rules for
// metadata.name and metadata.namespace.
var namePattern = regexp.MustCompile(`^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$`)

// tagPattern is Backstage's rule for metadata.tags.
var tagPattern = regexp.MustCompile(`^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$`)

// str reads a string at a dotted path.
func str(e map[string]any, p string) string {
	var cur any = e
	for _, k := range strings.Split(p, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[k]
	}
	s, _ := cur.(string)
	return s
}

// list reads a list of strings at spec.<key>.
func list(t *testing.T, e map[string]any, key string) []string {
	t.Helper()
	spec, _ := e["spec"].(map[string]any)
	raw, ok := spec[key]
	if !ok {
		return nil
	}
	items, ok := raw.([]any)
	if !ok {
		t.Fatalf("%s: spec.%s is %T, want a list", ref(e), key, raw)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			t.Fatalf("%s: spec.%s has a %T item", ref(e), key, it)
		}
		out = append(out, s)
	}
	return out
}

func namespace(e map[string]any) string {
	if ns := str(e, "metadata.namespace"); ns != "" {
		return ns
	}
	return "default"
}

func ref(e map[string]any) string {
	return strings.ToLower(str(e, "kind") + ":" + namespace(e) + "/" + str(e, "metadata.name"))
}

// resolve completes a shorthand entity ref the way Backstage does: the kind
// defaults to defaultKind (which must then be non-empty) and the namespace to
// the referring entity's.
func resolve(s, defaultKind, defaultNS string) (string, error) {
	kind, rest := defaultKind, s
	if i := strings.Index(s, ":"); i >= 0 {
		kind, rest = s[:i], s[i+1:]
	}
	if kind == "" {
		return "", fmt.Errorf("ref %q needs a kind", s)
	}
	ns, name := defaultNS, rest
	if i := strings.Index(rest, "/"); i >= 0 {
		ns, name = rest[:i], rest[i+1:]
	}
	return strings.ToLower(kind + ":" + ns + "/" + name), nil
}

func TestEntitiesShape(t *testing.T) {
	entities, err := Entities()
	if err != nil {
		t.Fatalf("Entities: %v", err)
	}
	if len(entities) < 60 {
		t.Fatalf("got %d entities, want at least 60", len(entities))
	}
	seen := map[string]bool{}
	for i, e := range entities {
		for _, p := range []string{"apiVersion", "kind", "metadata.name"} {
			if str(e, p) == "" {
				t.Errorf("entity %d (%s): missing %s", i, ref(e), p)
			}
		}
		r := ref(e)
		if seen[r] {
			t.Errorf("duplicate entity %s", r)
		}
		seen[r] = true
		if i > 0 && ref(entities[i-1]) >= r {
			t.Errorf("not sorted: %s before %s", ref(entities[i-1]), r)
		}
		for _, n := range []string{str(e, "metadata.name"), namespace(e)} {
			if len(n) > 63 || !namePattern.MatchString(n) {
				t.Errorf("%s: invalid name or namespace %q", r, n)
			}
		}
		md, _ := e["metadata"].(map[string]any)
		tags, _ := md["tags"].([]any)
		for _, tag := range tags {
			s, _ := tag.(string)
			if len(s) > 63 || !tagPattern.MatchString(s) {
				t.Errorf("%s: invalid tag %v", r, tag)
			}
		}
		if _, err := json.Marshal(e); err != nil {
			t.Errorf("%s: json.Marshal: %v", r, err)
		}
	}
}

func TestEntitiesRequiredSpecFields(t *testing.T) {
	required := map[string][]string{
		"Component": {"type", "lifecycle", "owner"},
		"API":       {"type", "lifecycle", "owner", "definition"},
		"System":    {"owner"},
		"Domain":    {"owner"},
		"Resource":  {"type", "owner"},
		"Group":     {"type"},
	}
	entities, err := Entities()
	if err != nil {
		t.Fatalf("Entities: %v", err)
	}
	counts := map[string]int{}
	for _, e := range entities {
		kind := str(e, "kind")
		counts[kind]++
		for _, f := range required[kind] {
			if str(e, "spec."+f) == "" {
				t.Errorf("%s: missing spec.%s", ref(e), f)
			}
		}
		if kind == "Group" {
			spec, _ := e["spec"].(map[string]any)
			if _, ok := spec["children"].([]any); !ok {
				t.Errorf("%s: spec.children must be a list", ref(e))
			}
		}
	}
	minimum := map[string]int{
		"Domain": 3, "System": 6, "Component": 15, "API": 8,
		"Resource": 6, "Group": 5, "User": 12,
	}
	for kind, want := range minimum {
		if counts[kind] < want {
			t.Errorf("%d %s entities, want at least %d", counts[kind], kind, want)
		}
	}
}

func TestEntitiesReferencesResolve(t *testing.T) {
	entities, err := Entities()
	if err != nil {
		t.Fatalf("Entities: %v", err)
	}
	exists := map[string]bool{}
	for _, e := range entities {
		exists[ref(e)] = true
	}
	single := []struct{ field, kind string }{
		{"owner", "group"},
		{"system", "system"},
		{"domain", "domain"},
		{"parent", "group"},
		{"subcomponentOf", "component"},
	}
	lists := []struct{ field, kind string }{
		{"memberOf", "group"},
		{"children", "group"},
		{"providesApis", "api"},
		{"consumesApis", "api"},
		{"dependsOn", ""},
		{"dependencyOf", ""},
	}
	checked := 0
	check := func(e map[string]any, field, target, kind string) {
		t.Helper()
		r, err := resolve(target, kind, namespace(e))
		if err != nil {
			t.Errorf("%s: spec.%s: %v", ref(e), field, err)
			return
		}
		checked++
		if !exists[r] {
			t.Errorf("%s: spec.%s points at %s, which is not in the catalog", ref(e), field, r)
		}
	}
	for _, e := range entities {
		for _, f := range single {
			if target := str(e, "spec."+f.field); target != "" {
				check(e, f.field, target, f.kind)
			}
		}
		for _, f := range lists {
			for _, target := range list(t, e, f.field) {
				check(e, f.field, target, f.kind)
			}
		}
	}
	if checked < 100 {
		t.Errorf("checked only %d references; the catalog should be well connected", checked)
	}
}

func TestFiles(t *testing.T) {
	names, err := fs.Glob(Files(), "*.yaml")
	if err != nil {
		t.Fatalf("Glob: %v", err)
	}
	want := map[string]bool{"org.yaml": true, "systems.yaml": true, "components.yaml": true, "apis.yaml": true, "resources.yaml": true}
	for _, n := range names {
		delete(want, n)
	}
	if len(want) > 0 {
		t.Errorf("missing catalog files: %v (have %v)", want, names)
	}
}

func TestParseDocumentsErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{name: "two documents and an empty one", in: "a: 1\n---\nb: [x]\n---\n", want: 2},
		{name: "scalar document", in: "just text\n", wantErr: true},
		{name: "non-string key", in: "{1: x}\n", wantErr: true},
		{name: "broken yaml", in: "a: [\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDocuments("test.yaml", []byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if len(got) != tc.want {
				t.Errorf("got %d documents, want %d", len(got), tc.want)
			}
			for _, d := range got {
				if _, err := json.Marshal(d); err != nil {
					t.Errorf("json.Marshal: %v", err)
				}
			}
		})
	}
}
