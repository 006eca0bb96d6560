//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
)

// Shared by every test of the package: one real Backstage, one binary.
var (
	bs       *harness.Backstage
	binary   string
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, _ := os.Getwd()
	root, err := harness.FindRepoRoot(wd)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	tmp, err := os.MkdirTemp("", "backstage-mcp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binary = filepath.Join(tmp, "backstage-mcp")
	build := exec.Command("go", "build", "-race", "-o", binary, "./cmd/backstage-mcp")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build backstage-mcp:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	b, stop, err := harness.StartProcess(ctx, harness.Options{RepoRoot: root, LogFile: filepath.Join(tmp, "backstage.log")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start Backstage:", err)
		return 1
	}
	defer stop()
	bs = b
	fmt.Fprintf(os.Stderr, "real Backstage at %s with %d entities\n", bs.BaseURL, bs.Entities)
	return m.Run()
}
