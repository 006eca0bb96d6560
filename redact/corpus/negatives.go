package corpus

import (
	"fmt"
	"strings"
)

// hardNegatives are hand-written documents that look like secrets but are not.
func hardNegatives() []Case {
	texts := []string{
		"Commit 3f9c2a7e1b4d8f6a0c5e9b2d7a4f1c8e6b3d0a9f fixed the token refresh race.",
		"request id 123e4567-e89b-42d3-a456-426614174000 failed with 502",
		"image: ghcr.io/acme/payments@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		`"integrity": "sha512-Q5gDkP7pHzv3t8m+7zK0fM0e0h9eA8Jc3Yb0VZ+Q1b3u7aJxgJ2Kq7pT9wYyZl9yXg1k2m3n4o5p6q7r8s9t0u=="`,
		"password: ${DB_PASSWORD}",
		"apiKey: \"{{ secrets.API_KEY }}\"",
		"client_secret: <your-client-secret>",
		"token: xxxxxxxxxxxxxxxxxxxxxxxx",
		"secret: changeme",
		"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"Publishable key pk_live_51Habc is safe to embed in the browser.",
		"The payment-token-service issues short-lived tokens; see docs/tokens.md.",
		"pod vault-secret-reader-7d9f8b6c4-x2x9z restarted 3 times",
		"Use the token bucket algorithm with a refill rate of 10/s.",
		"Password reset emails are sent by the notifications-worker.",
		"version 1.24.3-rc.1+build.5 released; chart 0.12.0",
		"logo: data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
		"DATABASE_URL=postgres://localhost:5432/orders",
		"git clone https://jdoe@github.com/acme/payments.git",
		"export GITHUB_TOKEN=$(gh auth token)",
		"Set the header Authorization: Bearer <token> on every call.",
		"secretName: payments-db-credentials\nsecretKey: password",
		"tokenUrl: https://auth.acme.example/oauth2/token",
		"key: app.kubernetes.io/name",
		"The API key goes in the X-API-Key header; ask #platform for one.",
		"sonarqube.org/project-key: acme_payments_api",
		"passwordPolicy: min-length=14",
		"keyboard shortcuts: press k to open the key bindings panel",
		"ETag: W/\"5e8f-1a2b3c4d5e6f7a8b9c0d\"",
		"commit: a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
		"uid: 8c4f2e1a-7b3d-4e9f-a5c6-1d2e3f4a5b6c",
		"ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx is what a token looks like",
		"postgres://user:password@localhost:5432/db",
		"mongodb://admin:<password>@cluster0.mongodb.net/test",
		"redis://:${REDIS_PASSWORD}@cache:6379",
		"https://api.example.com/items?page_token=CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA3&pageSize=50",
		"https://app.example.com/search?keyword=access+token&sort_key=updated",
		"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----",
		"-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----",
		// A private-key header alone is redacted since issue 10 (fail closed),
		// so the elided block that stood here is no longer a negative.
		"-----BEGIN RSA PUBLIC KEY-----\n...\n-----END RSA PUBLIC KEY-----",
		"eyJhbGciOiJIUzI1NiJ9 is just a base64 header, not a token",
		"Node version v18.19.0, npm 10.2.3",
		"Slack channel #payments-alerts, webhook configured in Vault at secret/slack/payments.",
		"Call POST /v1/tokens to mint a token, then DELETE /v1/tokens/{id} to revoke it.",
		"privateKey: ${file:/etc/keys/signing.pem}",
		"jwks_uri: https://auth.acme.example/.well-known/jwks.json",
		"key-rotation-schedule: weekly",
		"secret/data/payments/prod is the Vault path for credentials",
		"api_key_header_name: X-Api-Key",
		"token_expiry_seconds: 3600",
		"grafana dashboard uid: a1b2c3d4e5",
		"The signature is computed with HMAC-SHA256 over the raw body.",
		"cache key format is user:{id}:profile",
		"build 20240611.3 of payments-api passed",
		"sk-... is the prefix of OpenAI keys; never paste one here.",
		"Docs: https://backstage.io/docs/auth/service-to-service-auth#static-tokens",
		"mysql://root@localhost/test",
		"amqp://guest:guest@localhost:5672/",
		"Server=tcp:acme-sql.database.windows.net,1433;Initial Catalog=ledger;Authentication=Active Directory Default;",
		// Password hashes (bcrypt, crypt, Kerberos) are redacted since issue 10:
		// they can be cracked offline. The scheme alone is ordinary text.
		"password_hash: argon2id (m=65536, t=3, p=4), bcrypt cost 12 for legacy rows",
		"checksum: 5d41402abc4b2a76b9719d911017c592",
		"tracking: UA-12345678-1 and G-ABCD1234EF",
		"access_key_id: ${{ secrets.AWS_ACCESS_KEY_ID }}",
		"An AKIA prefix identifies long-term AWS access keys; ASIA identifies temporary ones.",
		// The four rules added for issue 10 (gradle-credentials, dotnet-appsetting-secret,
		// jwt-secret, slack-legacy-bot-token): references, templates and prose.
		"credentials {\n  username 'deployer'\n  password project.findProperty('repoPassword')\n}",
		"credentials {\n  username = System.getenv(\"REPO_USER\")\n  password = System.getenv(\"REPO_PASSWORD\")\n}",
		`<add key="PasswordPolicyUrl" value="https://id.acme.example/policy"/>`,
		`<add key="ApiSecret" value="#{ApiSecret}"/>`,
		"jwt:\n  algorithm: HS256\n  secret: ${JWT_SECRET}\n",
		"jwt:\n  issuer: acme-portal\n  secret-name: jwt-signing\n",
		"Legacy bot tokens start with xoxb- and are shown once, when the bot is added.",
	}
	// Relabelled (redact2): documented samples that keep a provider's format
	// are secrets, because a format match is redacted whatever its body holds
	// (Nosey Parker labels such samples as examples: tvly-xxxx…, the
	// Salesforce …EXAMPLE… token); they stay at their index, as sample-text-N.
	//
	// Relabelled (redact3): a URL's userinfo proves a password, and what is
	// written there literally is the password, whatever word it is; only
	// references, masks and no value are kept.
	relabelled := map[int][]Secret{
		9:  {label(texts[9], "AKIAIOSFODNN7EXAMPLE", "aws-access-key-id"), label(texts[9], "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws-secret-access-key")},
		31: {label(texts[31], "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "github-pat")},
		32: {label(texts[32], "password", "conn-postgres")},         // the literal "password" in a URL's userinfo is the password
		57: {labelAfter(texts[57], "guest:", "guest", "conn-amqp")}, // "guest:guest@" logs in wherever the broker keeps its default account
	}
	var out []Case
	for i, t := range texts {
		if secrets, ok := relabelled[i]; ok {
			out = append(out, Case{ID: fmt.Sprintf("sample-text-%03d", i), Mode: "text", Input: t, Secrets: secrets})
			continue
		}
		out = append(out, Case{ID: fmt.Sprintf("neg-text-%03d", i), Mode: "text", Input: t, Secrets: []Secret{}})
	}
	jsons := []string{
		`{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"token-service","uid":"0f8fad5b-d9cb-469f-a165-70867728950e","etag":"NzQ3YTk2ZGUtZjY1OS00","annotations":{"backstage.io/source-location":"url:https://github.com/acme/token-service/tree/9fceb02d0ae598e95dc970b74767f19372d61af8/","sonarqube.org/project-key":"acme_token-service","vault.io/secrets-path":"secret/data/token-service","pagerduty.com/service-id":"PX7K2QZ"}},"spec":{"type":"service","owner":"group:default/platform"}}`,
		`{"name":"web","version":"3.2.1","dependencies":{"left-pad":{"version":"1.3.0","resolved":"https://registry.example.org/left-pad/-/left-pad-1.3.0.tgz","integrity":"sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQuEHHnG4lVkGPW3ZjAv/5cLv8KT2Y2hxnHrY7DQ3AOnWRPaQ=="}}}`,
		`{"env":[{"name":"DB_PASSWORD","valueFrom":{"secretKeyRef":{"name":"payments-db","key":"password"}}},{"name":"API_TOKEN","value":"${API_TOKEN}"},{"name":"LOG_LEVEL","value":"debug"}]}`,
		`{"securitySchemes":{"bearerAuth":{"type":"http","scheme":"bearer","bearerFormat":"JWT"},"apiKey":{"type":"apiKey","name":"X-API-Key","in":"header"}},"tokenUrl":"https://auth.acme.example/token"}`,
		`{"password":"********","token":"<redacted>","secret":"{{ .Values.secret }}","apiKey":"changeme","client_secret":"your-client-secret-here"}`,
		`{"commit":"e83c5163316f89bfbde7d9ab23ca2e25604af290","digest":"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","requestId":"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}`,
		`{"keyId":"kid-2024-06","publicKey":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7nQ8vJ9kq2","sortKey":"created#2024-06-01","idempotencyKey":"order-8812-retry-2"}`,
	}
	for i, j := range jsons {
		out = append(out, Case{ID: fmt.Sprintf("neg-json-%03d", i), Mode: "json", Input: j, Secrets: []Secret{}})
	}
	return out
}

// label returns the label of the first occurrence of value in text.
func label(text, value, typ string) Secret {
	i := strings.Index(text, value)
	if i < 0 {
		panic("corpus: label value not in its text: " + value)
	}
	return Secret{Start: i, End: i + len(value), Type: typ, Value: value}
}

// labelAfter returns the label of the first occurrence of value after the
// first occurrence of prefix in text ("guest:guest@": the password, not the
// user).
func labelAfter(text, prefix, value, typ string) Secret {
	i := strings.Index(text, prefix)
	if i < 0 {
		panic("corpus: label prefix not in its text: " + prefix)
	}
	s := label(text[i+len(prefix):], value, typ)
	s.Start += i + len(prefix)
	s.End += i + len(prefix)
	return s
}
