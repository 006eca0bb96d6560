package redact

import "unicode/utf8"

// Clip returns the longest prefix of s that is at most max bytes long and
// does not cut a UTF-8 character in two. It is the one way the server
// bounds text it shows or records (descriptions, client names), so that a
// bounded string is still valid UTF-8.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
