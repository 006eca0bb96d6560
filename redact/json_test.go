package redact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestJSONKeyContext(t *testing.T) {
	r := newRedactor(t)
	tests := []struct{ name, in, want string }{
		{"secret-named key", `{"password":"Zq7xP9mK2vL8"}`, `{"password":"[REDACTED:generic-secret]"}`},
		{"annotation key", `{"annotations":{"acme.io/webhook-secret":"Zq7xP9mK2vL8abc"}}`, `{"annotations":{"acme.io/webhook-secret":"[REDACTED:generic-secret]"}}`},
		{"env name/value pair", `{"env":[{"name":"DB_PASSWORD","value":"Zq7xP9mK2vL8"},{"name":"LOG","value":"Zq7xP9mK2vL8"}]}`, `{"env":[{"name":"DB_PASSWORD","value":"[REDACTED:generic-secret]"},{"name":"LOG","value":"Zq7xP9mK2vL8"}]}`},
		{"same value, harmless key", `{"build":"Zq7xP9mK2vL8"}`, `{"build":"Zq7xP9mK2vL8"}`},
		{"context provider key", `{"DD_API_KEY":"7f3c9a1e5b2d4f8a6c0e9b7d3a1f5c2e"}`, `{"DD_API_KEY":"[REDACTED:datadog-api-key]"}`},
		// The format (32 hex under a Datadog key) vouches for the value, even
		// one that reads as a run of the alphabet (issue 10, redact2).
		{"context provider format", `{"DD_API_KEY":"0123456789abcdef0123456789abcdef"}`, `{"DD_API_KEY":"[REDACTED:datadog-api-key]"}`},
		{"context provider stand-in of another length", `{"DD_API_KEY":"0123456789abcdef"}`, `{"DD_API_KEY":"0123456789abcdef"}`},
		{"escaped pem", `{"k":"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5hkA7dX8Ugl5AoAoGCCqGSM49\n-----END EC PRIVATE KEY-----\n"}`, `{"k":"[REDACTED:private-key-ec]\n"}`},
		{"unicode escapes", `{"t":"\u0067hp_` + rs(b62, 36) + `"}`, `{"t":"[REDACTED:github-pat]"}`},
		{"json inside a string", `{"cfg":"{\"token\":\"Zq7xP9mK2vL8Zq\"}"}`, `{"cfg":"{\"token\":\"[REDACTED:generic-secret]\"}"}`},
		{"invisible stripped", `{"d":"hi\u200b there` + "\u2066" + `"}`, `{"d":"hi there"}`},
		{"formatting kept", "{\n  \"a\" : [ 1, 2.5e3, true, null ],\n  \"b\": \"x\"\n}", "{\n  \"a\" : [ 1, 2.5e3, true, null ],\n  \"b\": \"x\"\n}"},
		// A UUID under a token-like name is a credential (Heroku API keys,
		// Postmark server tokens); it was kept before issue 10.
		{"uuid under api key", `{"apiKey":"123e4567-e89b-42d3-a456-426614174000"}`, `{"apiKey":"[REDACTED:generic-secret]"}`},
		{"uuid under a looser key name", `{"licenseKey":"123e4567-e89b-42d3-a456-426614174000"}`, `{"licenseKey":"123e4567-e89b-42d3-a456-426614174000"}`},
		{"hash in integrity", `{"integrity":"sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQuEHHnG4lVkGPW3ZjAv/5cLv8KT2Y2hxnHrY7DQ3AOnWRPaQ=="}`, `{"integrity":"sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQuEHHnG4lVkGPW3ZjAv/5cLv8KT2Y2hxnHrY7DQ3AOnWRPaQ=="}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := r.JSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Fatalf("got  %s\nwant %s", out, tc.want)
			}
			if !json.Valid(out) {
				t.Fatal("output is not valid JSON")
			}
		})
	}
}

func TestJSONReport(t *testing.T) {
	r := newRedactor(t)
	_, rep, err := r.JSON([]byte(`{"a":"ghp_` + rs(b62, 36) + `","b":["npm_` + rs(b62, 36) + `","x\u200by"],"password":"Zq7xP9mK2vL8"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"github-pat": 1, "npm-token": 1, "generic-secret": 1}
	if !reflect.DeepEqual(rep.Counts, want) || rep.Invisible != 1 || rep.Total() != 3 {
		t.Fatalf("report %+v", rep)
	}
	var all redact.Report
	all.Merge(rep)
	all.Merge(rep)
	if all.Total() != 6 || all.Invisible != 2 || all.Counts["github-pat"] != 2 {
		t.Fatalf("merge %+v", all)
	}
}

func TestJSONErrors(t *testing.T) {
	r := newRedactor(t)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", ``, redact.ErrInvalidJSON},
		{"truncated", `{"a":"b"`, redact.ErrInvalidJSON},
		{"trailing", `{} {}`, redact.ErrInvalidJSON},
		{"bad escape", `"\x"`, redact.ErrInvalidJSON},
		{"control char", "\"a\nb\"", redact.ErrInvalidJSON},
		{"bad number", `01`, redact.ErrInvalidJSON},
		{"bad literal", `nul`, redact.ErrInvalidJSON},
		{"too deep", strings.Repeat("[", 600) + strings.Repeat("]", 600), redact.ErrTooDeep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := r.JSON([]byte(tc.in))
			if !errors.Is(err, tc.want) || out != nil {
				t.Fatalf("err = %v, out = %q; want %v", err, out, tc.want)
			}
		})
	}
	small, err := redact.New(redact.WithMaxJSONSize(10))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := small.JSON([]byte(`{"a":"0123456789"}`)); !errors.Is(err, redact.ErrTooLarge) {
		t.Fatalf("size limit: %v", err)
	}
}

func TestOptions(t *testing.T) {
	tok := "ghp_" + rs(b62, 36)
	r, err := redact.New(redact.WithAllowlist(tok))
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := r.Text("x " + tok); out != "x "+tok {
		t.Fatalf("allowlisted value redacted: %q", out)
	}
	r, err = redact.New(redact.WithoutRules("github-pat"))
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := r.Text(tok); out != tok {
		t.Fatalf("disabled rule fired: %q", out)
	}
	if _, err := redact.New(redact.WithoutRules("no-such-rule")); err == nil {
		t.Fatal("unknown rule id accepted")
	}
}

func TestValue(t *testing.T) {
	r := newRedactor(t)
	tok := "ghp_" + rs(b62, 36)
	in := map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{"x": tok}, "description": "db postgres://a:Zq7xP9mK2vL8@h/d"},
		"env":      []any{map[string]any{"name": "API_TOKEN", "value": "Zq7xP9mK2vL8"}},
		"n":        json.Number("12"), "f": 1.5, "b": true, "z": nil,
		"labels": map[string]string{"password": "Zq7xP9mK2vL8"},
	}
	before, _ := json.Marshal(in)
	out, rep, err := r.Value(in)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(in)
	if !bytes.Equal(before, after) {
		t.Fatal("Value mutated its input")
	}
	got, _ := json.Marshal(out)
	if strings.Contains(string(got), tok) || strings.Contains(string(got), "Zq7xP9mK2vL8") {
		t.Fatalf("secret survived: %s", got)
	}
	if rep.Total() != 4 {
		t.Fatalf("report %+v: %s", rep, got)
	}
	if _, _, err := r.Value(struct{}{}); !errors.Is(err, redact.ErrUnsupportedType) {
		t.Fatalf("unsupported type: %v", err)
	}
}

// TestValueCopyOnWrite checks that Value copies only what changes: an
// unchanged subtree is returned as it is (shared with the input), a changed
// one is a new value, the input is left alone in both cases, and keys are
// redacted like values.
func TestValueCopyOnWrite(t *testing.T) {
	r := newRedactor(t)
	tok := "ghp_" + rs(b62, 36)
	plain := map[string]any{"title": "Orders", "tags": []any{"go", "pci"}}
	in := map[string]any{
		"plain":  plain,
		"secret": map[string]any{"note": "token " + tok, "other": "kept"},
		"list":   []any{"a", tok},
		"keys":   map[string]any{tok: "v"},
		"strs":   []string{"x", tok},
	}
	before, _ := json.Marshal(in)
	out, rep, err := r.Value(in)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(in); !bytes.Equal(before, after) {
		t.Fatal("Value mutated its input")
	}
	m := out.(map[string]any)
	if reflect.ValueOf(m["plain"]).Pointer() != reflect.ValueOf(plain).Pointer() {
		t.Error("an unchanged subtree was copied")
	}
	if reflect.ValueOf(m["secret"]).Pointer() == reflect.ValueOf(in["secret"]).Pointer() {
		t.Error("a changed subtree is shared with the input")
	}
	got, _ := json.Marshal(out)
	if strings.Contains(string(got), tok) || !strings.Contains(string(got), `"other":"kept"`) {
		t.Fatalf("output %s", got)
	}
	if rep.Total() != 4 {
		t.Fatalf("report %+v: %s", rep, got)
	}
	same, _, err := r.Value(plain)
	if err != nil || reflect.ValueOf(same).Pointer() != reflect.ValueOf(plain).Pointer() {
		t.Fatalf("a value without secrets was copied (%v)", err)
	}
}

// TestGolden redacts whole entities and compares with golden files.
func TestGolden(t *testing.T) {
	r := newRedactor(t)
	dir := filepath.Join("..", "testdata", "redact", "golden")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range corpus.Generate(corpus.DefaultSeed) {
			if c.Mode == "json" && len(c.Secrets) >= 2 && n < 4 {
				var pretty bytes.Buffer
				_ = json.Indent(&pretty, []byte(c.Input), "", "  ")
				if err := os.WriteFile(filepath.Join(dir, c.ID+".in.json"), pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
	}
	ins, _ := filepath.Glob(filepath.Join(dir, "*.in.json"))
	if len(ins) == 0 {
		t.Fatal("no golden inputs; run with -update")
	}
	for _, in := range ins {
		t.Run(filepath.Base(in), func(t *testing.T) {
			doc, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := r.JSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".in.json") + ".out.json"
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("output differs from %s (run with -update after checking)", golden)
			}
		})
	}
}

// TestJSONKeysJudgedOnce checks object keys through JSON: a key holding a
// secret or invisible Unicode is redacted every time, plain, escaped or
// too long for the key cache, while the same clean keys, now cached, are
// left as they are; and JSON and Value agree on the keys.
func TestJSONKeysJudgedOnce(t *testing.T) {
	r := newRedactor(t)
	tok := "ghp_" + rs(b62, 36)
	long := strings.Repeat("k", 200)
	doc := `{"` + tok + `":1,"x\u200by":2,"plain":3,"esc\u0061ped":4,"` + long + `":5,"` + long + "-" + tok + `":6,"":7}`
	var first []byte
	for i := range 3 {
		out, rep, err := r.JSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = out
		} else if !bytes.Equal(out, first) {
			t.Fatalf("pass %d: %s, first pass %s", i, out, first)
		}
		for _, leak := range []string{tok, "\u200b", `x\u200by`} {
			if strings.Contains(string(out), leak) {
				t.Fatalf("pass %d: %q left in %s", i, leak, out)
			}
		}
		if rep.Counts["github-pat"] != 2 || rep.Invisible != 1 {
			t.Fatalf("pass %d: report %+v", i, rep)
		}
		for _, keep := range []string{`"plain":3`, `"esc\u0061ped":4`, `"` + long + `":5`, `"":7`} {
			if !strings.Contains(string(out), keep) {
				t.Fatalf("pass %d: %s lost from %s", i, keep, out)
			}
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		v, _, err := r.Value(m)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON map[string]any
		if err := json.Unmarshal(out, &fromJSON); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, fromJSON) {
			t.Fatalf("pass %d: Value %v, JSON %v", i, v, fromJSON)
		}
	}
}

// TestJSONUntilStops: a stop function that says stop ends the walk with
// redact.ErrStopped and no output; one that never does gives JSON's answer.
func TestJSONUntilStops(t *testing.T) {
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`{"a":"password=Xy7kQ2mZ9pLw3","b":["x","y"],"c":{"long key here":"z"}}`)
	want, _, err := r.JSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := r.JSONUntil(doc, func() bool { return false })
	if err != nil || string(got) != string(want) {
		t.Fatalf("JSONUntil(never) = %s, %v; want %s", got, err, want)
	}
	for n := range 4 { // four string values; clean keys are not checked again
		calls := 0
		out, _, err := r.JSONUntil(doc, func() bool { calls++; return calls > n })
		if !errors.Is(err, redact.ErrStopped) || out != nil {
			t.Fatalf("stop after %d strings: %s, %v; want redact.ErrStopped and nothing", n, out, err)
		}
	}
}
