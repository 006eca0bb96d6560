package redact

import (
	"net/url"
	"strings"
	"testing"
)

// TestEncodedRegions: the regions of a long text are the lines that hold
// an encoded byte with the line before and after, merged; a '+' outside a
// query and a '%' without two hex digits encode nothing.
func TestEncodedRegions(t *testing.T) {
	filler := strings.Repeat("plain line of a definition, 100% a+b, is it? yes+no\n", 100)
	filler = strings.ReplaceAll(filler, "\\n", "\n")
	text := filler + "a\nb %41 c\nd\n" + filler + "e\nf\\n\ng ?q=x+y\nh\n" + filler
	regs := encodedRegions([]byte(text))
	want := []string{"a\nb %41 c\nd\n", "e\nf\\n\ng ?q=x+y\nh\n"}
	if len(regs) != len(want) {
		t.Fatalf("regions %v, want %d", regs, len(want))
	}
	for i, g := range regs {
		if got := text[g[0]:g[1]]; got != want[i] {
			t.Errorf("region %d: %q want %q", i, got, want[i])
		}
	}
}

// TestDecodedSecretInLongText: in a text long enough for the regions, a
// secret that only decoding reveals is found, in a query on its own line
// and as a value on the line after its key.
func TestDecodedSecretInLongText(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	filler := strings.Repeat("description: a plain line of an API definition, nothing to see\n", 64)
	tok := "ghp_" + "R7xQ2mK9vL3pW8sT1yZ4bN6cF0dH5jG2aE9u"
	pw := "Zq7xP9mK2vL8Tn4wQ1rB"
	for _, tc := range []struct{ name, in, secret string }{
		{"query", filler + "see https://wiki.acme.invalid/setup?note=" + url.QueryEscape("the token is "+tok) + "\n" + filler, tok},
		{"form-encoded query", filler + "see https://wiki.acme.invalid/setup?note=" + url.QueryEscape("api_key = "+pw) + "\n" + filler, pw},
		{"json escapes", filler + `{"cfg":"{\"api_key\":\"` + pw + `\"}"}` + "\n" + filler, pw},
		{"percent-encoded key", filler + "api%5Fkey%3D" + pw + "\n" + filler, pw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, rep := r.Text(tc.in)
			if strings.Contains(out, tc.secret) || rep.Total() == 0 {
				t.Fatalf("secret survived (%v)", rep.Counts)
			}
			if !strings.HasPrefix(out, filler[:200]) {
				t.Fatalf("filler changed")
			}
		})
	}
}
