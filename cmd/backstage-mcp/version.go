package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"strings"
	"time"
)

// Release builds stamp these with
//
//	-ldflags "-X main.version=1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// (see .goreleaser.yaml and deploy/image/build.sh). They are package
// variables only because the linker can set nothing else; nothing writes
// them at run time. Unset, the values come from the build information that
// `go build` and `go install` stamp into every binary.
var (
	version = ""
	commit  = ""
	date    = ""
)

// One commit reports one version, whatever built it (make build, go
// install, goreleaser, the image scripts):
//
//   - a release: its tag, e.g. v1.2.3 (goreleaser's 1.2.3 gets its v back);
//   - any other commit: Go's pseudo-version form of that commit,
//     v0.0.0-YYYYMMDDhhmmss-abcdefabcdef (the commit time in UTC and 12
//     hex digits of the commit), whatever tag came before it;
//   - either one followed by +dirty when the work tree had uncommitted
//     changes;
//   - (devel) when the build recorded neither a version nor a commit (go
//     run; go build -buildvcs=false without -X flags): never a guess.
//
// Sources, first that answers: the -X main.version flag, the main
// module's version (go install module@version; go build in a checkout
// since Go 1.24), the VCS stamp (vcs.revision, vcs.time), the -X
// main.commit and main.date flags.

// develVersion is the version of a binary built without any.
const develVersion = "(devel)"

var (
	// semverRE matches v1.2.3, v1.2.3-pre, v1.2.3+meta.
	semverRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	// pseudoRE matches the three forms of Go pseudo-versions
	// (vX.0.0-T-R, vX.Y.Z+1-0.T-R, vX.Y.Z-pre.0.T-R) and captures the
	// time and the revision.
	pseudoRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+-(?:[0-9A-Za-z.-]*\.)?([0-9]{14})-([0-9a-f]{12})$`)
	hexRE    = regexp.MustCompile(`^[0-9a-f]{7,}$`)
)

// buildVersion is what `backstage-mcp version` prints.
type buildVersion struct {
	Version  string // see the rule above
	Commit   string // VCS revision
	Date     string // commit time, RFC 3339
	Modified bool   // the work tree had uncommitted changes
	Go       string // Go toolchain
}

// pseudoVersion is Go's pseudo-version form of a commit made at t.
func pseudoVersion(t time.Time, rev string) string {
	return "v0.0.0-" + t.UTC().Format("20060102150405") + "-" + rev[:12]
}

// normalVersion returns a stamped version in the rule's form, or "" if it
// is not a version (such as "dev", or a goreleaser SNAPSHOT name).
func normalVersion(s string) (v string, dirty bool) {
	s, dirty = strings.CutSuffix(strings.TrimSpace(s), "+dirty")
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		s = "v" + s
	}
	if !semverRE.MatchString(s) || strings.Contains(s, "SNAPSHOT") {
		return "", false
	}
	if m := pseudoRE.FindStringSubmatch(s); m != nil {
		if t, err := time.Parse("20060102150405", m[1]); err == nil {
			return pseudoVersion(t, m[2]), dirty
		}
	}
	return s, dirty
}

// resolveVersion applies the rule to the build information (nil for
// binaries built without module support) and the linker-stamped values.
func resolveVersion(info *debug.BuildInfo, ldVersion, ldCommit, ldDate string) buildVersion {
	var v buildVersion
	var rev, vcsTime string
	vcsModified := false
	if info != nil {
		v.Go = info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				vcsModified = s.Value == "true"
			}
		}
	}
	if !hexRE.MatchString(ldCommit) {
		ldCommit = "" // e.g. the Dockerfile's default "unknown"
	}
	v.Commit, v.Date = rev, vcsTime
	if ldCommit != "" {
		v.Commit = ldCommit
		if rev != ldCommit {
			vcsModified = false // the stamp describes another tree
		}
	}
	if ldDate != "" {
		v.Date = ldDate
	}
	dirty := false
	if s, d := normalVersion(ldVersion); s != "" {
		v.Version, dirty = s, d
	} else if info != nil && info.Main.Version != develVersion {
		v.Version, dirty = normalVersion(info.Main.Version)
	}
	if v.Version == "" && len(v.Commit) >= 12 {
		if t, err := time.Parse(time.RFC3339, v.Date); err == nil {
			v.Version = pseudoVersion(t, v.Commit)
		}
	}
	v.Modified = dirty || vcsModified
	switch {
	case v.Version == "":
		v.Version = develVersion
	case v.Modified:
		v.Version += "+dirty"
	}
	return v
}

// String is the one-line form used as the MCP server version and in the
// User-Agent sent to Backstage.
func (v buildVersion) String() string { return v.Version }

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
	if v.Version == develVersion {
		field("note", "built without version information (go run, or go build -buildvcs=false); make build or go install records it")
	}
}

// currentVersion reads this binary's version.
func currentVersion() buildVersion {
	info, _ := debug.ReadBuildInfo()
	return resolveVersion(info, version, strings.TrimSpace(commit), strings.TrimSpace(date))
}

// appVersion is the one-line version of this binary.
func appVersion() string { return currentVersion().String() }

func runVersion(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: backstage-mcp version   (or backstage-mcp --version)

Prints the version, the VCS commit, the commit time and the Go version.
A release prints its tag (v1.2.3); any other commit Go's pseudo-version
form v0.0.0-YYYYMMDDhhmmss-abcdefabcdef; +dirty marks uncommitted changes;
(devel) means the build recorded no version (go run).
`)
	}
	if code, done := parseFlagsOnly(fs, args, stdout, stderr, failer("version", stderr)); done {
		return code
	}
	currentVersion().write(stdout)
	return 0
}
