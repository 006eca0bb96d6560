package tools

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Reference renders the tool reference in Markdown from the tool
// definitions themselves; docs/tools.md embeds it and a test keeps it fresh.
func Reference(ts []Tool) string {
	var b strings.Builder
	b.WriteString(ReferenceSummary(ts))
	for _, t := range ts {
		fmt.Fprintf(&b, "\n### `%s`\n\n%s\n\n", t.Tool.Name, t.Tool.Description)
		if t.Answer != "" {
			fmt.Fprintf(&b, "**The answer's text:** %s\n\n", t.Answer)
		}
		var s struct {
			Properties map[string]struct {
				Type        string   `json:"type"`
				Description string   `json:"description"`
				Enum        []string `json:"enum"`
				Default     any      `json:"default"`
				Items       *struct {
					Enum []string `json:"enum"`
				} `json:"items"`
			} `json:"properties"`
			Required []string `json:"required"`
		}
		_ = json.Unmarshal(t.Tool.RawInputSchema, &s)
		if len(s.Properties) == 0 {
			b.WriteString("No arguments.\n")
			continue
		}
		req := map[string]bool{}
		for _, r := range s.Required {
			req[r] = true
		}
		names := make([]string, 0, len(s.Properties))
		for n := range s.Properties {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString("| argument | type | description |\n|---|---|---|\n")
		for _, n := range names {
			p := s.Properties[n]
			typ := p.Type
			if typ == "array" {
				typ = "string[]"
			}
			if req[n] {
				typ += ", required"
			}
			d := p.Description
			enum := p.Enum
			if p.Items != nil && len(p.Items.Enum) > 0 {
				enum = p.Items.Enum
			}
			if len(enum) > 0 && !strings.Contains(d, enum[0]) {
				d += " One of: " + strings.Join(enum, ", ") + "."
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", n, typ, strings.ReplaceAll(d, "|", "\\|"))
		}
	}
	return b.String()
}

// firstSentence cuts a description after its first sentence.
func firstSentence(s string) string {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '.' && s[i+1] == ' ' && !strings.HasSuffix(s[:i], "e.g") && !strings.HasSuffix(s[:i], "i.e") {
			return s[:i+1]
		}
	}
	return s
}

// ReferenceSummary is the one-table overview of the tools (name, scope, first
// sentence of the description, what the answer's text holds) that heads
// Reference and the README.
func ReferenceSummary(ts []Tool) string {
	var b strings.Builder
	b.WriteString("| tool | scope | what it answers | what the answer's text holds |\n|---|---|---|---|\n")
	for _, t := range ts {
		desc := firstSentence(t.Tool.Description)
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", t.Tool.Name, t.Scope, desc, strings.ReplaceAll(t.Answer, "|", "\\|"))
	}
	return b.String()
}
