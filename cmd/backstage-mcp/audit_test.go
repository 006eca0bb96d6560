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
