//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// node22Suites are the newest conformance suites. They need Node 22, which
// testdata/conformance/node22 installs from the npm package node@22 beside
// them (its binary is node_modules/node/bin/node), so the machine's own
// Node 20 keeps serving the other clients.
var node22Suites = []struct{ version, pkg, expected string }{
	{"0.1.16", "conformance-0.1.16", "testdata/conformance/expected-failures-0.1.16.yaml"},
	{"0.2.0-alpha.12", "conformance-0.2.0-alpha.12", "testdata/conformance/expected-failures-0.2.0-alpha.12.yaml"},
}

func node22Dir() string { return filepath.Join(repoRoot, "testdata", "conformance", "node22") }

func node22Bin(dir string) string { return filepath.Join(dir, "node_modules", "node", "bin", "node") }

var node22Install struct {
	once sync.Once
	err  error
}

// ensureNode22 installs testdata/conformance/node22 from its lockfile
// unless it is installed already, and returns the directory.
func ensureNode22(t *testing.T) string {
	t.Helper()
	dir := node22Dir()
	node22Install.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		node22Install.err = npmCI(ctx, dir, os.Stderr, node22Installed)
	})
	if node22Install.err != nil {
		t.Fatal(node22Install.err)
	}
	return dir
}

// node22Installed reports whether node_modules was installed from the
// current lockfile and holds Node 22 and both suites.
func node22Installed(dir string) bool {
	lockInfo, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false
	}
	hidden, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil || hidden.ModTime().Before(lockInfo.ModTime()) {
		return false
	}
	paths := []string{node22Bin(dir)}
	for _, s := range node22Suites {
		paths = append(paths, filepath.Join(dir, "node_modules", s.pkg, "dist", "index.js"))
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// TestConformanceNode22 runs conformance 0.1.16 and 0.2.0-alpha.12 (Node
// 22) against the binary in demo mode, each judged against its own
// expected-failures file by the rules of TestConformanceDemo.
func TestConformanceNode22(t *testing.T) {
	dir := ensureNode22(t)
	cfg := writeClientConfig(t, clientConfig{SessionsPerUser: 500})
	addr := freeAddr(t)
	srv := startServer(t, addr, nil, "--demo", "--insecure-local-user", localUser, "--config", cfg)
	for _, s := range node22Suites {
		t.Run(s.version, func(t *testing.T) {
			expPath := filepath.Join(repoRoot, s.expected)
			expected := loadExpectedFailures(t, expPath)
			entry := filepath.Join(dir, "node_modules", s.pkg, "dist", "index.js")
			cr := runConformanceWith(t, node22Bin(dir), dir, entry, srv.Base+"/mcp", "--expected-failures", expPath)
			judgeConformance(t, cr, expected, s.expected)
		})
	}
}
