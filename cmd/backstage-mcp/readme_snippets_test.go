package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/connect"
)

// TestReadmeIDESnippets: every IDE configuration in the README's
// "Connecting clients" section has the shape its client reads (JSON that
// parses, with command and args), its command line is one this CLI takes
// (a real subcommand, flags it defines, a server URL connect accepts), and
// no snippet puts a Backstage token on a laptop without saying why.
func TestReadmeIDESnippets(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "\n## Connecting clients\n")
	if start < 0 {
		t.Fatal("README has no Connecting clients section")
	}
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	if !strings.Contains(section[:strings.Index(section, "```")], "`backstage-mcp connect`") {
		t.Error("the section does not lead with backstage-mcp connect")
	}

	var jsonSnippets, commandLines []string
	for _, m := range regexp.MustCompile("(?s)```(\\w+)\n(.*?)```").FindAllStringSubmatch(section, -1) {
		switch m[1] {
		case "json":
			jsonSnippets = append(jsonSnippets, m[2])
		case "sh":
			for _, l := range strings.Split(m[2], "\n") {
				if l, _, _ = strings.Cut(l, "#"); strings.TrimSpace(l) != "" {
					commandLines = append(commandLines, l)
				}
			}
		}
	}
	// Inline snippets: `{…}` configs and `claude mcp add … -- …` lines.
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(section, -1) {
		switch s := m[1]; {
		case strings.HasPrefix(s, "{"):
			jsonSnippets = append(jsonSnippets, s)
		case strings.HasPrefix(s, "claude mcp add"):
			commandLines = append(commandLines, s)
		}
	}
	if len(jsonSnippets) < 5 || len(commandLines) < 4 {
		t.Fatalf("found %d JSON snippets and %d command lines; the section lost its snippets?", len(jsonSnippets), len(commandLines))
	}

	connects := 0
	for _, js := range jsonSnippets {
		var doc map[string]map[string]struct {
			Type    string            `json:"type"`
			URL     string            `json:"url"`
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		}
		if err := json.Unmarshal([]byte(js), &doc); err != nil {
			t.Errorf("snippet does not parse: %v\n%s", err, js)
			continue
		}
		servers := doc["mcpServers"]
		if servers == nil {
			servers = doc["servers"] // VS Code
		}
		if len(servers) == 0 {
			t.Errorf("snippet names no servers (mcpServers or servers):\n%s", js)
		}
		for name, s := range servers {
			for k, v := range s.Env {
				if strings.Contains(strings.ToUpper(k), "TOKEN") && !strings.Contains(v, "reads the whole catalog") {
					t.Errorf("%s: env %s puts a token on the laptop without saying why", name, k)
				}
			}
			switch {
			case s.Command != "":
				if path.Base(s.Command) != "backstage-mcp" {
					t.Errorf("%s: command %q is not backstage-mcp", name, s.Command)
				}
				if _, isVSCode := doc["servers"]; isVSCode && s.Type != "stdio" {
					t.Errorf("%s: VS Code stdio server without \"type\": \"stdio\"", name)
				}
				checkArgs(t, name, s.Args)
				if len(s.Args) > 0 && s.Args[0] == "connect" {
					connects++
				}
			case s.URL != "":
				if _, err := connect.CheckServerURL(s.URL); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			default:
				t.Errorf("%s: neither command nor url", name)
			}
		}
	}
	for _, l := range commandLines {
		f := strings.Fields(l)
		switch {
		case len(f) > 2 && f[0] == "claude" && f[1] == "mcp" && f[2] == "add":
			i := indexOf(f, "--")
			if i < 0 {
				if indexOf(f, "--transport") < 0 {
					t.Errorf("claude mcp add without -- COMMAND or --transport: %s", l)
				}
				continue
			}
			if path.Base(f[i+1]) != "backstage-mcp" {
				t.Errorf("claude mcp add runs %q: %s", f[i+1], l)
			}
			checkArgs(t, l, f[i+2:])
			if f[i+2] == "connect" {
				connects++
			}
		case path.Base(f[0]) == "backstage-mcp":
			checkArgs(t, l, f[1:])
		default:
			t.Errorf("unknown command line in the section: %s", l)
		}
	}
	if connects < 3 {
		t.Errorf("%d IDE snippets use connect; want Claude Code, VS Code, Cursor/Claude Desktop", connects)
	}
	for _, ide := range []string{"Claude Code", "VS Code", "Cursor", "Claude Desktop"} {
		if !strings.Contains(section, ide) {
			t.Errorf("the section does not name %s", ide)
		}
	}
}

// checkArgs checks a backstage-mcp command line: a real subcommand whose
// help lists every flag given, and for connect a server URL it accepts.
func checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no subcommand", where)
		return
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		t.Errorf("%s: %q is not a backstage-mcp command", where, args[0])
		return
	}
	var help strings.Builder
	cmd.run(context.Background(), []string{"--help"}, strings.NewReader(""), &help, io.Discard)
	var positional []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			positional = append(positional, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		m := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(name) + `(?: (\S+))?\n`).FindStringSubmatch(help.String())
		if m == nil {
			t.Errorf("%s: %s %s has no flag --%s", where, "backstage-mcp", args[0], name)
			continue
		}
		boolFlag := m[1] == ""
		if !boolFlag && !hasValue {
			i++ // the flag's value
		}
	}
	if args[0] == "connect" {
		if len(positional) != 1 {
			t.Errorf("%s: connect takes one server URL, got %q", where, positional)
			return
		}
		if _, err := connect.CheckServerURL(positional[0]); err != nil {
			t.Errorf("%s: %v", where, err)
		}
		if indexOf(args, "--client-id") < 0 {
			t.Errorf("%s: connect without --client-id", where)
		}
	}
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}
