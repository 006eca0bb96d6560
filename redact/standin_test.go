package redact

import (
	"strings"
	"testing"
)

// TestTemplateVetoes: explicit template syntax is the one body check that
// applies to format matches as well as to key-context values, at any length.
func TestTemplateVetoes(t *testing.T) {
	long := strings.Repeat("Zq7xP9mK", 4)
	// Template syntax inside a value, at any length.
	for _, s := range []string{"${AWS_SECRET}", "{{ .Values.token }}", "<your-token>", "$TOKEN",
		"<%= ENV[\"NEW_RELIC_LICENSE_KEY\"] %>", "#{datastore['DBPASSWORD']}"} {
		if !isTemplate(s) || !standIn(s) || !standIn(s+long) {
			t.Errorf("%q: not taken for a template", s)
		}
	}
	// Whole-value forms: a variable, a format-string or filtering name.
	for _, s := range []string{"%API_KEY%", "{XAccessKey}", "@db.password@"} {
		if !isTemplate(s) || !standIn(s) || isTemplate(s+long) {
			t.Errorf("%q: not taken for a template", s)
		}
	}
	// Masks are kept at any length; documentation words and runs only when short.
	if !standIn("###### dbname=apache_auth") || !standIn(strings.Repeat("*", 40)) {
		t.Error("a mask is not a stand-in")
	}
	if standIn("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") || standIn(strings.Repeat("x", maxStandInLen+1)) {
		t.Error("a long value is a stand-in by its words or runs")
	}
	if !standIn("your-client-secret-here") || !standIn(strings.Repeat("x", maxStandInLen)) {
		t.Error("a short stand-in is not one")
	}
	for _, s := range []string{"ghp_" + strings.Repeat("x", 36), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "Qm7>Zr4Lp9wX2"} {
		if isTemplate(s) {
			t.Errorf("%q: taken for a template", s)
		}
	}
}
