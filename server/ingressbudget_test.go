package server

import (
	"fmt"
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

func TestLongestJSONString(t *testing.T) {
	for in, want := range map[string]int{
		`{}`:                        0,
		`{"a":"xyz"}`:               3,
		`{"a":"x\"yz","bb":"1234"}`: 5,
		`["\\\\", "ab"]`:            4,
		`{"a":"unterminated`:        12,
	} {
		if got := longestJSONString([]byte(in)); got != want {
			t.Errorf("longestJSONString(%s) = %d, want %d", in, got, want)
		}
	}
}

// TestIngressRefusesLongStrings: a message with a string over
// server.maxRequestStringBytes is refused before redaction (a long string
// without line breaks costs redaction more than its length), with 413 and
// a message naming the limit.
func TestIngressRefusesLongStrings(t *testing.T) {
	s, _ := newDemoServerYAML(t, unlimitedRates+unlimitedIngress)
	h := s.Handler()
	init := send(t, h, "POST", "", initBody)
	long := `{"jsonrpc":"2.0","id":9,"method":"ping","params":{"_meta":{"x":"` + strings.Repeat("password=Xy7kQ2mZ9pLw3 ", 3000) + `"}}}`
	r := send(t, h, "POST", init.sid, long)
	if r.code != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "server.maxRequestStringBytes") {
		t.Fatalf("a 69 KB string = %d %s, want 413 naming the limit", r.code, r.body)
	}
	ok := `{"jsonrpc":"2.0","id":9,"method":"ping","params":{"_meta":{"x":"` + strings.Repeat("password=Xy7kQ2mZ9pLw3 ", 2000) + `"}}}`
	if r := send(t, h, "POST", init.sid, ok); r.code != http.StatusOK {
		t.Fatalf("a 46 KB string = %d %s", r.code, r.body)
	}
}

// BenchmarkIngressAdversarial is the worst case a signed-in caller can
// send within the limits: a 1 MiB ping of strings at the per-string cap,
// each packed with password=… pairs (the most expensive text to redact),
// through the whole HTTP path. MB/s is what one KiB of the ingress byte
// budget costs in CPU. The redaction budget is lifted to its maximum so
// that the walk is measured whole (at the default of 250ms such a message
// is refused part way: TestIngressRedactionBudget).
func BenchmarkIngressAdversarial(b *testing.B) {
	s, _ := newDemoServerYAML(b, unlimitedRates+strings.Replace(unlimitedIngress, "server:\n", "server:\n  ingressRedactionBudget: 1m\n", 1))
	h := s.Handler()
	init := send(b, h, "POST", "", initBody)
	var sb strings.Builder
	sb.WriteString(`{"jsonrpc":"2.0","id":9,"method":"ping","params":{"_meta":{`)
	for i := 0; sb.Len() < 1<<20-(64<<10); i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"k%d":"%s"`, i, strings.Repeat("password=Xy7kQ2mZ9pLw3 ", (64<<10)/24-1))
	}
	sb.WriteString(`}}}`)
	body := sb.String()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		if r := send(b, h, "POST", init.sid, body); r.code != http.StatusOK {
			b.Fatalf("ping = %d %s", r.code, r.body)
		}
	}
}

// TestIngressRedactionBudget: a message whose redaction takes longer than
// server.ingressRedactionBudget is refused with 413 naming the limit (the
// walk stops before the next string: nothing unchecked goes further); the
// same server answers a small message.
func TestIngressRedactionBudget(t *testing.T) {
	s, _ := newDemoServerYAML(t, unlimitedRates+"server:\n  ingressRedactionBudget: 10ms\n  ingressRate: {requests: 1000, per: 1s, burst: 1000}\n  ingressKiBRate: {requests: 100000, per: 1s, burst: 100000}\n")
	h := s.Handler()
	init := send(t, h, "POST", "", initBody)
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":9,"method":"ping","params":{"_meta":{`)
	for i := 0; b.Len() < 1000<<10; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":"%s"`, i, strings.Repeat("password=Xy7kQ2mZ9pLw3 ", 2500))
	}
	b.WriteString(`}}}`)
	r := send(t, h, "POST", init.sid, b.String())
	if r.code != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "server.ingressRedactionBudget") {
		t.Fatalf("a 1 MB message of password pairs with a 10ms budget = %d %s, want 413 naming the limit", r.code, r.body)
	}
	if r := send(t, h, "POST", init.sid, `{"jsonrpc":"2.0","id":10,"method":"ping"}`); r.code != http.StatusOK {
		t.Fatalf("a ping after the refusal = %d %s", r.code, r.body)
	}
	_, err := ParseConfig([]byte("server:\n  ingressRedactionBudget: 1ms\n"), "", func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "server.ingressRedactionBudget") {
		t.Fatalf("a 1ms budget: %v", err)
	}
}
