package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveVersion(t *testing.T) {
	vcs := func(rev, tm, mod string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/backstage-mcp/backstage-mcp", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: tm}, {Key: "vcs.modified", Value: mod}}}
	}
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}
	tests := []struct {
		name                 string
		info                 *debug.BuildInfo
		ldVer, ldCom, ldDate string
		want                 buildVersion
		str                  string
	}{
		{"no build info", nil, "", "", "", buildVersion{Version: "dev"}, "dev"},
		{"go build in a clean checkout", vcs("0123456789abcdef0123", "2026-11-30T10:00:00Z", "false"), "", "", "",
			buildVersion{Version: "dev", Commit: "0123456789abcdef0123", Date: "2026-11-30T10:00:00Z", Go: "go1.26.8"}, "dev+0123456789ab"},
		{"go build with local changes", vcs("0123456789abcdef0123", "2026-11-30T10:00:00Z", "true"), "", "", "",
			buildVersion{Version: "dev", Commit: "0123456789abcdef0123", Date: "2026-11-30T10:00:00Z", Modified: true, Go: "go1.26.8"}, "dev+0123456789ab.dirty"},
		{"go install module@version", installed, "", "", "", buildVersion{Version: "v1.4.0", Go: "go1.26.8"}, "v1.4.0"},
		{"release ldflags win over build info", vcs("aaaa", "2026-01-01T00:00:00Z", "true"), "v2.0.0", "bbbb", "2026-11-30T12:00:00Z",
			buildVersion{Version: "v2.0.0", Commit: "bbbb", Date: "2026-11-30T12:00:00Z", Go: "go1.26.8"}, "v2.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := resolveVersion(tc.info, tc.ldVer, tc.ldCom, tc.ldDate)
			if got != tc.want {
				t.Fatalf("resolveVersion = %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.str {
				t.Fatalf("String() = %q, want %q", s, tc.str)
			}
		})
	}
}

func TestVersionFlagMatchesCommand(t *testing.T) {
	_, a, _ := runCLI(t, "version")
	_, b, _ := runCLI(t, "--version")
	if a != b || !strings.HasPrefix(a, "backstage-mcp ") {
		t.Fatalf("version printed %q, --version %q", a, b)
	}
}

func TestVersionCommandPrintsFields(t *testing.T) {
	var out bytes.Buffer
	buildVersion{Version: "v1.2.3", Commit: "abc", Date: "2026-11-30T12:00:00Z", Modified: true, Go: "go1.26.8"}.write(&out)
	want := "backstage-mcp v1.2.3\n  commit:  abc (modified)\n  built:   2026-11-30T12:00:00Z\n  go:      go1.26.8\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestReleaseLdflags builds the real binary with the linker flags used by
// the Makefile and .goreleaser.yaml and checks `version` prints them, so a
// renamed variable cannot silently turn releases back into "dev".
func TestReleaseLdflags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "backstage-mcp")
	ld := "-X main.version=v9.8.7 -X main.commit=feedface -X main.date=2026-11-30T12:00:00Z"
	build := exec.Command("go", "build", "-buildvcs=false", "-ldflags", ld, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	for _, want := range []string{"backstage-mcp v9.8.7\n", "commit:  feedface\n", "built:   2026-11-30T12:00:00Z\n", "go:      go1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version output %q lacks %q", out, want)
		}
	}
}
