package redact

import "testing"

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
