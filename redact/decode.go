package redact

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeView decodes percent-encoding (%XX) and JSON-style backslash escapes
// (\n, \r, \t, \", \\, \/, \uXXXX) in b, and a '+' in a query (after a
// '?' in the same URL-shaped run, see formEncoded) to a blank (form
// encoding of a query: "api+key+%3D+V"). starts maps every byte of the view
// (and one past its end) to the offset in b where it came from. ok is false
// when nothing was decoded.
func decodeView(b []byte) (view []byte, starts []int, ok bool) {
	view = make([]byte, 0, len(b))
	starts = make([]int, 0, len(b)+1)
	query := false
	for i := 0; i < len(b); {
		c := b[i]
		if c == '?' {
			query = true
		} else if endsQuery(c) {
			query = false // the query ends where the URL does (formEncoded)
		}
		if c == '+' && query {
			view = append(view, ' ')
			starts = append(starts, i)
			i++
			ok = true
			continue
		}
		if c == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) {
			view = append(view, unhex(b[i+1])<<4|unhex(b[i+2]))
			starts = append(starts, i)
			i += 3
			ok = true
			continue
		}
		if c == '\\' && i+1 < len(b) {
			var d byte
			switch b[i+1] {
			case 'n':
				d = '\n'
			case 'r':
				d = '\r'
			case 't':
				d = '\t'
			case '"', '\\', '/', '\'':
				d = b[i+1]
			case 'u':
				if r, n := decodeU(b[i:]); n > 0 {
					var tmp [4]byte
					w := utf8.EncodeRune(tmp[:], r)
					for k := 0; k < w; k++ {
						view = append(view, tmp[k])
						starts = append(starts, i)
					}
					i += n
					ok = true
					continue
				}
			}
			if d != 0 {
				view = append(view, d)
				starts = append(starts, i)
				i += 2
				ok = true
				continue
			}
		}
		view = append(view, c)
		starts = append(starts, i)
		i++
	}
	starts = append(starts, len(b))
	return view, starts, ok
}

// encodedRegions returns the parts of a long text that are decoded and
// read for what decoding reveals: the lines that hold an encoded byte (a
// %XX, a backslash escape decodeView decodes, a '+' in a query), with the
// line before and the line after (a key on one line, its value on the
// next), merged where they meet; [start, end) pairs into b. The rest of the
// text is read by the text's own pass only: a 14 KB definition with one
// "?q=access+token" in it is read twice in three lines, not twice whole.
// Every region starts a line, where no escape and no query is open, so
// decoding it alone decodes it as decoding the whole text would.
func encodedRegions(b []byte) [][2]int {
	var out [][2]int
	query := false
	for k := 0; k < len(b); k++ {
		if !query {
			// Outside a query only '?', '%' and a backslash matter.
			for k < len(b) && !encodeStarts[b[k]] {
				k++
			}
			if k == len(b) {
				break
			}
		}
		c := b[k]
		enc := false
		switch {
		case c == '?':
			query = true
		case c == '+':
			enc = query
		case c == '%':
			enc = k+2 < len(b) && isHex(b[k+1]) && isHex(b[k+2])
		case c == '\\' && k+1 < len(b):
			switch b[k+1] {
			case 'n', 'r', 't', '"', '\\', '/', '\'':
				enc = true
			case 'u':
				_, n := decodeU(b[k:])
				enc = n > 0
			}
		case endsQuery(c):
			query = false
		}
		if !enc {
			continue
		}
		// The line of k, one line before, one line after.
		out = addLineRegion(out, b, k, k)
		// On to the end of k's line: an encoded byte on the next line adds
		// the line after that.
		j := bytes.IndexByte(b[k:], '\n')
		if j < 0 {
			break
		}
		k += j - 1 // the loop's k++ reads the newline, which ends any query
	}
	return out
}

// encodeStarts marks the bytes that start an encoding or a query.
var encodeStarts = [256]bool{'?': true, '%': true, '\\': true}

// decodeU decodes \uXXXX (and a following low surrogate) at the start of b.
// It returns the rune and the number of bytes consumed, or 0.
func decodeU(b []byte) (rune, int) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, 0
	}
	r, ok := hex4(b[2:6])
	if !ok {
		return 0, 0
	}
	if utf16.IsSurrogate(r) {
		if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
			if r2, ok := hex4(b[8:12]); ok {
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					return d, 12
				}
			}
		}
		return utf8.RuneError, 6
	}
	return r, 6
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		if !isHex(c) {
			return 0, false
		}
		r = r<<4 | rune(unhex(c))
	}
	return r, true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
