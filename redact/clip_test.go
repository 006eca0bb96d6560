package redact

import (
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	cases := []struct {
		name string
		s    string
		max  int
		want string
	}{
		{"short", "abc", 5, "abc"},
		{"exact", "abc", 3, "abc"},
		{"ascii cut", "abcdef", 4, "abcd"},
		{"two-byte rune not split", "aé", 2, "a"},
		{"two-byte rune kept whole", "aéb", 3, "aé"},
		{"three-byte rune not split", "ab€", 4, "ab"},
		{"four-byte rune not split", "😀x", 3, ""},
		{"zero", "abc", 0, ""},
		{"negative", "abc", -1, ""},
		{"invalid bytes cut by bytes", "a\xff\xfeb", 2, "a\xff"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Clip(tc.s, tc.max)
			if got != tc.want {
				t.Errorf("Clip(%q, %d) = %q, want %q", tc.s, tc.max, got, tc.want)
			}
			if len(got) > max(tc.max, 0) && len(tc.s) > tc.max {
				t.Errorf("Clip(%q, %d) is %d bytes", tc.s, tc.max, len(got))
			}
			if utf8.ValidString(tc.s) && !utf8.ValidString(got) {
				t.Errorf("Clip(%q, %d) = %q is not valid UTF-8", tc.s, tc.max, got)
			}
		})
	}
}

func FuzzClip(f *testing.F) {
	for _, s := range []string{"abc", "aé", "ab€", "😀x", "a\xff\xfeb"} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Clip(s, n)
		if len(s) <= n && got != s {
			t.Fatalf("Clip(%q, %d) = %q changed a short string", s, n, got)
		}
		if len(s) > n && len(got) > max(n, 0) {
			t.Fatalf("Clip(%q, %d) = %q is too long", s, n, got)
		}
		if s[:len(got)] != got {
			t.Fatalf("Clip(%q, %d) = %q is not a prefix", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Clip(%q, %d) = %q split a character", s, n, got)
		}
	})
}
