package redact_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestKeyContextVocabulary: credentials named without "password" (an LDAP
// bind, a DSN, a connection, a webhook, a private part, short forms) are
// judged with entropy under JSON keys, annotation and label names, in
// KEY=value text and through KeyedValue; ordinary values under the same
// names are kept.
func TestKeyContextVocabulary(t *testing.T) {
	r := newRedactor(t)
	secret := "Zq7xP9mK2vL8Qw3eR"
	tests := []struct {
		key, value string
		redact     bool
	}{
		{"acme.io/ldap-bind", secret, true},
		{"LDAP_BINDPW", secret, true},
		{"ldap.bindPassword", secret, true},
		{"acme.io/db-dsn", "app:" + secret + "@tcp(db:3306)/orders", true},
		{"acme.io/redis-conn", secret, true},
		{"ConnectionString", "AccountName=acme;Key=" + secret, true},
		{"acme.io/gpg-private", secret, true},
		{"smtp_pass", secret, true},
		{"ldap_pw", secret, true},
		{"svc-creds", secret, true},
		{"acme.io/alerts-webhook", "https://hooks.acme.invalid/services/T01ABCDEF/B02XYZ/q7Zr9xP2mK8vL4wN6tY3uJ1s", true},
		// Same names, ordinary values: entropy and shape decide.
		{"acme.io/ldap-bind", "disabled", false},
		{"acme.io/ldap-binddn", "cn=svc-backstage,ou=services,dc=acme,dc=invalid", false},
		{"acme.io/bind-address", "0.0.0.0:8080", false},
		{"acme.io/redis-conn", "redis-primary", false},
		{"acme.io/db-conn-timeout", "30s", false},
		{"acme.io/alerts-webhook", "https://hooks.acme.invalid/alerts", false},
		{"acme.io/webhook-enabled", "true", false},
		{"acme.io/bypass", "Zq7xP9mK2vL8Qw3eR", false},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			check := func(where, out string) {
				t.Helper()
				survived := strings.Contains(out, tc.value)
				if tc.redact && survived {
					t.Errorf("%s: value kept: %s", where, out)
				}
				if !tc.redact && (!survived || strings.Contains(out, "[REDACTED")) {
					t.Errorf("%s: value redacted: %s", where, out)
				}
			}
			for _, field := range []string{"annotations", "labels"} {
				doc, _ := json.Marshal(map[string]any{"metadata": map[string]any{field: map[string]string{tc.key: tc.value}}})
				out, _, err := r.JSON(doc)
				if err != nil {
					t.Fatal(err)
				}
				var back map[string]map[string]map[string]string
				if err := json.Unmarshal(out, &back); err != nil {
					t.Fatal(err)
				}
				check(field, back["metadata"][field][tc.key])
			}
			v, _, err := r.KeyedValue(tc.key, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			check("KeyedValue", v.(string))
			if !strings.ContainsAny(tc.value, " ;=") {
				out, _ := r.Text(tc.key + "=" + tc.value + "\n")
				check("text", out)
			}
		})
	}
}

// TestKeyContextFalsePositives: values that are not secrets although their
// key sounds secret stay whole.
func TestKeyContextFalsePositives(t *testing.T) {
	r := newRedactor(t)
	tests := []struct{ name, in string }{
		{"maven coordinate", "signing-key: com.acme.security:signing-key-lib:2.4.1"},
		{"maven coordinate with packaging", "artifact_key=org.apache.commons:commons-lang3:jar:3.12.0"},
		{"bucket with a version suffix", "state-bucket-key: tf-state-payments-v3"},
		{"bucket with two suffixes", "backup_key: acme-backups-eu-2024-v2"},
		{"templated value", "X_ACCESS_KEY={XAccessKey}"},
		{"templated values in a line", "env: X_ACCESS_KEY={XAccessKey} Y_SECRET={YSecret}"},
		{"maven filtered value", "db.password=@db.password@"},
		{"alphabet run", "client_secret = 'abcdefgh9Q2+ZKWTm'"},
		{"digit run", "aws_secret_key: Qm7aR2+kF+9XyLpTzWvNs1234567890"},
		{"interleaved stand-in", "--set agent.apiKey=tok-a1b2c3d4-e5f6-g7h8-i9j0-k1l2m3"},
		{"algorithm name", "password_hash: argon2id"},
		{"code, not a literal", `let accountKey = Buffer.from("accountKey", "base64");`},
		{"route name", "edit_password: cms/sites/passwords#edit"},
		{"prose without a quoted password", "The password is stored in Vault under secret/payments."},
		{"prose with a template", "the password is '<your-password>' until the first login"},
		{"empty comparison", `if password == "" {`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if out, rep := r.Text(tc.in); out != tc.in || rep.Total() != 0 {
				t.Fatalf("changed: %q (%v)", out, rep.Counts)
			}
		})
	}
	// A real value in braces is still a secret, and its closing brace goes with it.
	if out, _ := r.Text("X_ACCESS_KEY={Zq7xP9mK2vL8Qw3eR}"); out != "X_ACCESS_KEY=[REDACTED:generic-secret]" {
		t.Fatalf("braced secret: %q", out)
	}
}

// TestPasswordNames: under a key that says password, people's passwords are
// redacted whatever their entropy; placeholders, references and other
// non-passwords are kept.
func TestPasswordNames(t *testing.T) {
	r := newRedactor(t)
	tests := []struct {
		in     string
		redact bool
	}{
		{"password: thisismyp4ss", true},
		{`"AdminPassword": "Prestigio$"`, true},
		{"smtp_pass=bluebird77", true},
		{"password: changeme", true}, // a key named password proves the literal is the password
		{"password: ${DB_PASSWORD}", false},
		{"password: secret/data/payments/db", false},
		{"password_min_length: 14", false},
		{"password_hash: argon2id", false},
		{"passwordSecret: payments-db-credentials", false},
		{"password: true", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, rep := r.Text(tc.in)
			if got := rep.Total() > 0; got != tc.redact {
				t.Fatalf("redacted=%v want %v (%v)", got, tc.redact, rep.Counts)
			}
		})
	}
}

// TestStrongContextSequence: a documentation sequence ("abcdef1234…",
// "a1b2c3…") directly under a name that names a credential (its last word
// is password, secret, token, key, api_key, client_secret, …, or in text
// access or private; an assignment, a table cell, a flag, one identifier,
// a credential phrase with only blanks after it, or one separator gluing
// the value to the name) is redacted: hiding a stand-in costs the reader
// nothing. Where the context is weak (a word that is no credential word
// between phrase and value, a license key, access or private as a key of
// their own), under 20 characters, or where a real key was partly
// overwritten by a sequence, the stand-in gate stays.
func TestStrongContextSequence(t *testing.T) {
	r := newRedactor(t)
	redacted := []string{
		"ACME_API_KEY=abcdef1234567890abcdef1234567890",
		"acme_token: a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
		`"clientSecret": "1234567890abcdef1234567890abcdef"`,
		"acme.secret = 'abcdefghijklmnopqrstuvwxyz123456'",
		"--api-key abcdef1234567890abcdef1234567890",
		"X-Acme-Token: 0123456789abcdefABCDEF0123456789",
		"acmeSECRET 1234567890abcdef1234567890abcdef",
		"| ACME_TOKEN | abcdef1234567890abcdef1234567890 |",
		"acme private key: abcdef0123456789abcdef0123456789",
		// A credential phrase directly before the value (issue 29's third
		// round): prose says what the value is as plainly as a key does.
		"the acme key abcdef1234567890abcdef1234567890 goes here",
		"acme SECRET key 1234567890abcdef1234567890abcdef",
		"acme access token    abcdef1234567890abcdef1234567890",
		// Glued to the name by one separator.
		"acme-SECRET-abcdef1234567890abcdef1234567890",
		"acmeTOKEN-abcdef1234567890abcdef1234567890",
		// access or private as the last word, in text.
		"acmeACCESS=abcdef1234567890abcdef1234567890",
		"acme_private=a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
		"acme PRIVATE abcdef1234567890abcdef1234567890",
		// Shapes a strong name vouches for: digits only, one case only.
		"ACME_SECRET=123456123456123456123456123456",
		"acme_token=abcdefghijklmnopqrstuvtt",
		// A sequence padding a random part of 20 or more: a key.
		"acme_token=zq8JFVJtII3FINL1rOKcNpveXD4hSMtSabcdefghijklmnop",
		// A UUID directly under access in text; privatetoken as one word.
		"acme ACCESS 4a6ca234-afd3-1bc2-cd23-fedc239ead0e",
		"acme PRIVATEtoken abcdef1234567890abcdef1234567890",
		// Case does not hide a sequence.
		"acmeSecretKey-1234567890abcDEFghIJkl",
		// A count in every other place is a sequence too.
		"acme secretkey=k1m2j3h4g5p6078901234567890fedcba",
	}
	for _, in := range redacted {
		t.Run("redacted/"+in, func(t *testing.T) {
			if _, rep := r.Text(in); rep.Total() != 1 {
				t.Fatalf("not redacted: %q (%v)", in, rep.Counts)
			}
		})
	}
	kept := []string{
		"the acme key is not abcdef1234567890abcdef1234567890",
		"acme SECRET rotation abcdef1234567890abcdef1234567890",
		"acme-secret-reader-abcdef1234567890abcdef1234567890",
		"ACME_SECRET=12345678901234567",
		"acme_token=abcdefghijklmnopqrs",
		"acme_token=release-candidate-build",
		"license: 4a6ca234-afd3-1bc2-cd23-fedc239ead0e",
		"acme_license_access=4a6ca234-afd3-1bc2-cd23-fedc239ead0e",
		"license_key: a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
		"secret_access_key = 'abcdefg12346+FJQCK'",
		"aws_secret_key: Qm7aR2+kF+9XyLpTzWvNs1234567890",
		"token_url: abcdef1234567890abcdef1234567890",
		"page_token: abcdef1234567890abcdef1234567890",
	}
	for _, in := range kept {
		t.Run("kept/"+in, func(t *testing.T) {
			if out, rep := r.Text(in); out != in || rep.Total() != 0 {
				t.Fatalf("changed: %q (%v)", out, rep.Counts)
			}
		})
	}
	// Under a JSON key or an annotation name the key is the assignment.
	for _, tc := range []struct {
		key    string
		redact bool
	}{
		{"acme.io/api-key", true},
		{"ACME_TOKEN", true},
		{"clientSecret", true},
		{"acme.io/license-key", false},
		{"acme.io/access", false},
		{"acme.io/token-url", false},
	} {
		const v = "abcdef1234567890abcdef1234567890"
		got, _, err := r.KeyedValue(tc.key, v)
		if err != nil {
			t.Fatal(err)
		}
		if (got != v) != tc.redact {
			t.Errorf("%s: got %v, redact=%v", tc.key, got, tc.redact)
		}
	}
}
