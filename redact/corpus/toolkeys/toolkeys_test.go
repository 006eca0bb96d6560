package toolkeys

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

// generate runs the real tools. A missing tool skips the test with one line
// naming it, or fails it where BACKSTAGE_MCP_REQUIRE_TOOLS is set (CI sets it
// and installs them, so a skip can never hide a regression there; the same
// rule as server/internal/testtools, which this package cannot import).
func generate(t *testing.T) []Key {
	t.Helper()
	if m := Missing(); len(m) > 0 {
		msg := fmt.Sprintf("missing key tools %s: install them with `make test-tools`", strings.Join(m, ", "))
		if v := os.Getenv("BACKSTAGE_MCP_REQUIRE_TOOLS"); v != "" && v != "0" && v != "false" {
			t.Fatalf("%s (BACKSTAGE_MCP_REQUIRE_TOOLS is set, so this fails instead of skipping)", msg)
		}
		t.Skip(msg)
	}
	keys, err := Generate(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// bodyChunks returns pieces of the key that must not survive: every 16
// bytes of each base64 line of its body.
func bodyChunks(k Key) []string {
	var out []string
	for _, l := range strings.Split(k.Text, "\n") {
		l = strings.TrimSpace(l)
		if len(l) < 24 || strings.Contains(l, "-----") || strings.Contains(l, ": ") {
			continue
		}
		for i := 0; i+16 <= len(l); i += 16 {
			out = append(out, l[i:i+16])
		}
	}
	if len(out) == 0 {
		out = append(out, k.Text)
	}
	return out
}

// TestRealToolKeys generates the keys once (about ten seconds of key
// generation) and runs the checks on them.
func TestRealToolKeys(t *testing.T) {
	keys := generate(t)
	t.Run("every kind", func(t *testing.T) { checkKinds(t, keys) })
	t.Run("redacted", func(t *testing.T) { checkRedacted(t, keys) })
}

func checkKinds(t *testing.T, keys []Key) {
	want := map[string]string{
		"ssh-ed25519": "BEGIN OPENSSH PRIVATE KEY", "ssh-ed25519-passphrase": "BEGIN OPENSSH PRIVATE KEY",
		"ssh-rsa": "BEGIN OPENSSH PRIVATE KEY", "ssh-rsa-passphrase": "BEGIN OPENSSH PRIVATE KEY",
		"ssh-ecdsa": "BEGIN OPENSSH PRIVATE KEY", "ssh-ecdsa-passphrase": "BEGIN OPENSSH PRIVATE KEY",
		"openssl-pkcs1-rsa": "BEGIN RSA PRIVATE KEY", "openssl-pkcs1-rsa-encrypted": "Proc-Type: 4,ENCRYPTED",
		"openssl-pkcs8-rsa": "BEGIN PRIVATE KEY", "openssl-pkcs8-ed25519": "BEGIN PRIVATE KEY",
		"openssl-ec-sec1": "BEGIN EC PRIVATE KEY", "openssl-pkcs8-encrypted": "BEGIN ENCRYPTED PRIVATE KEY",
		"putty-ed25519": "Encryption: none", "putty-ed25519-passphrase": "Encryption: aes256-cbc",
		"putty-rsa": "PuTTY-User-Key-File-3: ssh-rsa", "putty-rsa-passphrase": "Encryption: aes256-cbc",
		"putty-export-ssh2": "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----",
		"gpg-ed25519":       "BEGIN PGP PRIVATE KEY BLOCK", "gpg-rsa-passphrase": "BEGIN PGP PRIVATE KEY BLOCK",
		"age": "AGE-SECRET-KEY-1",
	}
	got := map[string]bool{}
	for _, k := range keys {
		got[k.Kind] = true
		if w, ok := want[k.Kind]; !ok {
			t.Errorf("unexpected kind %s", k.Kind)
		} else if !strings.Contains(k.Text, w) {
			t.Errorf("%s: %q not in %.80q", k.Kind, w, k.Text)
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("kind %s not generated", k)
		}
	}
}

// checkRedacted: every key of every tool, in every context, is wholly
// covered by detections, and none of its body survives either the raw-JSON
// path or the decoded-value path the server uses.
func checkRedacted(t *testing.T, keys []Key) {
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Docs(keys)
	if err != nil {
		t.Fatal(err)
	}
	hits, err := corpus.Detect(r, docs)
	if err != nil {
		t.Fatal(err)
	}
	tab := corpus.Score(docs, hits)
	if tab.Overall.Labels != len(keys)*len(Contexts()) || tab.Overall.Found != tab.Overall.Labels {
		t.Errorf("found %d of %d keys; missed %v", tab.Overall.Found, tab.Overall.Labels, tab.Missed)
	}
	for _, k := range keys {
		for _, c := range Contexts() {
			t.Run(k.Kind+"/"+c, func(t *testing.T) {
				ent, _, err := Entity(k, c)
				if err != nil {
					t.Fatal(err)
				}
				doc, err := json.Marshal(ent)
				if err != nil {
					t.Fatal(err)
				}
				out, _, err := r.JSON(doc)
				if err != nil {
					t.Fatal(err)
				}
				v, _, err := r.Value(roundTrip(t, doc))
				if err != nil {
					t.Fatal(err)
				}
				dec, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				for _, ch := range bodyChunks(k) {
					for name, o := range map[string]string{"JSON": string(out), "Value": string(dec)} {
						for _, form := range []string{ch, jsonString(ch), strings.ReplaceAll(ch, "+", "%2B")} {
							if strings.Contains(o, form) {
								t.Fatalf("%s path: %q survived in %s", name, ch, o)
							}
						}
					}
				}
			})
		}
	}
}

func roundTrip(t *testing.T, doc []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
