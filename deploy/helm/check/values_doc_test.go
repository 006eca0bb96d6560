package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	readme     = "../../../docs/deploying.md"
	tableStart = "<!-- helm-values:start (generated from deploy/helm/backstage-mcp/values.yaml by make chart-docs) -->"
	tableEnd   = "<!-- helm-values:end -->"
)

var keyLine = regexp.MustCompile(`^(\s*)([A-Za-z][A-Za-z0-9]*):`)

type valueDoc struct{ key, def, desc string }

// valuesTable reads values.yaml: every key preceded by a "# --" comment
// (continued by further "#" lines) is one row, with its default.
func valuesTable(values []byte) ([]valueDoc, error) {
	var tree map[string]any
	if err := yaml.Unmarshal(values, &tree); err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	var (
		rows    []valueDoc
		stack   []string
		indents []int
		desc    []string
		inDesc  bool
	)
	sc := bufio.NewScanner(bytes.NewReader(values))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# -- "):
			desc, inDesc = []string{strings.TrimPrefix(trimmed, "# -- ")}, true
			continue
		case inDesc && strings.HasPrefix(trimmed, "# "):
			desc = append(desc, strings.TrimPrefix(trimmed, "# "))
			continue
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		indent := len(m[1])
		for len(indents) > 0 && indents[len(indents)-1] >= indent {
			indents, stack = indents[:len(indents)-1], stack[:len(stack)-1]
		}
		indents, stack = append(indents, indent), append(stack, m[2])
		if !inDesc {
			continue
		}
		path := strings.Join(stack, ".")
		def, err := lookup(tree, stack)
		if err != nil {
			return nil, fmt.Errorf("values.yaml: %s: %w", path, err)
		}
		rows = append(rows, valueDoc{key: path, def: def, desc: strings.Join(desc, " ")})
		desc, inDesc = nil, false
	}
	return rows, sc.Err()
}

func lookup(tree map[string]any, path []string) (string, error) {
	var cur any = tree
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", fmt.Errorf("not a map at %s", p)
		}
		cur = m[p]
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func renderTable(rows []valueDoc) string {
	var b strings.Builder
	b.WriteString("| Key | Default | Description |\n|---|---|---|\n")
	esc := strings.NewReplacer("|", `\|`)
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", r.key, esc.Replace(r.def), esc.Replace(r.desc))
	}
	return b.String()
}

func TestValuesTableParses(t *testing.T) {
	values := []byte(`# header comment, not a row
image:
  # -- Repository.
  repository: x
  # -- Tag; two lines
  # of description.
  tag: ""
# -- Replicas.
replicaCount: 1
undocumented: true
`)
	rows, err := valuesTable(values)
	if err != nil {
		t.Fatal(err)
	}
	want := []valueDoc{{"image.repository", `"x"`, "Repository."}, {"image.tag", `""`, "Tag; two lines of description."}, {"replicaCount", "1", "Replicas."}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("rows = %v, want %v", rows, want)
	}
}

// TestReadmeValuesTable fails when docs/deploying.md's values table differs from
// values.yaml; -update rewrites it.
func TestReadmeValuesTable(t *testing.T) {
	values, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := valuesTable(values)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 40 {
		t.Fatalf("only %d documented values; every value needs a # -- comment", len(rows))
	}
	table := renderTable(rows)
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(tableStart)), bytes.Index(doc, []byte(tableEnd))
	if i < 0 || j < i {
		t.Fatalf("docs/deploying.md lacks the markers %q … %q", tableStart, tableEnd)
	}
	got := string(doc[i+len(tableStart)+1 : j])
	if got == table {
		return
	}
	if !*update {
		t.Fatalf("docs/deploying.md's Helm values table is stale: run `make chart-docs`")
	}
	out := append(append(append([]byte{}, doc[:i+len(tableStart)+1]...), table...), doc[j:]...)
	if err := os.WriteFile(readme, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
