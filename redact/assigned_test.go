package redact_test

import (
	"strings"
	"testing"
)

// TestAssignedShapes: a random value assigned directly to a name that is no
// credential word (the vendor's name alone) is redacted in every
// assignment shape; the values and names that hold random data that is no
// secret are kept (the look-alikes of testdata/redact/lookalike and of
// Backstage and Kubernetes text).
func TestAssignedShapes(t *testing.T) {
	r := newRedactor(t)
	v := "Zr8KqP3xV7mN2bT9wL4cH6jF1sD5gY0u" // 32 base-62 characters, no sequence
	shapes := map[string]string{
		"env":               "ZORBIT=" + v,
		"env export":        "export ZORBIT=\"" + v + "\"",
		"yaml":              "zorbit:\n  endpoint: https://api.zorbit.invalid\nzorbit_prod: " + v + "\n",
		"json":              `{"zorbit": "` + v + `"}`,
		"properties":        "zorbit.prod=" + v,
		"toml":              "[vendors]\nzorbit = '" + v + "'",
		"code":              `zorbit := "` + v + `"`,
		"ruby hash":         `{ zorbit => "` + v + `" }`,
		"http header":       "X-Zorbit: " + v,
		"flag":              "zorbit-cli deploy --zorbit=" + v + " --region eu",
		"docker env":        "docker run -e ZORBIT=" + v + " acme/app",
		"name and value":    "zorbit " + v,
		"indented line":     "  ZORBIT   " + v + "\r\n",
		"padded with a run": "zorbit=" + v + "defghijklmnop",
	}
	for name, in := range shapes {
		if out, _ := r.Text(in); strings.Contains(out, v) {
			t.Errorf("%s: kept: %q", name, out)
		}
	}
	// In a URL query the note is text of its own.
	if out, _, err := r.KeyedValue("url", "https://wiki.acme.invalid/setup?note=zorbit+"+v); err != nil || strings.Contains(out.(string), v) {
		t.Errorf("url note: kept %q (%v)", out, err)
	}
	lookalikes := []string{
		// not random enough, or not a value of its own
		"zorbit=Zr8KqP3xV7mN2bT9wL4cH6jF1sD5g",              // 29 characters
		"zorbit=9b1f0c7e4a2d8e6f3b5c1a9d7e2f4b80aa11bb22",   // hex: a commit id
		"zorbit=3f0c2a9e-7b41-4d6a-9c1e-52b8f0d4a7e3",       // a UUID
		"zorbit=abcdefghijklmnopqrstuvwxyz0123456789ABCD",   // a stand-in
		"zorbit=Qm7aR2kF9XyLpTzWvNs1234567890abcdefghijk",   // a short random part and a sequence
		"zorbit=ZorbitPaymentsGatewayProductionCluster2024", // words
		"zorbit=/var/lib/zorbit/Zr8KqP3xV7mN2bT9wL4cH6jF1sD5gY0u",
		"see zorbit " + v + " for details", // prose goes on
		"url=https://zorbit.invalid/" + v,
		"https://api.zorbit.invalid/v1?state=" + v + "&code=" + v, // one-time values of a URL query
		"zorbit=" + v + "@zorbit.invalid",
		// names of random values that are no secret
		"h1:" + v + "=",
		"github.com/acme/zorbit v1.2.3 h1:" + v + "=",
		"  integrity: " + v,
		"checksum=" + v,
		"commitSha: " + v,
		"x-request-id: " + v,
		"x-amz-id-2: 8CTEZYTpdHK1rEb3ytpvpmXCKrdFJCwFzUzqXmsA6qFqjBm0XxvVzZTGFnkHP6cDUa2qWlQpYb4=",
		"nonce=" + v,
		"state: " + v,
		"signature: " + v,
		"fingerprint = " + v,
		"caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM1ekNDQWMrZ0F3SUJBZ0lCQURBTkJna3Foa2lHOXcwQkFRc0ZBREFWTVJNd0VRWURWUVFERXdwcmRXSmwK",
		`{"kty": "RSA", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W", "e": "AQAB"}`,
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxyzQ8kP2mW9vRtL5nB3cJ7hF4dA6sE1uY0iO9pK2lM",
		"icon: iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
		"wallet: bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
		"publicKey: " + v,
		"pageCursor: " + v,
		"uid: " + v,
		"traceparent: " + v,
		"std::" + v,
	}
	for _, in := range lookalikes {
		if out, rep := r.Text(in); out != in {
			t.Errorf("look-alike redacted: %q -> %q (%v)", in, out, rep.Counts)
		}
	}
}

// TestAssignedCompoundKept: values made of parts no random token has (a
// pair inside the value, a host and a path) are kept; the demo catalog's
// own contacts line was redacted whole before.
func TestAssignedCompoundKept(t *testing.T) {
	r := newRedactor(t)
	for _, s := range []string{
		"component:default/checkout-service's own contacts: pagerduty.com/service-id=PCHK7Q2 slack.com/channel=checkout-alerts",
		"contacts: pagerduty.com/service-id=PCHK7Q2",
		"see: docs.acme-retail.example/runbooks/Checkout2024",
		"labels: tier=1,team=checkout,region=eu-west-1a9",
		// An entity ref as an argument (the bench's generated names):
		// its namespace and name are a path.
		"component:default/notification-worker-12345",
		"component:default/payments_gateway_v2_eu_west_1_primary",
		"api:default/ledger.events.v3-7f3k2m9q8w",
	} {
		out, rep := r.Text(s)
		if rep.Total() != 0 || out != s {
			t.Errorf("%q: redacted %v: %q", s, rep.Counts, out)
		}
	}
}
