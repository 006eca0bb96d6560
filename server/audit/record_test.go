package audit

import (
	"strings"
	"testing"
)

func TestCleanUserAgent(t *testing.T) {
	long := strings.Repeat("a", MaxUserAgent+40)
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"claude-code/2.1.0 (darwin; arm64)", "claude-code/2.1.0 (darwin; arm64)"},
		{"agent/1\r\nX-Forged: yes", "agent/1??X-Forged: yes"},
		{"bad \xff utf8 \u202e bidi", "bad ? utf8 ? bidi"},
		{"Mozilla/5.0 café", "Mozilla/5.0 café"},
		{long, long[:MaxUserAgent] + "…"},
	} {
		if got := CleanUserAgent(tc.in); got != tc.want {
			t.Errorf("CleanUserAgent(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	clean := "claude-code/2.1.0"
	if n := testing.AllocsPerRun(10, func() { _ = CleanUserAgent(clean) }); n != 0 {
		t.Errorf("a clean header allocates %v times", n)
	}
}

func TestDecisionMatches(t *testing.T) {
	for _, tc := range []struct {
		rec, want Decision
		match     bool
	}{
		{DecisionAllow, DecisionAllowed, true},
		{DecisionAllowed, DecisionAllow, true},
		{DecisionError, DecisionFailed, true},
		{DecisionHiddenByPolicy, DecisionDeny, true},
		{DecisionScopeDenied, "denied", true},
		{DecisionDeny, DecisionDeny, true},
		{DecisionRefused, DecisionDeny, false},
		{DecisionRateLimited, DecisionRefused, false},
	} {
		if got := tc.rec.Matches(tc.want); got != tc.match {
			t.Errorf("%s.Matches(%s) = %v", tc.rec, tc.want, got)
		}
	}
}
