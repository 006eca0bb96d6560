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
	const (
		rev  = "0123456789abcdef0123456789abcdef01234567"
		tm   = "2026-11-30T10:00:00Z"
		pv   = "v0.0.0-20261130100000-0123456789ab" // the commit's pseudo-version
		path = "github.com/backstage-mcp/backstage-mcp"
	)
	info := func(mainVersion string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: path, Version: mainVersion}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	vcs := func(mainVersion, modified string) *debug.BuildInfo {
		return info(mainVersion, "vcs", "git", "vcs.revision", rev, "vcs.time", tm, "vcs.modified", modified)
	}
	tests := []struct {
		name                 string
		info                 *debug.BuildInfo
		ldVer, ldCom, ldDate string
		want                 string
		modified             bool
	}{
		// An untagged commit: every way of building it says pv.
		{"make build (go build, Go 1.24+ stamps the module version)", vcs(pv, "false"), "", "", "", pv, false},
		{"make build after an earlier tag", vcs("v1.4.1-0.20261130100000-0123456789ab", "false"), "", "", "", pv, false},
		{"go build with an older Go: VCS stamp only", vcs("(devel)", "false"), "", "", "", pv, false},
		{"go install module@commit (no VCS stamp)", info("v1.4.1-0.20261130100000-0123456789ab"), "", "", "", pv, false},
		{"goreleaser snapshot (version_template)", vcs(pv, "false"), "0.0.0-20261130100000-0123456789ab", rev, tm, pv, false},
		{"goreleaser snapshot built without VCS stamp", info("(devel)"), "0.0.0-20261130100000-0123456789ab", rev, tm, pv, false},
		{"an old SNAPSHOT name is not a version", vcs(pv, "false"), "0.4.2-SNAPSHOT-0123456", rev, tm, pv, false},
		{"image scripts: -buildvcs=false, commit and date flags", info("(devel)"), "", rev, tm, pv, false},
		{"image scripts: version flag in the rule's form", info("(devel)"), pv, rev, tm, pv, false},
		// Uncommitted changes.
		{"make build with local changes", vcs(pv+"+dirty", "true"), "", "", "", pv + "+dirty", true},
		{"older Go with local changes", vcs("(devel)", "true"), "", "", "", pv + "+dirty", true},
		{"goreleaser snapshot of a dirty tree", vcs(pv+"+dirty", "true"), "0.0.0-20261130100000-0123456789ab", rev, tm, pv + "+dirty", true},
		// A release: every way of building it says its tag.
		{"make build at a tag", vcs("v1.4.0", "false"), "", "", "", "v1.4.0", false},
		{"go install module@v1.4.0", info("v1.4.0"), "", "", "", "v1.4.0", false},
		{"goreleaser release (.Version has no v)", vcs("v1.4.0", "false"), "1.4.0", rev, tm, "v1.4.0", false},
		{"a release candidate", info("(devel)"), "1.5.0-rc.1", rev, tm, "v1.5.0-rc.1", false},
		{"make build at a tag with local changes", vcs("v1.4.0+dirty", "true"), "", "", "", "v1.4.0+dirty", true},
		// Nothing recorded: say so, never a wrong version.
		{"go run", info("(devel)"), "", "", "", "(devel)", false},
		{"no build info", nil, "", "", "", "(devel)", false},
		{"the Dockerfile's defaults", info("(devel)"), "dev", "unknown", "1970-01-01T00:00:00Z", "(devel)", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := resolveVersion(tc.info, tc.ldVer, tc.ldCom, tc.ldDate)
			if got.String() != tc.want || got.Modified != tc.modified {
				t.Fatalf("resolveVersion = %+v, want version %q, modified %v", got, tc.want, tc.modified)
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
	buildVersion{Version: "v1.2.3+dirty", Commit: "abc", Date: "2026-11-30T12:00:00Z", Modified: true, Go: "go1.26.8"}.write(&out)
	want := "backstage-mcp v1.2.3+dirty\n  commit:  abc (modified)\n  built:   2026-11-30T12:00:00Z\n  go:      go1.26.8\n"
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
