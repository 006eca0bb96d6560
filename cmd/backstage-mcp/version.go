package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// Release builds stamp these with
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// (see .goreleaser.yaml and the Makefile). They are package variables only
// because the linker can set nothing else; nothing writes them at run time.
// Unset, the values come from the build information that `go build` and
// `go install` stamp into every binary.
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildVersion is what `backstage-mcp version` prints.
type buildVersion struct {
	Version  string // module version, e.g. v1.2.3, or "dev"
	Commit   string // VCS revision
	Date     string // commit or build time, RFC 3339
	Modified bool   // the work tree had uncommitted changes
	Go       string // Go toolchain
}

// resolveVersion merges the linker-stamped values (which win) with the
// build information. info may be nil (binaries built without module
// support).
func resolveVersion(info *debug.BuildInfo, ldVersion, ldCommit, ldDate string) buildVersion {
	v := buildVersion{Version: ldVersion, Commit: ldCommit, Date: ldDate}
	if info != nil {
		v.Go = info.GoVersion
		if v.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				if v.Date == "" {
					v.Date = s.Value
				}
			case "vcs.modified":
				v.Modified = ldCommit == "" && s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}

// String is the one-line form used as the MCP server version and in the
// User-Agent sent to Backstage.
func (v buildVersion) String() string {
	s := v.Version
	if v.Version == "dev" && v.Commit != "" {
		s += "+" + shortCommit(v.Commit)
		if v.Modified {
			s += ".dirty"
		}
	}
	return s
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func (v buildVersion) write(w io.Writer) {
	fmt.Fprintln(w, "backstage-mcp", v.Version)
	field := func(k, val string) {
		if val != "" {
			fmt.Fprintf(w, "  %-8s %s\n", k+":", val)
		}
	}
	c := v.Commit
	if c != "" && v.Modified {
		c += " (modified)"
	}
	field("commit", c)
	field("built", v.Date)
	field("go", v.Go)
}

// currentVersion reads this binary's version.
func currentVersion() buildVersion {
	info, _ := debug.ReadBuildInfo()
	return resolveVersion(info, strings.TrimSpace(version), strings.TrimSpace(commit), strings.TrimSpace(date))
}

// appVersion is the one-line version of this binary.
func appVersion() string { return currentVersion().String() }

func runVersion(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: backstage-mcp version   (or backstage-mcp --version)

Prints the version, the VCS commit, the build time and the Go version.
`)
	}
	if code, done := parseFlagsOnly(fs, args, stdout, stderr, failer("version", stderr)); done {
		return code
	}
	currentVersion().write(stdout)
	return 0
}
