package harness

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// githubChecksum is the 6-character base62 CRC32 GitHub appends to the
// random part of its tokens.
func githubChecksum(random string) string {
	n := crc32.ChecksumIEEE([]byte(random))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return string(out)
}

func TestGitHubChecksum(t *testing.T) {
	tests := []struct {
		name  string
		token string
		valid bool
	}{
		{name: "zero-padded checksum of empty input", token: "ghp_" + "000000", valid: true},
		{name: "one character changed", token: "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaab" + githubChecksum(strings.Repeat("a", 30)), valid: false},
		{name: "matching checksum", token: "ghp_" + strings.Repeat("a", 30) + githubChecksum(strings.Repeat("a", 30)), valid: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.TrimPrefix(tc.token, "ghp_")
			got := githubChecksum(body[:len(body)-6]) == body[len(body)-6:]
			if got != tc.valid {
				t.Errorf("checksum valid = %v, want %v", got, tc.valid)
			}
		})
	}
}

func TestSecretsManifest(t *testing.T) {
	root := RepoRoot(t)
	secrets, err := LoadSecrets(root)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(SecretsFixture(root))
	if err != nil {
		t.Fatal(err)
	}
	fixtures, err := FixtureEntities(root)
	if err != nil {
		t.Fatal(err)
	}
	// Every secret must survive YAML parsing intact somewhere in the
	// fixture's entities, as Backstage will serve them.
	parsed, err := json.Marshal(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	var flat []string
	collectStrings(fixtures, &flat)

	types := map[string]int{}
	for _, s := range secrets {
		types[s.Type]++
		t.Run(s.Type, func(t *testing.T) {
			if s.Type != "pem-rsa-private-key" && !strings.Contains(string(raw), s.Value) {
				t.Errorf("value not found verbatim in secrets.yaml")
			}
			if !containsIn(flat, s.Value) {
				t.Errorf("value not found in any parsed string of the fixture")
			}
			if !strings.Contains(string(parsed), strings.Split(s.Value, "\n")[0]) {
				t.Errorf("value missing from the JSON form of the fixture")
			}
			checkFormat(t, s)
		})
	}
	for _, want := range []string{"github-classic-token", "jwt", "aws-access-key-id", "aws-secret-access-key", "pem-rsa-private-key", "postgres-password", "url-token-parameter"} {
		if types[want] == 0 {
			t.Errorf("manifest lacks a %s", want)
		}
	}
}

// checkFormat asserts that a fake secret has its real format.
func checkFormat(t *testing.T, s Secret) {
	t.Helper()
	switch s.Type {
	case "github-classic-token":
		if !regexp.MustCompile(`^ghp_[0-9A-Za-z]{36}$`).MatchString(s.Value) {
			t.Fatalf("not ghp_ + 36 base62 characters: %q", s.Value)
		}
		random, sum := s.Value[4:34], s.Value[34:]
		if got := githubChecksum(random); got != sum {
			t.Errorf("checksum %q, want %q", sum, got)
		}
	case "aws-access-key-id":
		if !regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`).MatchString(s.Value) {
			t.Errorf("not an AWS access key id: %q", s.Value)
		}
	case "aws-secret-access-key":
		if !regexp.MustCompile(`^[A-Za-z0-9/+]{40}$`).MatchString(s.Value) {
			t.Errorf("not a 40-character AWS secret: %q", s.Value)
		}
	case "jwt":
		parts := strings.Split(s.Value, ".")
		if len(parts) != 3 {
			t.Fatalf("JWT has %d parts", len(parts))
		}
		for i, p := range parts {
			b, err := base64.RawURLEncoding.DecodeString(p)
			if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			if i < 2 && !json.Valid(b) {
				t.Errorf("part %d is not JSON", i)
			}
		}
	case "pem-rsa-private-key":
		block, rest := pem.Decode([]byte(s.Value))
		if block == nil || block.Type != "RSA PRIVATE KEY" || strings.TrimSpace(string(rest)) != "" {
			t.Fatalf("not a single RSA PRIVATE KEY block")
		}
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("parse key: %v", err)
		}
		if err := key.Validate(); err != nil {
			t.Errorf("invalid key: %v", err)
		}
	case "slack-bot-token":
		if !regexp.MustCompile(`^xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}$`).MatchString(s.Value) {
			t.Errorf("not a Slack bot token: %q", s.Value)
		}
	case "postgres-url-with-password":
		if !regexp.MustCompile(`^postgres://[^:/]+:[^@]+@`).MatchString(s.Value) {
			t.Errorf("not a postgres URL with a password: %q", s.Value)
		}
	case "postgres-password", "url-token-parameter":
		if len(s.Value) < 16 {
			t.Errorf("too short to be a realistic secret: %q", s.Value)
		}
	default:
		t.Errorf("unknown secret type %q", s.Type)
	}
}

func collectStrings(v any, out *[]string) {
	switch t := v.(type) {
	case string:
		*out = append(*out, t)
	case []any:
		for _, e := range t {
			collectStrings(e, out)
		}
	case []map[string]any:
		for _, e := range t {
			collectStrings(e, out)
		}
	case map[string]any:
		for _, e := range t {
			collectStrings(e, out)
		}
	}
}

func containsIn(haystack []string, needle string) bool {
	for _, h := range haystack {
		if strings.Contains(h, needle) {
			return true
		}
	}
	return false
}

func TestFixturesReferenceDemo(t *testing.T) {
	root := RepoRoot(t)
	fixtures, err := FixtureEntities(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(fixtures) < 4 || len(fixtures) > 6 {
		t.Errorf("got %d fixture entities, want 4 to 6", len(fixtures))
	}
	entities, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]bool{}
	for _, e := range entities {
		if e["kind"] == "Group" {
			groups[e["metadata"].(map[string]any)["name"].(string)] = true
		}
	}
	for _, f := range fixtures {
		spec, _ := f["spec"].(map[string]any)
		owner, _ := spec["owner"].(string)
		if !groups[owner] {
			t.Errorf("fixture %v: owner %q is not a demo group", f["metadata"], owner)
		}
	}
	total, err := ExpectedTotal(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(entities) + len(fixtures); total <= want {
		t.Errorf("ExpectedTotal = %d, want more than %d (Location entities)", total, want)
	}
}

func TestInstalled(t *testing.T) {
	old := time.Now().Add(-time.Hour)
	tests := []struct {
		name   string
		hidden bool
		stale  bool
		native bool
		want   bool
	}{
		{name: "nothing installed"},
		{name: "no native module", hidden: true},
		{name: "lockfile newer than install", hidden: true, native: true, stale: true},
		{name: "complete", hidden: true, native: true, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(p string) {
				p = filepath.Join(dir, p)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("package-lock.json")
			if tc.hidden {
				write("node_modules/.package-lock.json")
				if tc.stale {
					if err := os.Chtimes(filepath.Join(dir, "node_modules/.package-lock.json"), old, old); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tc.native {
				write("node_modules/better-sqlite3/build/Release/better_sqlite3.node")
			}
			got, err := installed(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("installed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTailFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		max  int64
		want string
	}{
		{name: "whole file", max: 100, want: "0123456789"},
		{name: "last bytes", max: 3, want: "789"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tailFile(p, tc.max); got != tc.want {
				t.Errorf("tailFile = %q, want %q", got, tc.want)
			}
		})
	}
}
