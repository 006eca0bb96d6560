package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestIngressBudgetChargesBeforeCost: pings, which no tool limit sees,
// are charged per user before they are redacted; over the budget a user
// gets 429 with Retry-After and a JSON-RPC error; a large body spends the
// byte bucket; another user is not affected; the refusals are audited
// aggregated (one record per interval and user).
func TestIngressBudgetChargesBeforeCost(t *testing.T) {
	s, auditPath := newDemoServerYAML(t, unlimitedRates+"server:\n  ingressRate: {requests: 1, per: 1h, burst: 5}\n  ingressKiBRate: {requests: 1, per: 1h, burst: 1100}\n")
	h := s.Handler()
	init := send(t, h, "POST", "", initBody)
	if init.code != 200 {
		t.Fatalf("initialize = %d", init.code)
	}
	ping := `{"jsonrpc":"2.0","id":9,"method":"ping"}`
	codes := map[int]int{}
	var refused httpResult
	for range 20 {
		r := send(t, h, "POST", init.sid, ping)
		codes[r.code]++
		if r.code == http.StatusTooManyRequests {
			refused = r
		}
	}
	if codes[200] != 4 || codes[429] != 16 {
		t.Fatalf("20 pings with 4 messages left: %v, want 4 answered and 16 refused", codes)
	}
	if refused.hdr.Get("Retry-After") == "" || !strings.Contains(refused.body, "ingress budget") || !strings.Contains(refused.body, `"code":-32000`) {
		t.Fatalf("refusal = %+v", refused)
	}
	recs := auditTypes(t, auditPath)
	if recs["session/rate_limited"] < 1 || recs["session/rate_limited"] > 2 {
		t.Fatalf("audit: %v, want one or two aggregated rate_limited records for 16 refusals", recs)
	}
}

// TestIngressBudgetBytes: a body larger than the byte bucket's burst is
// refused before redaction; config refuses a burst that cannot hold the
// largest allowed body.
func TestIngressBudgetBytes(t *testing.T) {
	s, _ := newDemoServerYAML(t, unlimitedRates+"server:\n  maxRequestBytes: 2048\n  ingressKiBRate: {requests: 1, per: 1h, burst: 3}\n")
	h := s.Handler()
	init := send(t, h, "POST", "", initBody)
	big := `{"jsonrpc":"2.0","id":9,"method":"ping","params":{"_meta":{"x":"` + strings.Repeat("a", 1900) + `"}}}`
	if r := send(t, h, "POST", init.sid, big); r.code != http.StatusOK {
		t.Fatalf("a 2 KiB ping with 2 KiB left after initialize = %d, want 200", r.code)
	}
	if r := send(t, h, "POST", init.sid, big); r.code != http.StatusTooManyRequests {
		t.Fatalf("a second 2 KiB ping with nothing left = %d, want 429", r.code)
	}
	_, err := ParseConfig([]byte("server:\n  ingressKiBRate: {requests: 1, per: 1s, burst: 10}\n"), "", func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "server.ingressKiBRate") {
		t.Fatalf("a byte burst below maxRequestBytes: %v", err)
	}
}
