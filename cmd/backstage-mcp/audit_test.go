package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
