// Package testtools decides what a test does when a program it runs is not
// installed: on a developer's machine the test is skipped with one line
// naming the program and how to install it; where
// BACKSTAGE_MCP_REQUIRE_TOOLS is set (CI does), the skip becomes a failure,
// so a missing tool can never hide a regression there.
//
//	bin := testtools.Need(t, "redis-server", "redis-server")
package testtools

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireEnv is the environment variable that turns every skip for a
// missing tool into a failure.
const RequireEnv = "BACKSTAGE_MCP_REQUIRE_TOOLS"

// Required reports whether missing tools fail tests instead of skipping them.
func Required() bool {
	v := strings.TrimSpace(os.Getenv(RequireEnv))
	return v != "" && v != "0" && v != "false"
}

// Missing ends the test because the named tools are missing: a skip, or a
// failure when Required. Each entry reads "program (Debian package)".
func Missing(t testing.TB, missing ...string) {
	t.Helper()
	msg := "missing " + strings.Join(missing, ", ") + ": install with `make test-tools` (Debian/macOS) or your package manager"
	if Required() {
		t.Fatalf("%s (%s is set, so this fails instead of skipping)", msg, RequireEnv)
	}
	t.Skip(msg)
}

// Need returns the path of program, or ends the test through Missing;
// pkg is the Debian package that provides it.
func Need(t testing.TB, program, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		Missing(t, program+" ("+pkg+")")
	}
	return p
}
