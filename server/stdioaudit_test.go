package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestStdioDefaultAuditPerUser: an IDE starts a direct stdio server in the
// developer's repository, or in a folder it may not write. The default
// audit trail goes to the user's state folder instead of the working
// directory, and a second server (another IDE window) keeps a trail of its
// own beside the first instead of exiting on the lock.
func TestStdioDefaultAuditPerUser(t *testing.T) {
	policyFile, err := filepath.Abs(filepath.Join("..", "testdata", "minimal", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	wd := t.TempDir()
	t.Chdir(wd)
	backstage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[],"totalItems":0,"pageInfo":{}}`))
	}))
	defer backstage.Close()
	build := func() (*bytes.Buffer, func()) {
		t.Helper()
		cfg, err := ParseConfig(nil, "", func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		cfg.Backstage.BaseURL = backstage.URL
		cfg.Backstage.Token = "t"
		cfg.Policy.File = policyFile
		var logs bytes.Buffer
		_, closeFn, err := Build(context.Background(), cfg, BuildOptions{
			Stdio: true, LocalUser: "user:default/jane.doe",
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		if err != nil {
			t.Fatalf("Build: %v; log:\n%s", err, logs.String())
		}
		return &logs, closeFn
	}
	_, close1 := build()
	defer close1()
	first := filepath.Join(state, "backstage-mcp", "audit.log")
	if _, err := os.Stat(first); err != nil {
		t.Fatalf("the first server's trail is not in the user's state folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(wd, "audit.log")); err == nil {
		t.Error("an audit.log was written in the working directory")
	}
	logs2, close2 := build()
	defer close2()
	second := filepath.Join(state, "backstage-mcp", "audit-"+strconv.Itoa(os.Getpid())+".log")
	if _, err := os.Stat(second); err != nil {
		t.Fatalf("the second server did not keep its own trail beside the first: %v; log:\n%s", err, logs2.String())
	}
}
