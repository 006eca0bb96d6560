package redact_test

import (
	"encoding/base64"
	"strings"
	"testing"
)

// ed25519Key is an unencrypted key from `ssh-keygen -t ed25519` with an empty passphrase, made
// for this test and used nowhere else. Its body holds runs of "A" (the empty
// kdf options, the key count), which once made a placeholder check reject the
// whole block.
const ed25519Key = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDeHv3DCKxuozaogyiTJrjMdMrG+pUHeqM+s6ZJ7PoVvwAAAJhx4pRdceKU
XQAAAAtzc2gtZWQyNTUxOQAAACDeHv3DCKxuozaogyiTJrjMdMrG+pUHeqM+s6ZJ7PoVvw
AAAEDOdBfTxRAVlKIafiuLcAe17wA9TZ6UMpwpMNKAuCztxN4e/cMIrG6jNqiDKJMmuMx0
ysb6lQd6oz6zpkns+hW/AAAAFWZpeHR1cmVAYmFja3N0YWdlLW1jcA==
-----END OPENSSH PRIVATE KEY-----`

// puttyKey is an unencrypted `puttygen -t ed25519` key file made for this test.
const puttyKey = `PuTTY-User-Key-File-3: ssh-ed25519
Encryption: none
Comment: ed25519-key-20261130
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIAyc1DmMohXXx3v2/Uh70VRZ2xjHf2HtEXMiPwUj
AYwS
Private-Lines: 1
AAAAIBzgzjDcvugKkKff8R6w5ADYg+FnPLNctLkcUlDpvptx
Private-MAC: 5a5c0f777f2ebd17eb8098c3a8e13db2f5a655603af848dd3ceaa3f2d2405fc9`

// ageKey is an `age-keygen` identity made for this test.
const ageKey = "AGE-SECRET-KEY-1U6YZS4Y8M62DAWFURMTC9SCJ58KDR6L9UELVGMCTRN38RPV85ELQLFATP7"

// TestBlockSecretsFailClosed: a private-key header is enough. The block is
// redacted up to its END line, or to the end of the value when there is none,
// however it is folded and whatever its body holds.
func TestBlockSecretsFailClosed(t *testing.T) {
	r := newRedactor(t)
	body := strings.SplitN(ed25519Key, "\n", 2)[1]
	body = body[:strings.Index(body, "-----END")]
	escaped := strings.ReplaceAll(ed25519Key, "\n", `\n`)
	unfolded := strings.ReplaceAll(ed25519Key, "\n", "")
	truncated := ed25519Key[:strings.Index(ed25519Key, "-----END")]
	b64 := base64.StdEncoding.EncodeToString([]byte(ed25519Key + "\n"))
	tests := []struct {
		name, in, want string
		secrets        []string // must not survive
	}{
		{"ed25519 with newlines", "key: |\n" + ed25519Key + "\nrest", "key: |\n[REDACTED:private-key-openssh]\nrest", []string{body[:70]}},
		{"ed25519 with \\n escapes", `KEY="` + escaped + `\n" done`, `KEY="[REDACTED:private-key-openssh]\n" done`, []string{body[:70]}},
		{"ed25519 on one line", "k=" + unfolded, "k=[REDACTED:private-key-openssh]", []string{body[:70]}},
		{"no END line: the rest of the value", "see " + truncated + " and more text", "see [REDACTED:private-key-openssh]", []string{"more text"}},
		{"elided body", "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----", "[REDACTED:private-key-rsa]", nil},
		{"body of placeholders", "-----BEGIN EC PRIVATE KEY-----\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n-----END EC PRIVATE KEY-----", "[REDACTED:private-key-ec]", nil},
		{"header only", "-----BEGIN ENCRYPTED PRIVATE KEY-----", "[REDACTED:private-key-encrypted]", nil},
		{"pgp block with armour headers", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: test\n\nlQOYBGYAAAAAAAAAAAAAAAAAAAAA\n=AbCd\n-----END PGP PRIVATE KEY BLOCK-----\nafter",
			"[REDACTED:private-key-pgp]\nafter", nil},
		{"ssh2 header with four dashes", "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"k\"\nP2/56wAAAAAAAAAAAAAAAAAAAAAAAAAA\n---- END SSH2 ENCRYPTED PRIVATE KEY ----",
			"[REDACTED:private-key-other]", nil},
		{"any other label", "-----BEGIN ANY PRIVATE KEY-----\nAAAAAAAA\n-----END ANY PRIVATE KEY-----", "[REDACTED:private-key-other]", nil},
		{"putty file", "ppk: " + puttyKey + "\nnext", "ppk: [REDACTED:putty-private-key]\nnext", []string{"AAAAIBzgzjDcvugKkKff8R6w5ADYg"}},
		{"putty file without its MAC", "ppk: " + puttyKey[:strings.Index(puttyKey, "Private-MAC")], "ppk: [REDACTED:putty-private-key]", []string{"AAAAIBzgzjDcvugKkKff8R6w5ADYg"}},
		{"age identity", "SOPS_AGE_KEY=" + ageKey, "SOPS_AGE_KEY=[REDACTED:age-secret-key]", nil},
		{"base64 of a PEM key", "data:\n  id_ed25519: " + b64 + "\n", "data:\n  id_ed25519: [REDACTED:private-key-base64-pem]\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rep := r.Text(tc.in)
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
			if rep.Total() == 0 {
				t.Fatal("no redaction counted")
			}
			for _, s := range tc.secrets {
				if strings.Contains(got, s) {
					t.Fatalf("%q survived", s)
				}
			}
		})
	}
}

// TestBlockSecretsInJSONValues: the same key as a JSON string value (escaped
// newlines) and as a decoded value: the whole leaf goes.
func TestBlockSecretsInJSONValues(t *testing.T) {
	r := newRedactor(t)
	doc := `{"metadata":{"annotations":{"acme.io/deploy-key":"` + strings.ReplaceAll(ed25519Key, "\n", `\n`) + `"}}}`
	out, _, err := r.JSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"metadata":{"annotations":{"acme.io/deploy-key":"[REDACTED:private-key-openssh]"}}}`; string(out) != want {
		t.Fatalf("JSON: got %s", out)
	}
	v, _, err := r.Value(map[string]any{"spec": map[string]any{"definition": "deploy:\n  key: |\n    " + strings.ReplaceAll(ed25519Key, "\n", "\n    ")}})
	if err != nil {
		t.Fatal(err)
	}
	got := v.(map[string]any)["spec"].(map[string]any)["definition"].(string)
	if want := "deploy:\n  key: |\n    [REDACTED:private-key-openssh]"; got != want {
		t.Fatalf("Value: got %q want %q", got, want)
	}
}

// TestRepeatedRunDoesNotVeto: a run of one repeated character never rejects
// a match of a provider format (the format vouches), and under a secret-named
// key it rejects only a short value (maxStandInLen), where stand-ins live.
func TestRepeatedRunDoesNotVeto(t *testing.T) {
	r := newRedactor(t)
	const maxStandInLen = 24 // redact.maxStandInLen
	tests := []struct {
		name, in string
		redact   bool
	}{
		{"github token starting with a run", "ghp_AAAAAAAA" + rs(b62, 28), true},
		{"github token of one letter", "ghp_" + strings.Repeat("A", 36), true},
		{"stripe key starting with zeros", "sk_live_000000" + rs(b62, 24), true},
		{"stripe key of zeros", "sk_live_" + strings.Repeat("0", 24), true},
		// A key named password proves a password: a literal run of a letter is
		// what was typed there (only mask characters, "****", "xxxx", are kept).
		{"password of one letter", "password: aaaaaaaaaaaa", true},
		{"password with a run inside", "password: Qm7aaaaaaZr4Lp9wX2", true},
		{"short run under a token key", "token: " + strings.Repeat("x", maxStandInLen), false},
		{"long run under a token key", "token: " + strings.Repeat("x", maxStandInLen+1), true},
		{"long run of zeros under an api key", "API_KEY=" + strings.Repeat("0", 32), true},
		{"long run under a password key", "password: " + strings.Repeat("a", 32), true},
		{"mostly a run under a token key", "token: " + strings.Repeat("a", 36) + "end", false},
		{"long mask under a token key", "token: " + strings.Repeat("*", 32), false},
		{"ruler after a secret word", "SECRET " + strings.Repeat("=", 40), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rep := r.Text(tc.in)
			if got := rep.Total() > 0; got != tc.redact {
				t.Fatalf("redacted=%v want %v (%v)", got, tc.redact, rep.Counts)
			}
		})
	}
}

// TestFormatVouches: a match of a provider format (fixed prefix, length and
// alphabet) is redacted whatever its body holds — a documentation word, a run,
// an alphabet sequence — as Nosey Parker labels its own samples; only
// explicit template syntax vetoes it. Values without a format keep the
// stand-in checks.
func TestFormatVouches(t *testing.T) {
	r := newRedactor(t)
	tests := []struct {
		name, in, rule string
	}{
		{"aws documented access key id", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "aws-access-key-id"},
		{"aws documented secret key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws-secret-access-key"},
		{"aws secret key of one letter", "aws_secret_access_key:" + strings.Repeat("a", 40), "aws-secret-access-key"},
		{"github token of x", "token: ghp_" + strings.Repeat("x", 36), "github-pat"},
		{"tavily key of x", `TAVILY_API_KEY = "tvly-` + strings.Repeat("x", 32) + `"`, "tavily-api-key"},
		{"okta token of one letter", "okta_api_token = 00" + strings.Repeat("a", 40), "okta-api-token-context"},
		{"okta token with dashes and runs", `OKTA_API_KEY = "00-aaaaaaaaaaaaa-aaaaaaaaaaaaaaaaaaaaaaaaa"`, "okta-api-token-context"},
		{"okta token holding an alphabet run", "okta_secret:  00QCjAl4MlV-WPXM-ABCDEFGHIJKL-0HmjFx-vbGua", "okta-api-token-context"},
		{"new relic license key of one letter", "license_key: " + strings.Repeat("a", 36) + "NRAL", "newrelic-license-key"},
		{"slack bot token of zeros and x", "xoxb-0000000000-0000000000000-" + strings.Repeat("x", 24), "slack-bot-token"},
		{"datadog key of an alphabet run", "DD_API_KEY=0123456789abcdef0123456789abcdef", "datadog-api-key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, rep := r.Text(tc.in)
			if rep.Counts[tc.rule] == 0 {
				t.Fatalf("%q: no %s redaction (%v): %q", tc.in, tc.rule, rep.Counts, out)
			}
		})
	}
	// The format's length and boundary still decide: Nosey Parker's negatives
	// are the same stand-ins cut to another length.
	for _, in := range []string{
		"okta_api_token: 000000000000000000000000000000000000000000aa",
		"okta_api_key: 00QCjAl4MlV-WPXM-ABCDEFGHIJKL-0HmjFx-vbGu-",
		`"aws_secret_access_key" =  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaend`,
		"license_key: xxxxxxxxxxxxxxx",
	} {
		if out, rep := r.Text(in); rep.Total() != 0 {
			t.Errorf("%q: redacted %v: %q", in, rep.Counts, out)
		}
	}
}
