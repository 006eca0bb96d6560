package redact

import "unicode/utf8"

// Sanitize removes invisible Unicode from s: tag characters (U+E0000–U+E007F),
// bidirectional controls, zero-width characters and other format characters
// that render as nothing but can carry hidden instructions to a language
// model. It returns the cleaned text and the number of runes removed.
//
// A zero-width joiner between two emoji and a variation selector-16 after an
// emoji are kept, so ordinary emoji sequences survive. Invalid UTF-8 bytes are
// kept unchanged.
func Sanitize(s string) (string, int) {
	out, n, _ := sanitizeMap(s, false)
	return out, n
}

// sanitizeMap is Sanitize that can also return, for every byte of the output,
// the offset of the input byte it came from (plus one final entry len(s)).
func sanitizeMap(s string, wantMap bool) (string, int, []int) {
	first := -1
	for i := 0; i < len(s); {
		// Eight ASCII bytes at a time: none of them can be invisible.
		if i+8 <= len(s) && (uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56)&0x8080808080808080 == 0 {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if isInvisible(r) && !keepJoiner(s, i, r, size) {
			first = i
			break
		}
		i += size
	}
	if first < 0 {
		return s, 0, nil
	}
	buf := make([]byte, 0, len(s))
	var starts []int
	if wantMap {
		starts = make([]int, 0, len(s)+1)
		for i := 0; i < first; i++ {
			starts = append(starts, i)
		}
	}
	buf = append(buf, s[:first]...)
	removed := 0
	for i := first; i < len(s); {
		// A run of ASCII bytes is copied whole.
		if j := asciiEnd(s, i); j > i {
			buf = append(buf, s[i:j]...)
			if wantMap {
				for k := i; k < j; k++ {
					starts = append(starts, k)
				}
			}
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError && isInvisible(r) && !keepJoiner(s, i, r, size) {
			removed++
			i += size
			continue
		}
		buf = append(buf, s[i:i+size]...)
		if wantMap {
			for k := 0; k < size; k++ {
				starts = append(starts, i+k)
			}
		}
		i += size
	}
	if wantMap {
		starts = append(starts, len(s))
	}
	return string(buf), removed, starts
}

// asciiEnd returns the end of the run of ASCII bytes of s at i, eight
// bytes at a time where it can.
func asciiEnd(s string, i int) int {
	for i+8 <= len(s) && (uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
		uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56)&0x8080808080808080 == 0 {
		i += 8
	}
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	return i
}

// isInvisible reports whether r is a character that renders as nothing.
func isInvisible(r rune) bool {
	switch {
	case r < 0xAD:
		return false
	case r == 0xAD, r == 0x34F, r == 0x61C, r == 0x115F, r == 0x1160,
		r == 0x17B4, r == 0x17B5, r == 0x3164, r == 0xFFA0, r == 0xFEFF:
		return true
	case r >= 0x180B && r <= 0x180F: // Mongolian variation selectors, vowel separator
		return true
	case r >= 0x200B && r <= 0x200F: // zero-width space/non-joiner/joiner, LRM, RLM
		return true
	case r >= 0x202A && r <= 0x202E: // bidi embeddings and overrides
		return true
	case r >= 0x2060 && r <= 0x206F: // word joiner, invisible operators, bidi isolates, deprecated format
		return true
	case r >= 0xFE00 && r <= 0xFE0F: // variation selectors
		return true
	case r >= 0xFFF9 && r <= 0xFFFB: // interlinear annotation
		return true
	case r >= 0x1D173 && r <= 0x1D17A: // musical formatting
		return true
	case r >= 0xE0000 && r <= 0xE007F: // tag characters
		return true
	case r >= 0xE0100 && r <= 0xE01EF: // variation selectors supplement
		return true
	}
	return false
}

// isEmoji is a coarse test for pictographic runes.
func isEmoji(r rune) bool {
	return (r >= 0x1F000 && r <= 0x1FAFF) || (r >= 0x2600 && r <= 0x27BF) || (r >= 0x2190 && r <= 0x21FF) ||
		(r >= 0x2B00 && r <= 0x2BFF) || r == 0x00A9 || r == 0x00AE || r == 0x203C || r == 0x2049 || r == 0x2122
}

// keepJoiner reports whether the rune r (U+200D or U+FE0F) at s[i:i+size]
// belongs to an emoji sequence and should be kept.
func keepJoiner(s string, i int, r rune, size int) bool {
	if r != 0x200D && r != 0xFE0F {
		return false
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	if r == 0xFE0F {
		return isEmoji(prev)
	}
	if prev == 0xFE0F {
		p2, _ := utf8.DecodeLastRuneInString(s[:i-3])
		prev = p2
	}
	next, _ := utf8.DecodeRuneInString(s[i+size:])
	return isEmoji(prev) && isEmoji(next)
}
