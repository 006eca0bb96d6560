// Package toolkeys makes private-key material with the real tools people use
// (ssh-keygen, openssl, gpg, puttygen, age-keygen) and places each key in
// the entity contexts where it leaks into a Backstage catalog. It runs
// programs and writes a temporary directory, so it is test tooling, kept
// apart from the pure redact package.
//
//	keys, err := toolkeys.Generate(ctx, t.TempDir())
//	docs, err := toolkeys.Docs(keys)
package toolkeys

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

// tools are the programs Generate needs and the Debian package of each.
var tools = [...][2]string{
	{"ssh-keygen", "openssh-client"}, {"openssl", "openssl"}, {"gpg", "gnupg"}, {"gpgconf", "gnupg"},
	{"puttygen", "putty-tools"}, {"age-keygen", "age"},
}

// Missing returns the tools Generate needs that are not on PATH, as
// "tool (Debian package)".
func Missing() []string {
	var out []string
	for _, t := range tools {
		if _, err := exec.LookPath(t[0]); err != nil {
			out = append(out, t[0]+" ("+t[1]+")")
		}
	}
	return out
}

// Key is one private key as the tool wrote it.
type Key struct {
	Kind string // e.g. "ssh-ed25519-passphrase", "openssl-pkcs8-rsa"
	// Text is the secret part of the file: the whole PEM or PuTTY block, or
	// the AGE-SECRET-KEY line (age-keygen's comment lines are public).
	Text string
}

const passphrase = "correct horse battery staple"

// Generate makes every kind of key in dir (which it fills with key files).
func Generate(ctx context.Context, dir string) ([]Key, error) {
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("toolkeys: missing tools: %s", strings.Join(m, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	g := gen{ctx: ctx, dir: dir}
	empty := filepath.Join(dir, "empty-pass")
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return nil, fmt.Errorf("toolkeys: %w", err)
	}
	if err := os.WriteFile(pass, []byte(passphrase+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("toolkeys: %w", err)
	}
	for _, t := range [...]struct{ kind, typ, bits string }{{"ed25519", "ed25519", ""}, {"rsa", "rsa", "2048"}, {"ecdsa", "ecdsa", "256"}} {
		for _, p := range [...]struct{ suffix, pass string }{{"", ""}, {"-passphrase", passphrase}} {
			f := g.path("ssh-" + t.kind + p.suffix)
			args := []string{"-q", "-t", t.typ, "-N", p.pass, "-C", "deploy@ci.acme.invalid", "-f", f}
			if t.bits != "" {
				args = append(args, "-b", t.bits)
			}
			g.run(nil, "ssh-keygen", args...)
			g.file("ssh-"+t.kind+p.suffix, f)
		}
	}
	g.out("openssl-pkcs1-rsa", nil, "openssl", "genrsa", "-traditional", "2048")
	g.out("openssl-pkcs1-rsa-encrypted", nil, "openssl", "genrsa", "-traditional", "-aes128", "-passout", "pass:"+passphrase, "2048")
	g.out("openssl-pkcs8-rsa", nil, "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
	g.out("openssl-pkcs8-ed25519", nil, "openssl", "genpkey", "-algorithm", "ed25519")
	g.out("openssl-ec-sec1", nil, "openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout")
	g.out("openssl-pkcs8-encrypted", nil, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-aes-256-cbc", "-pass", "pass:"+passphrase)
	for _, t := range [...]string{"ed25519", "rsa"} {
		for _, p := range [...]struct{ suffix, file string }{{"", empty}, {"-passphrase", pass}} {
			f := g.path("putty-" + t + p.suffix + ".ppk")
			args := []string{"-q", "-t", t, "-C", "deploy@ci", "-o", f, "--new-passphrase", p.file}
			if t == "rsa" {
				args = append(args, "-b", "2048")
			}
			g.run(nil, "puttygen", args...)
			g.file("putty-"+t+p.suffix, f)
		}
	}
	ssh2 := g.path("putty-ssh2-export")
	g.run(nil, "puttygen", g.path("putty-rsa.ppk"), "-O", "private-sshcom", "-o", ssh2, "--old-passphrase", empty, "--new-passphrase", pass)
	g.file("putty-export-ssh2", ssh2)
	g.gpg()
	agef := g.path("age.txt")
	g.run(nil, "age-keygen", "-o", agef)
	if g.err == nil {
		b, err := os.ReadFile(agef)
		if err != nil {
			return nil, fmt.Errorf("toolkeys: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "AGE-SECRET-KEY-1") {
				g.keys = append(g.keys, Key{Kind: "age", Text: l})
			}
		}
	}
	if g.err != nil {
		return nil, g.err
	}
	for _, k := range g.keys {
		if strings.TrimSpace(k.Text) == "" {
			return nil, fmt.Errorf("toolkeys: %s: empty key", k.Kind)
		}
	}
	return g.keys, nil
}

type gen struct {
	ctx  context.Context
	dir  string
	env  []string
	keys []Key
	err  error
}

func (g *gen) path(name string) string { return filepath.Join(g.dir, name) }

func (g *gen) run(stdin []byte, name string, args ...string) []byte {
	if g.err != nil {
		return nil
	}
	cmd := exec.CommandContext(g.ctx, name, args...)
	cmd.Env = append(os.Environ(), g.env...)
	cmd.Dir = g.dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		g.err = fmt.Errorf("toolkeys: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out
}

func (g *gen) out(kind string, stdin []byte, name string, args ...string) {
	if b := g.run(stdin, name, args...); g.err == nil {
		g.keys = append(g.keys, Key{Kind: kind, Text: strings.TrimRight(string(b), "\n")})
	}
}

func (g *gen) file(kind, path string) {
	if g.err != nil {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		g.err = fmt.Errorf("toolkeys: %w", err)
		return
	}
	g.keys = append(g.keys, Key{Kind: kind, Text: strings.TrimRight(string(b), "\n")})
}

// gpg makes an ed25519 key in a temporary GNUPGHOME and exports its secret
// key, armoured, then stops the agent it started.
func (g *gen) gpg() {
	home, err := os.MkdirTemp("", "gnupg")
	if err != nil {
		g.err = fmt.Errorf("toolkeys: %w", err)
		return
	}
	defer os.RemoveAll(home)
	if err := os.Chmod(home, 0o700); err != nil {
		g.err = fmt.Errorf("toolkeys: %w", err)
		return
	}
	g.env = []string{"GNUPGHOME=" + home}
	defer func() { g.env = nil }()
	uid := "Deploy Bot <deploy@ci.acme.invalid>"
	g.run(nil, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
	g.out("gpg-ed25519", nil, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys", "--armor", uid)
	g.run(nil, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase, "--quick-gen-key", "Release <release@ci.acme.invalid>", "rsa2048", "sign", "never")
	g.out("gpg-rsa-passphrase", nil, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase, "--export-secret-keys", "--armor", "release@ci.acme.invalid")
	kill := exec.CommandContext(g.ctx, "gpgconf", "--kill", "gpg-agent")
	kill.Env = append(os.Environ(), g.env...)
	_ = kill.Run() // best effort: the agent exits on its own when its home is gone
}

// Contexts returns the places in an entity where Docs puts a key.
func Contexts() []string {
	return []string{"annotation", "description", "url", "spec-yaml", "json-in-json"}
}

// Docs places every key in every context of an entity and labels the key's
// bytes in the JSON document. The family of each label is "toolkey/<kind>".
func Docs(keys []Key) ([]corpus.Doc, error) {
	var docs []corpus.Doc
	for _, k := range keys {
		for _, c := range Contexts() {
			d, err := place(k, c)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d)
		}
	}
	return docs, nil
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	out := strings.TrimSpace(b.String())
	return out[1 : len(out)-1]
}

// Entity returns the entity of one context and the key as it appears in the
// decoded string value that holds it.
func Entity(k Key, context string) (map[string]any, string, error) {
	meta := map[string]any{"name": "payments-api", "namespace": "default", "annotations": map[string]any{
		"backstage.io/source-location": "url:https://git.acme.invalid/payments/payments-api/",
	}}
	ent := map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": meta,
		"spec": map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/payments"}}
	spec := ent["spec"].(map[string]any)
	var inValue string
	switch context {
	case "annotation":
		meta["annotations"].(map[string]any)["acme.io/deploy-key"] = k.Text
		inValue = k.Text
	case "description":
		meta["description"] = "Payments API. To deploy by hand use this key:\n" + k.Text + "\nand ask #payments-oncall before rotating it."
		inValue = k.Text
	case "url":
		q := url.QueryEscape(k.Text)
		meta["links"] = []any{map[string]any{"title": "import key", "url": "https://vault.acme.invalid/ui/import?format=pem&material=" + q}}
		inValue = q
	case "spec-yaml":
		indented := "    " + strings.ReplaceAll(k.Text, "\n", "\n    ")
		ent["kind"] = "API"
		spec["type"] = "openapi"
		spec["definition"] = "openapi: 3.0.3\ninfo:\n  title: payments\n  version: 1.0.0\nx-deploy:\n  user: deploy\n  key: |\n" + indented + "\npaths: {}\n"
		inValue = indented[4:]
	case "json-in-json":
		inner := jsonString(k.Text)
		spec["definition"] = `{"type":"service_account","client_email":"deploy@acme.invalid","private_key":"` + inner + `"}`
		inValue = inner
	default:
		return nil, "", fmt.Errorf("toolkeys: unknown context %q", context)
	}
	return ent, inValue, nil
}

func place(k Key, context string) (corpus.Doc, error) {
	ent, inValue, err := Entity(k, context)
	if err != nil {
		return corpus.Doc{}, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ent); err != nil {
		return corpus.Doc{}, fmt.Errorf("toolkeys: %w", err)
	}
	doc := b.String()
	raw := jsonString(inValue)
	i := strings.Index(doc, raw)
	if i < 0 || strings.Count(doc, raw) != 1 {
		return corpus.Doc{}, fmt.Errorf("toolkeys: %s/%s: key not found once in the document", k.Kind, context)
	}
	return corpus.Doc{ID: k.Kind + "/" + context, Mode: "json", Input: doc,
		Spans: []corpus.Secret{{Start: i, End: i + len(raw), Type: "toolkey/" + k.Kind, Value: raw}}}, nil
}
