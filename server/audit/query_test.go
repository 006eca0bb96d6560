package audit

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func reviewLog(t *testing.T) string {
	t.Helper()
	cfg := testConfig(t)
	l := openTest(t, cfg)
	base := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	recs := []Record{
		{Type: TypeServerStart},
		{Type: TypeCall, User: User{Sub: "u1", Email: "jane@example.com", Ref: "user:default/jane"}, Agent: Agent{ClientID: "copilot"}, Tool: "get_entity", Decision: DecisionAllow, DurationMs: 10, Entities: Entities{Refs: []string{"component:default/payments"}}, Redactions: map[string]int{"aws-key": 2}},
		{Type: TypeCall, User: User{Sub: "u1", Email: "jane@example.com"}, Agent: Agent{ClientID: "copilot"}, Tool: "get_entity", Decision: DecisionAllow, DurationMs: 20},
		{Type: TypeCall, User: User{Sub: "u1", Email: "jane@example.com"}, Agent: Agent{ClientID: "copilot"}, Tool: "get_entity", Decision: DecisionDeny, DurationMs: 30},
		{Type: TypeCall, User: User{Sub: "u1", Email: "jane@example.com"}, Agent: Agent{ClientID: "copilot"}, Tool: "get_entity", Decision: DecisionRateLimited, DurationMs: 40},
		{Type: TypeCall, User: User{Sub: "u2", Email: "bob@example.com"}, Agent: Agent{Name: "cli", Version: "0.9.1"}, Tool: "search", Decision: DecisionError, DurationMs: 100, Entities: Entities{Refs: []string{"Component:default/Payments"}}},
		{Type: TypeAuthFailure, Decision: DecisionDeny, Reason: "token expired", Source: "203.0.113.7", Count: 3},
		{Type: TypeServerStop},
	}
	for i := range recs {
		recs[i].Time = base.Add(time.Duration(i) * time.Hour)
		if err := l.Append(context.Background(), &recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg.Path
}

func TestQuery(t *testing.T) {
	path := reviewLog(t)
	base := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		filter   Filter
		wantSeqs []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"user by email, any case", Filter{User: "JANE@example.com"}, []uint64{2, 3, 4, 5}},
		{"allowed matches old allow", Filter{Decision: DecisionAllowed}, []uint64{2, 3}},
		{"failed matches old error", Filter{Decision: DecisionFailed}, []uint64{6}},
		{"denied matches every denial", Filter{Decision: "denied"}, []uint64{4, 7}},
		{"rate_limited", Filter{Decision: DecisionRateLimited}, []uint64{5}},
		{"user by ref", Filter{User: "user:default/jane"}, []uint64{2}},
		{"user by sub", Filter{User: "u2"}, []uint64{6}},
		{"user by part of the email", Filter{User: "Jan"}, []uint64{2, 3, 4, 5}},
		{"user by part of the ref", Filter{User: "default/ja"}, []uint64{2}},
		{"user part matches nobody", Filter{User: "janet"}, nil},
		{"client by name and version", Filter{Client: "CLI 0.9"}, []uint64{6}},
		{"client needs a client name", Filter{Client: "copilot"}, nil},
		{"redacted", Filter{Redacted: true}, []uint64{2}},
		{"ip exact", Filter{IP: netip.MustParsePrefix("203.0.113.7/32")}, []uint64{7}},
		{"ip in a range", Filter{IP: netip.MustParsePrefix("203.0.113.0/24")}, []uint64{7}},
		{"ip outside", Filter{IP: netip.MustParsePrefix("198.51.100.0/24")}, nil},
		{"agent by client id", Filter{Agent: "copilot"}, []uint64{2, 3, 4, 5}},
		{"agent by name", Filter{Agent: "cli"}, []uint64{6}},
		{"tool", Filter{Tool: "search"}, []uint64{6}},
		{"decision", Filter{Decision: DecisionDeny}, []uint64{4, 7}},
		{"type", Filter{Type: TypeAuthFailure}, []uint64{7}},
		{"entity ignores case", Filter{Entity: "component:default/payments"}, []uint64{2, 6}},
		{"since inclusive, until exclusive", Filter{Since: base.Add(2 * time.Hour), Until: base.Add(4 * time.Hour)}, []uint64{3, 4}},
		{"combined", Filter{User: "jane@example.com", Decision: DecisionAllow, Since: base.Add(2 * time.Hour)}, []uint64{3}},
		{"nothing", Filter{Tool: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Query([]string{path}, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, r := range res.Records {
				got = append(got, r.Seq)
			}
			if len(got) != len(tt.wantSeqs) {
				t.Fatalf("seqs = %v, want %v", got, tt.wantSeqs)
			}
			for i := range got {
				if got[i] != tt.wantSeqs[i] {
					t.Fatalf("seqs = %v, want %v", got, tt.wantSeqs)
				}
			}
		})
	}
}

func TestSummary(t *testing.T) {
	res, err := Query([]string{reviewLog(t)}, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := Summary(res.Records)
	want := []SummaryRow{
		{User: "-", Agent: "-", Tool: "(auth)", Calls: 3, Outcomes: Outcomes{Denied: 3}, P50Ms: 0, P95Ms: 0},
		{User: "bob@example.com", Agent: "cli", Tool: "search", Calls: 1, Outcomes: Outcomes{Errors: 1}, P50Ms: 100, P95Ms: 100},
		{User: "jane@example.com", Agent: "copilot", Tool: "get_entity", Calls: 4, Outcomes: Outcomes{Denied: 1, RateLimited: 1, Redactions: 2}, P50Ms: 20, P95Ms: 40},
	}
	if len(got) != len(want) {
		t.Fatalf("Summary = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one", []float64{7}, 95, 7},
		{"p50 of four", []float64{1, 2, 3, 4}, 50, 2},
		{"p95 of twenty", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 95, 19},
		{"p100", []float64{1, 2, 3}, 100, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.values, tt.p); got != tt.want {
				t.Errorf("percentile = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRollUp(t *testing.T) {
	res, err := Query([]string{reviewLog(t)}, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		key                    string
		calls, users, entities int
	}
	tests := []struct {
		by   RollupKey
		sort string
		top  int
		want []row
	}{
		{ByUser, "calls", 0, []row{{"jane@example.com", 4, 1, 1}, {"-", 3, 1, 0}, {"bob@example.com", 1, 1, 1}}},
		{ByUser, "calls", 1, []row{{"jane@example.com", 4, 1, 1}}},
		{ByAgent, "calls", 0, []row{{"copilot", 4, 1, 1}, {"-", 3, 1, 0}, {"cli", 1, 1, 1}}},
		{ByClient, "calls", 0, []row{{"-", 7, 2, 1}, {"cli 0.9.1", 1, 1, 1}}},
		{ByEntity, "calls", 0, []row{{"component:default/payments", 2, 2, 2}}},
		// Old spellings (allow, error) roll up under the current ones.
		{ByDecision, "calls", 0, []row{{"deny", 4, 2, 0}, {"allowed", 2, 1, 1}, {"failed", 1, 1, 1}, {"rate_limited", 1, 1, 0}}},
		{ByDecision, "entities", 2, []row{{"allowed", 2, 1, 1}, {"failed", 1, 1, 1}}},
		{ByTool, "calls", 0, []row{{"get_entity", 4, 1, 1}, {"(auth)", 3, 1, 0}, {"search", 1, 1, 1}}},
		{ByIP, "calls", 0, []row{{"-", 5, 2, 2}, {"203.0.113.7", 3, 1, 0}}},
	}
	for _, tt := range tests {
		rows, err := RollUp(res.Records, tt.by, tt.sort, tt.top)
		if err != nil {
			t.Fatal(err)
		}
		var got []row
		for _, r := range rows {
			got = append(got, row{r.Key, r.Calls, r.Users, r.Entities})
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("RollUp(%s, %s, %d) = %v, want %v", tt.by, tt.sort, tt.top, got, tt.want)
		}
	}
	if _, err := RollUp(res.Records, "team", "calls", 0); err == nil {
		t.Error("RollUp by an unknown key succeeded")
	}
	if _, err := RollUp(res.Records, ByUser, "size", 0); err == nil {
		t.Error("RollUp sorted by an unknown column succeeded")
	}
}
