package check

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

var distDir = flag.String("dist", "", "check the .mcpb bundles a goreleaser snapshot or release left in this directory (make release-check passes ../../../dist)")

// bundleTargets are the platforms a release packs a bundle for, as GOOS,
// GOARCH and MCPB platform.
var bundleTargets = [][3]string{
	{"darwin", "amd64", "darwin"}, {"darwin", "arm64", "darwin"},
	{"linux", "amd64", "linux"}, {"linux", "arm64", "linux"},
	{"windows", "amd64", "win32"}, {"windows", "arm64", "win32"},
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestDistBundles checks every .mcpb in -dist: listed in checksums.txt,
// its manifest valid and for its one platform at the build's version, the
// very binary goreleaser built, executable; then it unpacks the
// linux/amd64 bundle (on linux/amd64) and speaks MCP over stdio with the
// command its manifest gives.
func TestDistBundles(t *testing.T) {
	if *distDir == "" {
		t.Skip("no -dist: run by make release-check after the snapshot")
	}
	var meta struct {
		Version     string `json:"version"`
		ProjectName string `json:"project_name"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(*distDir, "metadata.json")), &meta); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, filepath.Join(*distDir, "checksums.txt"))))
	for sc.Scan() {
		if sum, name, ok := strings.Cut(sc.Text(), "  "); ok {
			sums[name] = sum
		}
	}
	found, _ := filepath.Glob(filepath.Join(*distDir, "*.mcpb"))
	if len(found) != len(bundleTargets) {
		t.Errorf("%d bundles in %s, want %d: %v", len(found), *distDir, len(bundleTargets), found)
	}
	for _, tg := range bundleTargets {
		goos, goarch, platform := tg[0], tg[1], tg[2]
		name := fmt.Sprintf("%s_%s_%s_%s.mcpb", meta.ProjectName, meta.Version, goos, goarch)
		t.Run(goos+"_"+goarch, func(t *testing.T) {
			raw := readFile(t, filepath.Join(*distDir, name))
			if sums[name] != sha256Hex(raw) {
				t.Errorf("%s: checksums.txt says %q, the file hashes to %s", name, sums[name], sha256Hex(raw))
			}
			exe := ""
			if goos == "windows" {
				exe = ".exe"
			}
			files := unzipAll(t, raw)
			var names []string
			for n := range files {
				names = append(names, n)
			}
			slices.Sort(names)
			wantNames := []string{"LICENSE", "manifest.json", "server/backstage-mcp" + exe}
			if !slices.Equal(names, wantNames) {
				t.Fatalf("%s holds %v, want %v", name, names, wantNames)
			}
			dir := t.TempDir()
			mpath := filepath.Join(dir, "manifest.json")
			if err := os.WriteFile(mpath, files["manifest.json"].data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := mcpbValidate(t, mpath); err != nil {
				t.Fatalf("mcpb validate (%s): %v\n%s", name, err, out)
			}
			m := readManifest(t, mpath)
			if m.Version != meta.Version || !slices.Equal(m.Compatibility.Platforms, []string{platform}) ||
				m.Server.EntryPoint != "server/backstage-mcp"+exe || m.Server.MCPConfig.Command != "${__dirname}/server/backstage-mcp"+exe {
				t.Errorf("%s manifest: version %q, platforms %v, entry point %q, command %q; want %s, [%s], server/backstage-mcp%s",
					name, m.Version, m.Compatibility.Platforms, m.Server.EntryPoint, m.Server.MCPConfig.Command, meta.Version, platform, exe)
			}
			bin := files["server/backstage-mcp"+exe]
			if bin.mode&0o111 == 0 {
				t.Errorf("%s: the binary is not executable (mode %v)", name, bin.mode)
			}
			built, err := filepath.Glob(filepath.Join(*distDir, fmt.Sprintf("backstage-mcp_%s_%s_*", goos, goarch), "backstage-mcp"+exe))
			if err != nil || len(built) != 1 {
				t.Fatalf("the binary goreleaser built for %s/%s: %v %v", goos, goarch, built, err)
			}
			if sha256Hex(bin.data) != sha256Hex(readFile(t, built[0])) {
				t.Errorf("%s holds a binary other than %s", name, built[0])
			}
			t.Logf("%s: %d KB, manifest %s for %s, binary from %s", name, len(raw)/1024, m.Version, platform, built[0])
			if goos == "linux" && goarch == "amd64" && canRun(goos, goarch) {
				runBundle(t, dir, files, m, meta.Version)
			}
		})
	}
}

func canRun(goos, goarch string) bool {
	out, err := exec.Command("go", "env", "GOHOSTOS", "GOHOSTARCH").Output()
	return err == nil && strings.Fields(string(out))[0] == goos && strings.Fields(string(out))[1] == goarch
}

type zipFile struct {
	data []byte
	mode os.FileMode
}

func unzipAll(t *testing.T, raw []byte) map[string]zipFile {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]zipFile{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = zipFile{data: b, mode: f.Mode()}
	}
	return files
}

// runBundle installs the bundle as a desktop client would (unpacked into a
// directory, ${__dirname} replaced by it) and runs the manifest's command.
// `version` must print the build's version; then `serve --stdio` answers
// initialize and tools/list. The manifest's --config
// ${user_config.config_file} needs a Backstage and a sign-in, so the
// session runs with --demo in its place (the embedded demo catalog).
func runBundle(t *testing.T, dir string, files map[string]zipFile, m bundleManifest, version string) {
	t.Helper()
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode.Perm()); err != nil {
			t.Fatal(err)
		}
	}
	command := strings.ReplaceAll(m.Server.MCPConfig.Command, "${__dirname}", dir)
	out, err := exec.Command(command, "version").Output()
	first, _, _ := strings.Cut(string(out), "\n")
	if err != nil || !sameVersion(strings.TrimPrefix(first, "backstage-mcp "), version) {
		t.Fatalf("%s version: %v\n%s\nwant backstage-mcp %s", command, err, out, version)
	}
	args := slices.Clone(m.Server.MCPConfig.Args)
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("manifest args %q lack --config", args)
	}
	args = slices.Replace(args, i, i+2, "--demo")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := client.NewStdioMCPClient(command, []string{"HOME=" + dir, "TMPDIR=" + dir}, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "bundle-check", Version: "1"}
	res, err := c.Initialize(ctx, init)
	if err != nil {
		t.Fatalf("initialize over stdio (%s %s): %v", command, strings.Join(args, " "), err)
	}
	if !sameVersion(res.ServerInfo.Version, version) {
		t.Errorf("serverInfo.version %q, want %s", res.ServerInfo.Version, version)
	}
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	var want []string
	for _, tl := range m.Tools {
		want = append(want, tl.Name)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("the bundle's server lists tools %v, its manifest %v", names, want)
	}
	t.Logf("unpacked bundle: %s %s answered initialize (%s %s) and tools/list (%d tools) in %d ms",
		command, strings.Join(args, " "), res.ServerInfo.Name, res.ServerInfo.Version, len(names), time.Since(start).Milliseconds())
}

// sameVersion compares the version a binary states with goreleaser's: the
// binary may put back the tag's v and mark a build of uncommitted changes
// +dirty.
func sameVersion(stated, goreleaser string) bool {
	return strings.TrimSuffix(strings.TrimPrefix(stated, "v"), "+dirty") == strings.TrimPrefix(goreleaser, "v")
}
