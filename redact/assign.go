package redact

import (
	"bytes"
	"strings"
)

// findAssignments is the fast path of the two generic rules. Instead of
// running their regular expressions over the whole text it starts from each
// keyword hit (pairs of keyword index and end offset) and parses what
// follows. The result has the shape of FindAllSubmatchIndex for a pattern
// with groups (name, secret).
//
// assignment (generic-secret): NAME [quote] (: | = | := | =>) [|, >] [quote] VALUE
// where NAME is the word around the keyword.
// prose (generic-keyword-entropy): KEYWORD [up to five words] [: | =] [quote] VALUE.
func (r *Redactor) findAssignments(text []byte, hits []int, prose bool) [][]int {
	var out [][]int
	lastEnd := -1
	for i := 0; i+1 < len(hits); i += 2 {
		kw := r.m.keywords[hits[i]]
		end := hits[i+1]
		start := end - len(kw)
		if start < lastEnd {
			continue
		}
		var m []int
		if prose {
			m = parseProse(text, start, end, kw)
		} else {
			m = parseAssignment(text, start, end)
		}
		if m != nil {
			out = append(out, m)
			lastEnd = m[1]
		}
	}
	return out
}

func isNameByte(c byte) bool {
	return isWordByte(c) || c == '.' || c == '-'
}

// valueEnd returns the end of a generic value starting at i.
func valueEnd(text []byte, i, maxLen int) int {
	j := i
	for j < len(text) && j-i < maxLen {
		c := text[j]
		if c <= ' ' || strings.IndexByte("\"'\\\\,;<>&`", c) >= 0 {
			break
		}
		j++
	}
	return j
}

func skipBlanks(text []byte, i int) int {
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	return i
}

func skipQuote(text []byte, i int) int {
	if i < len(text) && text[i] == '\\' && i+1 < len(text) && (text[i+1] == '"' || text[i+1] == '\'') {
		return i + 2
	}
	if i < len(text) && (text[i] == '"' || text[i] == '\'') {
		return i + 1
	}
	return i
}

func parseAssignment(text []byte, ks, ke int) []int {
	ns := ks
	for ns > 0 && isNameByte(text[ns-1]) {
		ns--
	}
	ne := ke
	for ne < len(text) && isNameByte(text[ne]) {
		ne++
	}
	i := skipQuote(text, ne)
	i = skipBlanks(text, i)
	switch {
	case i+1 < len(text) && text[i] == ':' && text[i+1] == '=', i+1 < len(text) && text[i] == '=' && text[i+1] == '>':
		i += 2
	case i < len(text) && (text[i] == ':' || text[i] == '='):
		i++
	default:
		return nil
	}
	i = skipBlanks(text, i)
	if i < len(text) && (text[i] == '|' || text[i] == '>') {
		j := i + 1
		if j < len(text) && (text[j] == '-' || text[j] == '+') {
			j++
		}
		j = skipBlanks(text, j)
		if j < len(text) && text[j] == '\r' {
			j++
		}
		if j < len(text) && text[j] == '\n' {
			i = j + 1
			for i < len(text) && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r') {
				i++
			}
		}
	}
	q := i
	i = skipQuote(text, i)
	ve := valueEnd(text, i, 400)
	if i > q {
		ve = max(ve, quotedEnd(text, i, text[i-1]))
		if ve > i && ve < len(text) && (text[ve] == ' ' || text[ve] == '\t') && strings.IndexByte("+.&|", text[i]) < 0 && isPasswordSlot(string(text[ns:ne])) {
			// A quoted passphrase holds blanks ("password = 'open sesame'"):
			// under a password name the quotes, not the blank, end it.
			ve = max(ve, phraseEnd(text, i, text[i-1]))
		}
	}
	if ve-i < 6 && !(isShortPassword(text[i:ve]) && isPasswordSlot(string(text[ns:ne])) && (i > q || endsLine(text, ve))) {
		// Shorter values are judged by no rule (genericValueOK wants 8,
		// chosenValueOK 6), except a short word under a password name that
		// is quoted or ends its line, which is the password ("password:
		// guest"); one that prose goes on after is not ("password: any
		// kind of string").
		return nil
	}
	if ne-ns == 3 && bytes.EqualFold(text[ns:ne], []byte("key")) && attrFollows(text, ve, "value") {
		return nil // <add key="NAME" value="…">: the key attribute names a setting
	}
	return []int{ns, ve, ns, ne, i, ve}
}

// quotedEnd returns the end of a value opened by quote q at i: the matching
// quote on the same line when the value between holds no blank, so that a
// quoted secret holding ';', ',', '<', '&', a backquote or the other quote is
// taken whole rather than cut at that byte; else i.
func quotedEnd(text []byte, i int, q byte) int {
	if i < len(text) && strings.IndexByte("\"'$", text[i]) >= 0 {
		return i // quotes within quotes, a reference: shell concatenation ("'$X'"), not a literal
	}
	for j := i; j < len(text) && j-i <= 400; j++ {
		switch c := text[j]; {
		case c == q:
			if j > i && text[j-1] == '\\' {
				return j - 1 // an escaped closing quote: \"value\"
			}
			return j
		case c <= ' ':
			return i
		}
	}
	return i
}

// phraseEnd returns the end of a quoted value opened by quote q at i that
// may hold blanks: the matching quote on the same line within 200 bytes,
// else i. The caller has checked that the value starts with no blank and
// no concatenation operator; a value that ends with one is the text between
// two string literals ("Password: " + get() + ","), not a literal.
func phraseEnd(text []byte, i int, q byte) int {
	for j := i; j < len(text) && j-i <= 200; j++ {
		switch text[j] {
		case q:
			if text[j-1] == ' ' || text[j-1] == '\t' || strings.IndexByte("+.&|", text[j-1]) >= 0 {
				return i // "…" + expr + "…": the outside of two string literals
			}
			if text[j-1] == '\\' {
				return j - 1
			}
			return j
		case '\n', '\r':
			return i
		}
	}
	return i
}

// attrFollows reports whether the quoted value ending at e is followed by the
// attribute name (` value=`).
func attrFollows(text []byte, e int, name string) bool {
	e = skipQuote(text, e)
	j := skipBlanks(text, e)
	if j == e || j+len(name) >= len(text) {
		return false
	}
	k := skipBlanks(text, j+len(name))
	return bytes.EqualFold(text[j:j+len(name)], []byte(name)) && k < len(text) && text[k] == '='
}

func parseProse(text []byte, ks, ke int, kw string) []int {
	if ks > 0 && isWordByte(text[ks-1]) || ke < len(text) && isWordByte(text[ke]) {
		// Whole words only, except a plural "credentials".
		if !(kw == "credential" && ke < len(text) && text[ke] == 's' && (ke+1 == len(text) || !isWordByte(text[ke+1]))) {
			return nil
		}
		ke++
	}
	if kw == "key" {
		p := strings.ToLower(string(text[max(0, ks-7):ks]))
		p = strings.TrimRight(p, " _-")
		if !strings.HasSuffix(p, "api") && !strings.HasSuffix(p, "access") {
			return nil
		}
	}
	i := ke
	// Up to five short words ("for the sandbox is").
	for w := 0; w < 5; w++ {
		j := skipBlanks(text, i)
		if j == i {
			break
		}
		k := j
		for k < len(text) && k-j <= 12 && (text[k] >= 'a' && text[k] <= 'z' || text[k] >= 'A' && text[k] <= 'Z') {
			k++
		}
		if k == j || k-j > 12 || (k < len(text) && text[k] != ' ' && text[k] != '\t' && text[k] != ':' && text[k] != '=') {
			break
		}
		// Keep the word only if a value can follow it.
		i = k
	}
	j := skipBlanks(text, i)
	if j < len(text) && (text[j] == ':' || text[j] == '=') {
		j = skipBlanks(text, j+1)
	} else if j == i {
		// No separator after the last word: back off to the keyword.
		j = skipBlanks(text, ke)
		if j == ke {
			return nil
		}
	}
	if j < len(text) && strings.IndexByte("\"'`", text[j]) >= 0 {
		j++
	}
	if j >= len(text) || !(isWordByte(text[j]) && text[j] != '_' || text[j] == '+' || text[j] == '/') {
		return nil
	}
	ve := j
	for ve < len(text) && ve-j < 200 && (isWordByte(text[ve]) || strings.IndexByte("+/-.=~!@#$%^&*", text[ve]) >= 0) {
		ve++
	}
	if ve-j < 16 {
		return nil
	}
	return []int{ks, ve, j, ve}
}

// endsLine reports whether only blanks follow text[i:] up to the end of
// its line or of the text.
func endsLine(text []byte, i int) bool {
	i = skipBlanks(text, i)
	return i == len(text) || text[i] == '\n' || text[i] == '\r'
}
