package redact

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want string
		removed        int
	}{
		{"ascii unchanged", "hello world", "hello world", 0},
		{"zero width", "pass\u200bword\u200c\u200d", "password", 3},
		{"tag characters", "ok\U000E0049\U000E0047\U000E004E\U000E007F", "ok", 4},
		{"bidi controls", "a\u202eb\u2066c\u2069\u200f", "abc", 4},
		{"bom and soft hyphen", "\ufeffsoft\u00adware", "software", 2},
		{"variation selectors on text", "x\ufe0fy\U000E0100", "xy", 2},
		{"emoji zwj sequence kept", "team \U0001F468\u200d\U0001F469\u200d\U0001F467 \u2764\ufe0f", "team \U0001F468\u200d\U0001F469\u200d\U0001F467 \u2764\ufe0f", 0},
		{"zwj outside emoji removed", "a\u200db", "ab", 1},
		{"invalid utf8 kept", "a\xffb\u2060", "a\xffb", 1},
		{"other scripts kept", "café Ω 日本", "café Ω 日本", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n := Sanitize(tc.in)
			if got != tc.want || n != tc.removed {
				t.Fatalf("Sanitize(%q) = %q, %d; want %q, %d", tc.in, got, n, tc.want, tc.removed)
			}
			again, n2 := Sanitize(got)
			if again != got || n2 != 0 {
				t.Fatalf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

// referenceSanitize is sanitizeMap's removal loop rune by rune, as it was
// before ASCII runs were copied whole.
func referenceSanitize(s string) (string, int, []int) {
	var buf []byte
	var starts []int
	removed := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError && isInvisible(r) && !keepJoiner(s, i, r, size) {
			removed++
			i += size
			continue
		}
		buf = append(buf, s[i:i+size]...)
		for k := 0; k < size; k++ {
			starts = append(starts, i+k)
		}
		i += size
	}
	return string(buf), removed, append(starts, len(s))
}

func TestSanitizeEqualsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 29))
	parts := []string{"a", "token", " ", "\n", "é", "\u200b", "\u2066", "\U000E0041", "\u200d", "\U0001F468", "\ufe0f", "\xff", "0123456789abcdef", "\u00ad"}
	for i := 0; i < 5000; i++ {
		var b strings.Builder
		for n := rng.IntN(60); n > 0; n-- {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		s := b.String()
		got, n, starts := sanitizeMap(s, true)
		want, wn, wstarts := referenceSanitize(s)
		if n == 0 {
			if got != s || wn != 0 {
				t.Fatalf("%q: nothing removed but reference removed %d", s, wn)
			}
			continue
		}
		if got != want || n != wn || !reflect.DeepEqual(starts, wstarts) {
			t.Fatalf("%q: got %q %d, reference %q %d", s, got, n, want, wn)
		}
	}
}
