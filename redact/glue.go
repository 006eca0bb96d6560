package redact

import "strings"

// glue says what may stand right before a provider token: tokens are pasted
// into identifiers and joined to words ("bogus_sk_live_…", "prodghp_…",
// "9AKIA…"), so a known prefix is found after '_', letters and digits as
// well as after punctuation, where its format allows.
type glue uint8

const (
	glueAuto  glue = iota // decided from the pattern (see gluePattern)
	glueNone              // the match must not follow a word character (\b)
	glueUnder             // a short, plain prefix ("cio", "oy2"): after '_' too, not after a letter or digit
	glueAny               // a distinctive prefix: after any character
)

// gluePattern strips the leading word boundaries of a provider pattern and
// says which characters may stand before a match. A pattern without a
// literal prefix (one that starts with a repeated class, "[0-9a-f]{32}-us")
// keeps its \b: there no prefix says where the token starts.
func gluePattern(pattern string, g glue) (string, glue) {
	flags := ""
	body := pattern
	if strings.HasPrefix(body, "(?i)") {
		flags, body = "(?i)", body[4:]
	}
	if !strings.HasPrefix(body, `\b`) || g == glueNone {
		return pattern, glueNone
	}
	rest := body[2:]
	lit := literalPrefix(rest)
	if lit == "" && g == glueAuto {
		return pattern, glueNone
	}
	// Remove every \b that starts an alternative: at the start, after '|'
	// or after an opening group.
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		if body[i] == '\\' && i+1 < len(body) && body[i+1] == 'b' && leadPosition(body, i) {
			i++
			continue
		}
		if body[i] == '\\' && i+1 < len(body) {
			b.WriteByte(body[i])
			i++
		}
		b.WriteByte(body[i])
	}
	if g == glueAuto {
		g = glueAny
		if len(lit) <= 3 && !strings.ContainsAny(lit, "_-.") && !hexBody(rest[len(literalPrefixSource(rest, lit)):]) {
			g = glueUnder
		}
	}
	return flags + b.String(), g
}

// leadPosition reports whether the \b at body[i] starts an alternative.
func leadPosition(body string, i int) bool {
	if i == 0 {
		return true
	}
	p := body[:i]
	return strings.HasSuffix(p, "|") && !strings.HasSuffix(p, `\|`) || strings.HasSuffix(p, "(") && !strings.HasSuffix(p, `\(`) || strings.HasSuffix(p, "(?:")
}

// literalPrefix returns the fixed text a pattern starts with (after any
// opening groups), with a one-of class of single letters ("[rs]k_") read as
// one letter and an escaped dot as a dot; "" when it starts with a repeated
// class.
func literalPrefix(p string) string {
	for strings.HasPrefix(p, "(?:") || strings.HasPrefix(p, "(") && !strings.HasPrefix(p, "(?") {
		if strings.HasPrefix(p, "(?:") {
			p = p[3:]
		} else {
			p = p[1:]
		}
	}
	var out []byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			out = append(out, c)
		case c == '\\' && i+1 < len(p) && p[i+1] == '.':
			out = append(out, '.')
			i++
		case c == '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 || i+j+1 >= len(p) || strings.IndexByte("{*+?", p[i+j+1]) >= 0 || strings.ContainsAny(p[i:i+j], `-\`) {
				return string(out) // a repeated or ranged class: the prefix ends here
			}
			out = append(out, p[i+1])
			i += j
		default:
			if len(out) > 0 && strings.IndexByte("{*+?", c) >= 0 {
				out = out[:len(out)-1] // the last letter is repeated, not fixed
			}
			return string(out)
		}
	}
	return string(out)
}

// glueOK reports whether a match starting at text[s] may stand where it
// does: after a non-word character always; after '_' unless the rule
// forbids glue; after a letter or digit only for a distinctive prefix, and
// then only when the token's body does not read as words
// ("framework_test_TestSomethingLong" is no Stripe key).
func glueOK(text []byte, s, e int, g glue, prefix int) bool {
	if s == 0 || !isWordByte(text[s-1]) {
		return true
	}
	if e < len(text) && (isAlnumByte(text[e]) || text[e] == '+' || text[e] == '/') {
		// Glued at the front and running on at the back: a piece of a
		// longer base64 run (an image, a hash), not a token pasted
		// after a word.
		return false
	}
	switch g {
	case glueAny:
		if text[s-1] == '_' {
			return true
		}
		return gluedBodyOK(string(text[min(s+prefix, e):e]))
	case glueUnder:
		return text[s-1] == '_'
	}
	return false
}

// gluedBodyOK reports whether the body of a token glued to a word looks
// random: it holds a digit or a character other than a letter, or its
// letters do not split into words ("TestSomethingLong", "helperfunction").
func gluedBodyOK(b string) bool {
	if k := strings.LastIndexAny(b, "_-."); k >= 0 && k+1 < len(b) {
		b = b[k+1:] // the part after the format's last fixed separator ("sk_live_…")
	}
	words, i := 0, 0
	for i < len(b) {
		j := i
		if b[j] >= 'A' && b[j] <= 'Z' {
			j++
		}
		k := j
		for k < len(b) && b[k] >= 'a' && b[k] <= 'z' {
			k++
		}
		if k-j < 2 {
			return true // a digit, a sign, or a capital not starting a word
		}
		words++
		i = k
	}
	return words == 0
}

// literalPrefixSource returns the part of pattern p that spells lit
// (opening groups, escapes and one-letter classes included).
func literalPrefixSource(p, lit string) string {
	for n := 0; n <= len(p); n++ {
		if literalPrefix(p[:n]) == lit && (n == len(p) || literalPrefix(p[:n+1]) != lit || p[n] == '[' || p[n] == '{') {
			if n < len(p) && p[n] == '[' && literalPrefix(p[:min(len(p), n+strings.IndexByte(p[n:], ']')+1)]) != lit {
				continue
			}
			return p[:n]
		}
	}
	return p
}

// hexBody reports whether a pattern continues with a hex class: a short
// prefix before 32 or more hex digits ("SK" + 32 hex) is distinctive enough.
func hexBody(p string) bool {
	for _, h := range [...]string{"[0-9a-fA-F]{", "[0-9a-f]{", "[a-f0-9]{", "[a-fA-F0-9]{", "[A-Fa-f0-9]{"} {
		if strings.HasPrefix(p, h) {
			return true
		}
	}
	return false
}
