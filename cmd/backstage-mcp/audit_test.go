package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// writeReplicaLog writes n call records as replica name and returns its file.
func writeReplicaLog(t *testing.T, dir, name string, n int) string {
	t.Helper()
	cfg := audit.DefaultConfig()
	cfg.Path = filepath.Join(dir, name+".log")
	cfg.Replica = name
	l, err := audit.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rec := &audit.Record{Type: audit.TypeCall, Tool: "catalog_get_entity", Decision: audit.DecisionAllow,
			User: audit.User{Ref: "user:default/jane"}, Agent: audit.Agent{ClientID: "copilot"}, DurationMs: float64(i)}
		if err := l.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg.Path
}

func TestAuditAcrossReplicas(t *testing.T) {
	dir := t.TempDir()
	a := writeReplicaLog(t, dir, "replica-a", 3)
	b := writeReplicaLog(t, dir, "replica-b", 4)
	cases := []struct {
		name     string
		args     []string
		tamper   bool
		wantCode int
		wantOut  []string
	}{
		{name: "verify", args: []string{"verify", a, b}, wantCode: 0,
			wantOut: []string{"replica replica-a\nOK    3 records", "replica replica-b\nOK    4 records", "OK    2 replicas, 7 records in 2 files, every chain intact"}},
		{name: "query merges replicas", args: []string{"query", a, b}, wantCode: 0,
			wantOut: []string{"REPLICA", "replica-a", "replica-b", "7 record(s)"}},
		{name: "query one replica", args: []string{"query", "--replica", "replica-b", a, b}, wantCode: 0,
			wantOut: []string{"4 record(s)"}},
		{name: "summary over replicas", args: []string{"summary", a, b}, wantCode: 0,
			wantOut: []string{"TOTAL", "7 "}},
		{name: "verify tampered", args: []string{"verify", a, b}, tamper: true, wantCode: 1,
			wantOut: []string{"replica replica-a\nOK", "replica replica-b\nFAIL", "FAIL  1 of 2 replicas' chains are broken"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tamper {
				data, err := os.ReadFile(b)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(b, bytes.Replace(data, []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out, errOut bytes.Buffer
			code := runAudit(context.Background(), tc.args, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out.String(), errOut.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestAuditKeygenAndSignedVerify makes a key with `audit keygen`, writes a
// signed log with it and checks `audit verify --key` and --checkpoints,
// with the right key, another key, and a log cut at the end.
func TestAuditKeygenAndSignedVerify(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runAudit(context.Background(), args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	key := filepath.Join(dir, "audit-key.pem")
	if code, out, errOut := run("keygen", key); code != 0 || !strings.Contains(out, "key id:") {
		t.Fatalf("keygen: exit %d\n%s%s", code, out, errOut)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, %v", st, err)
	}
	if code, _, errOut := run("keygen", key); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("keygen over an existing key: exit %d, %s", code, errOut)
	}
	other := filepath.Join(dir, "other.pem")
	if code, _, _ := run("keygen", other); code != 0 {
		t.Fatal("second keygen failed")
	}

	cfg := audit.DefaultConfig()
	cfg.Path = filepath.Join(dir, "audit.log")
	cfg.Checkpoint = audit.CheckpointConfig{KeyFile: key, Every: 3, Interval: time.Hour, File: filepath.Join(dir, "copies.log")}
	l, err := audit.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 7 {
		if err := l.Append(context.Background(), &audit.Record{Type: audit.TypeCall, Tool: "catalog_get_entity", Decision: audit.DecisionAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "audit-key.pub.pem")
	code, out, errOut := run("verify", "--key", pub, "--checkpoints", cfg.Checkpoint.File, cfg.Path)
	if code != 0 || !strings.Contains(out, "signed: 3 checkpoint(s) verified with the key, records up to seq 9 signed") || !strings.Contains(out, "checkpoint copies: 3 found") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := run("verify", cfg.Path); code != 0 || !strings.Contains(out, "3 signed checkpoint(s) not checked") {
		t.Fatalf("verify without key: exit %d\n%s", code, out)
	}
	if code, out, _ := run("verify", "--key", filepath.Join(dir, "other.pub.pem"), cfg.Path); code != 1 || !strings.Contains(out, "audit.log:4: seq 4: forged: signed by key id") {
		t.Fatalf("verify with another key: exit %d\n%s", code, out)
	}
	data, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	cut := filepath.Join(dir, "cut.log")
	if err := os.WriteFile(cut, []byte(strings.Join(lines[:5], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run("verify", "--key", pub, "--checkpoints", cfg.Checkpoint.File, cut); code != 1 || !strings.Contains(out, "cut.log:5: seq 5: truncated: the log ends at seq 5 but the checkpoint copy at") {
		t.Fatalf("verify of a cut log: exit %d\n%s", code, out)
	}
	if code, _, errOut := run("verify", "--key", cfg.Path, cfg.Path); code != 2 || !strings.Contains(errOut, "--key") {
		t.Fatalf("verify --key with a log as key: exit %d, %s", code, errOut)
	}
}

// reviewerLog writes records a reviewer asks about: several users, agents
// and MCP clients, decisions, redactions, an authentication failure with
// its source, and a tool name that a spreadsheet would run as a formula.
func reviewerLog(t *testing.T) string {
	t.Helper()
	cfg := audit.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC) // 14:00 at +05:30
	jane := audit.User{Email: "jane.doe@example.com", Ref: "user:default/jane.doe"}
	bob := audit.User{Email: "bob@example.com", Ref: "user:default/bob"}
	cursor := audit.Agent{ClientID: "ide", Name: "cursor", Version: "1.2.0"}
	claude := audit.Agent{ClientID: "cli", Name: "claude-code", Version: "2.1.0"}
	recs := []audit.Record{
		{Type: audit.TypeCall, User: jane, Agent: cursor, Tool: "catalog_get_entity", Decision: audit.DecisionAllow, Entities: audit.Entities{Refs: []string{"component:default/payments"}}},
		{Type: audit.TypeCall, User: jane, Agent: cursor, Tool: "catalog_search_entities", Decision: audit.DecisionAllow, Entities: audit.Entities{Refs: []string{"component:default/payments", "component:default/ledger"}}, Redactions: map[string]int{"aws-access-key": 1}},
		{Type: audit.TypeCall, User: bob, Agent: claude, Tool: "catalog_get_entity", Decision: audit.DecisionDeny},
		{Type: audit.TypeCall, User: bob, Agent: claude, Tool: "=HYPERLINK(\"http://x\")", Decision: audit.DecisionError},
		{Type: audit.TypeAuthFailure, Decision: audit.DecisionDeny, Reason: "token expired", Source: "203.0.113.9", Count: 4},
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

func TestAuditReviewerQueries(t *testing.T) {
	log := reviewerLog(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
		notWant  []string
	}{
		{"partial user", []string{"query", "--user", "JANE", log}, 0, []string{"2 record(s)", "jane.doe@example.com"}, []string{"bob@"}},
		{"decision", []string{"query", "--decision", "deny", log}, 0, []string{"2 record(s)", "token expired from 203.0.113.9 (×4)"}, nil},
		{"redacted", []string{"query", "--redacted", log}, 0, []string{"1 record(s)", "catalog_search_entities"}, nil},
		{"ip range", []string{"query", "--ip", "203.0.113.0/24", log}, 0, []string{"1 record(s)", "auth_failure"}, nil},
		{"client", []string{"query", "--client", "claude-code 2.1", log}, 0, []string{"2 record(s)"}, []string{"jane"}},
		{"local window at +05:30", []string{"query", "--tz", "+05:30", "--since", "2026-03-02T15:00", "--until", "2026-03-02 17:00", log}, 0,
			[]string{"TIME (+05:30)", "2026-03-02 15:00:00", "2026-03-02 16:00:00", "2 record(s)"}, []string{"14:00:00", "17:00:00"}},
		{"UTC window", []string{"query", "--tz", "UTC", "--since", "2026-03-02T09:30", log}, 0, []string{"TIME (UTC)", "4 record(s)"}, nil},
		{"csv escapes formulas", []string{"query", "--format", "csv", "--user", "bob", log}, 0,
			[]string{"time,seq,replica,type,user_email", "'=HYPERLINK(\"\"http://x\"\")", "bob@example.com,user:default/bob"}, []string{",=HYPERLINK"}},
		{"json lines", []string{"query", "--json", "--redacted", log}, 0, []string{`"redactions":{"aws-access-key":1}`}, nil},
		{"summary by user, most entities first, top 1", []string{"summary", "--by", "user", "--sort", "entities", "--top", "1", log}, 0, []string{"USER", "jane.doe@example.com  2      1      3", "1 row(s)"}, []string{"bob@"}},
		{"summary by entity", []string{"summary", "--by", "entity", log}, 0, []string{"component:default/payments  2      1      3", "component:default/ledger"}, nil},
		{"summary by decision as csv", []string{"summary", "--by", "decision", "--format", "csv", log}, 0, []string{"decision,calls,users", "allowed,2,1,3", "deny,5,2,0"}, nil},
		{"summary by agent sorted by denials", []string{"summary", "--by", "agent", "--sort", "denied", log}, 0, []string{"AGENT", "cli "}, nil},
		{"summary by client as json", []string{"summary", "--by", "client", "--format", "json", log}, 0, []string{`"key": "claude-code 2.1.0"`}, nil},
		{"plain summary as csv", []string{"summary", "--format", "csv", log}, 0, []string{"user,agent,tool,calls"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := runAudit(context.Background(), tc.args, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.wantCode, out.String(), errOut.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestAuditQueryBadFlags(t *testing.T) {
	log := reviewerLog(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"query", "--decision", "maybe", log}, `--decision "maybe": want allowed, scope_denied, hidden_by_policy, rate_limited, refused, failed or deny`},
		{[]string{"query", "--ip", "10.0.0.300", log}, `--ip "10.0.0.300": want an address`},
		{[]string{"query", "--format", "xml", log}, `--format "xml": want table, json or csv`},
		{[]string{"query", "--tz", "Mars/Olympus", log}, `--tz "Mars/Olympus"`},
		{[]string{"query", "--since", "yesterday", log}, `--since: time "yesterday"`},
		{[]string{"query", "--since", "2026-03-03", "--until", "2026-03-02", log}, "the window is empty"},
		{[]string{"query", "--by", "user", log}, "flag provided but not defined: -by"},
		{[]string{"summary", "--by", "team", log}, `--by "team": want user, agent, client, entity, decision, tool or ip`},
		{[]string{"summary", "--top", "5", log}, "--top and --sort need --by"},
		{[]string{"summary", "--by", "user", "--top", "-1", log}, "--top -1"},
		{[]string{"summary", "--by", "user", "--sort", "size", log}, `--sort "size": want one of calls, entities`},
		{[]string{"query", "--type", "nap", log}, `--type "nap"`},
	} {
		var out, errOut bytes.Buffer
		if code := runAudit(context.Background(), tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}
