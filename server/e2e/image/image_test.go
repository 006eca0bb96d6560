//go:build image

package image

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/sys/unix"
)

const (
	testImage = "localhost/backstage-mcp:imagetest"
	// readmeImage is the image name in the README's run line (make
	// image-build's default).
	readmeImage = "localhost/backstage-mcp:dev"
)

// storage is the storage flag shared by buildah and podman, the same as
// deploy/image/build.sh's: none by default, so the image is in the storage
// a plain `podman run` reads.
var storage = strings.Fields(os.Getenv("BUILDAH_FLAGS"))

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repo root not found at %s: %v", dir, err)
	}
	return dir
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

type ociConfig struct {
	Created string `json:"created"`
	Config  struct {
		User         string              `json:"User"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Env          []string            `json:"Env"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"config"`
}

// buildImage runs deploy/image/build.sh and returns the image ID and the
// run line it printed.
func buildImage(t *testing.T, root string) (id, runLine string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(root, "deploy/image/build.sh"), testImage)
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s%s", err, out, stderr.String())
	}
	for _, line := range strings.Split(string(out), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "podman run ") {
			runLine = l
		}
	}
	if runLine == "" {
		t.Fatalf("build.sh printed no podman run line:\n%s", out)
	}
	return strings.TrimSpace(run(t, "buildah", append(storage, "inspect", "--type", "image", "--format", "{{.FromImageID}}", testImage)...)), runLine
}

func TestImage(t *testing.T) {
	root := repoRoot(t)
	start := time.Now()
	id, runLine := buildImage(t, root)
	t.Logf("built %s (%s) in %s; build.sh printed: %s", testImage, id[:12], time.Since(start).Round(time.Millisecond), runLine)
	t.Cleanup(func() { _ = exec.Command("buildah", append(storage, "rmi", "-f", testImage)...).Run() })

	t.Run("reproducible", func(t *testing.T) {
		if again, _ := buildImage(t, root); again != id {
			t.Fatalf("a second build of the same commit gave image %s, the first %s", again, id)
		}
	})

	t.Run("config", func(t *testing.T) {
		var raw struct {
			OCIv1 ociConfig `json:"OCIv1"`
		}
		if err := json.Unmarshal([]byte(run(t, "buildah", append(storage, "inspect", "--type", "image", testImage)...)), &raw); err != nil {
			t.Fatal(err)
		}
		c := raw.OCIv1.Config
		if c.User != "65532:65532" {
			t.Errorf("user = %q, want 65532:65532 (non-root)", c.User)
		}
		if strings.Join(c.Entrypoint, " ") != "/backstage-mcp" {
			t.Errorf("entrypoint = %q, want [/backstage-mcp]", c.Entrypoint)
		}
		if got := strings.Join(c.Cmd, " "); got != "serve --http 0.0.0.0:8080 --config /etc/backstage-mcp/config.yaml" {
			t.Errorf("cmd = %q", got)
		}
		if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
			t.Errorf("exposed ports = %v, want only 8080/tcp", c.ExposedPorts)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.title":    "backstage-mcp",
			"org.opencontainers.image.licenses": "Apache-2.0",
			"org.opencontainers.image.source":   "https://github.com/backstage-mcp/backstage-mcp",
			// The MCP registry accepts the image for server.json's name
			// only with this label.
			"io.modelcontextprotocol.server.name": "io.github.backstage-mcp/backstage-mcp",
		} {
			if c.Labels[k] != want {
				t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
			}
		}
		for _, k := range []string{"org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.created"} {
			if c.Labels[k] == "" {
				t.Errorf("label %s is empty", k)
			}
		}
	})

	t.Run("files", func(t *testing.T) {
		files, size := imageFiles(t)
		t.Logf("image size: %.1f MB compressed layers, %.1f MB unpacked", float64(size.compressed)/1e6, float64(size.unpacked)/1e6)
		want := map[string]string{
			"backstage-mcp":                     "-rwxr-xr-x 0:0",
			"LICENSE":                           "-rw-r--r-- 0:0",
			"etc/passwd":                        "-rw-r--r-- 0:0",
			"etc/group":                         "-rw-r--r-- 0:0",
			"etc/ssl/certs/ca-certificates.crt": "-rw-r--r-- 0:0",
			"tmp/":                              "dtrwxrwxrwx 65532:65532",
			"var/log/backstage-mcp/":            "drwxr-xr-x 65532:65532",
		}
		var names []string
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			f := files[n]
			if f.dir && want[n] == "" {
				continue // parent directories
			}
			w, ok := want[n]
			if !ok {
				t.Errorf("unexpected file in the image: /%s (%s); the image holds only the binary, CA certificates and passwd", n, f)
				continue
			}
			if f.String() != w {
				t.Errorf("/%s: %s, want %s", n, f, w)
			}
		}
		for n := range want {
			if _, ok := files[n]; !ok {
				t.Errorf("/%s missing from the image", n)
			}
		}
	})

	t.Run("readme run line", func(t *testing.T) { runReadmeLine(t, root, runLine) })
	t.Run("run", func(t *testing.T) { runContainer(t) })
}

type fileInfo struct {
	dir      bool
	mode     os.FileMode
	uid, gid int
}

func (f fileInfo) String() string { return fmt.Sprintf("%s %d:%d", f.mode, f.uid, f.gid) }

type sizes struct{ compressed, unpacked int64 }

// imageFiles pushes the image to an OCI layout directory and reads every
// layer, so the test sees exactly the files a container would.
func imageFiles(t *testing.T) (map[string]fileInfo, sizes) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	run(t, "buildah", append(storage, "push", "--quiet", testImage, "oci:"+dir)...)
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests", len(index.Manifests))
	}
	var manifest struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"layers"`
	}
	readJSON(t, blob(dir, index.Manifests[0].Digest), &manifest)
	files := map[string]fileInfo{}
	var sz sizes
	for _, l := range manifest.Layers {
		sz.compressed += l.Size
		f, err := os.Open(blob(dir, l.Digest))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = f
		if strings.HasSuffix(l.MediaType, "+gzip") || strings.HasSuffix(l.MediaType, ".gzip") {
			gz, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			r = gz
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(h.Name, "./")
			if name == "" || name == "/" {
				continue
			}
			sz.unpacked += h.Size
			files[name] = fileInfo{dir: h.Typeflag == tar.TypeDir, mode: h.FileInfo().Mode(), uid: h.Uid, gid: h.Gid}
		}
		_ = f.Close()
	}
	return files, sz
}

func blob(dir, digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(dir, "blobs", alg, hex)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// podmanAttempts are the podman invocations tried, in order.
//
// Left to itself, podman 4.3 asks the OCI runtime for RLIMIT_NOFILE
// 1048576 and an RLIMIT_NPROC of its own choosing. Raising a hard limit
// needs CAP_SYS_RESOURCE, which some sandboxes (this project's CI machine
// among them) do not grant even to root, so the runtime fails with
// "error setting rlimit type 7" (runc) or "setrlimit RLIMIT_NOFILE:
// Operation not permitted" (crun). `--ulimit host` does not help: podman
// 4.3 still writes its defaults into the container's spec. Lowering a
// limit is always allowed, so the first attempt passes --ulimit values at
// or below this process's hard limits, and names runc, which the CI
// installs (crun also refuses cgroup v1/v2 hybrid hosts).
func podmanAttempts(t *testing.T) []podmanAttempt {
	t.Helper()
	ulimits := []string{
		"--ulimit", fmt.Sprintf("nofile=%[1]d:%[1]d", hardLimit(t, unix.RLIMIT_NOFILE, 65536)),
		"--ulimit", fmt.Sprintf("nproc=%[1]d:%[1]d", hardLimit(t, unix.RLIMIT_NPROC, 4096)),
	}
	return []podmanAttempt{
		{"podman run --runtime runc " + strings.Join(ulimits, " "), append([]string{"--runtime", "runc"}, ulimits...)},
		{"podman run " + strings.Join(ulimits, " "), ulimits},
		{"podman run", nil},
	}
}

type podmanAttempt struct {
	name  string
	flags []string
}

// hardLimit is this process's hard limit for resource, capped at most.
func hardLimit(t *testing.T, resource, most int) uint64 {
	t.Helper()
	var l unix.Rlimit
	if err := unix.Getrlimit(resource, &l); err != nil {
		t.Fatalf("getrlimit %d: %v", resource, err)
	}
	return min(l.Max, uint64(most))
}

// runContainer starts the image with the demo catalog and calls a tool
// through it. When no way of running containers works on this machine it
// says so and stops: the config and file checks above still ran.
func runContainer(t *testing.T) {
	var failures []string
	if _, err := exec.LookPath("podman"); err != nil {
		failures = append(failures, "podman: not installed")
	} else {
		for _, rt := range podmanAttempts(t) {
			port := freePort(t)
			name := fmt.Sprintf("backstage-mcp-imagetest-%d", port)
			args := append(append([]string{}, storage...), "run", "-d", "--rm", "--name", name, "--network", "host",
				"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")
			args = append(args, rt.flags...)
			args = append(args, testImage, "serve", "--demo", "--http", fmt.Sprintf("127.0.0.1:%d", port))
			start := time.Now()
			out, err := exec.Command("podman", args...).CombinedOutput()
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s: %s", rt.name, lastLine(string(out))))
				continue
			}
			t.Cleanup(func() { _ = exec.Command("podman", append(append([]string{}, storage...), "rm", "-f", name)...).Run() })
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			if err := waitReady(base, 30*time.Second); err != nil {
				logs, _ := exec.Command("podman", append(append([]string{}, storage...), "logs", name)...).CombinedOutput()
				t.Fatalf("%s: the container started but never became ready: %v\n%s", rt.name, err, logs)
			}
			t.Logf("container started with %s; cold start to ready: %d ms", rt.name, time.Since(start).Milliseconds())
			for _, f := range failures {
				t.Logf("  (before that: %s)", f)
			}
			checkRunningUser(t, name)
			callTool(t, base)
			return
		}
	}
	t.Logf("PODMAN CANNOT START CONTAINERS HERE, falling back to buildah run:\n  %s", strings.Join(failures, "\n  "))
	if err := buildahRun(t); err != nil {
		t.Logf("CONTAINERS CANNOT RUN HERE: buildah run failed too (%v); the image's config and files were checked, it was not started", err)
	}
}

// checkRunningUser checks the container's process runs as the image's
// non-root user, with no capabilities.
func checkRunningUser(t *testing.T, name string) {
	t.Helper()
	pid := strings.TrimSpace(run(t, "podman", append(append([]string{}, storage...), "inspect", "--format", "{{.State.Pid}}", name)...))
	status, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatalf("container process %s: %v", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.Join(strings.Fields(v), " ")
		switch k {
		case "Uid", "Gid":
			if v != "65532 65532 65532 65532" {
				t.Errorf("container process %s = %q, want 65532 (non-root) throughout", k, v)
			}
		case "CapEff", "CapPrm":
			if v != "0000000000000000" {
				t.Errorf("container process %s = %s, want no capabilities", k, v)
			}
		}
	}
}

// buildahRun starts the image as the image's own user with `buildah run`
// (runc without rlimits, host network) and calls a tool through it.
func buildahRun(t *testing.T) error {
	ctrOut, err := exec.Command("buildah", append(append([]string{}, storage...), "from", "-q", testImage)...).Output()
	if err != nil {
		return fmt.Errorf("buildah from: %w", err)
	}
	ctr := strings.TrimSpace(string(ctrOut))
	t.Cleanup(func() { _ = exec.Command("buildah", append(append([]string{}, storage...), "rm", ctr)...).Run() })
	port := freePort(t)
	start := time.Now()
	cmd := exec.Command("buildah", append(append([]string{}, storage...), "run", "--network", "host", ctr, "--",
		"/backstage-mcp", "serve", "--demo", "--http", fmt.Sprintf("127.0.0.1:%d", port))...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("buildah run: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitReady(base, 30*time.Second); err != nil {
		select {
		case werr := <-done:
			done <- werr
			return fmt.Errorf("exited before ready (%w): %s", werr, lastLine(logs.String()))
		default:
		}
		t.Fatalf("buildah run: the container started but never became ready: %v\n%s", err, logs.String())
	}
	t.Logf("container started with buildah run (runc); cold start to ready: %d ms", time.Since(start).Milliseconds())
	callTool(t, base)
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitReady(base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get(base + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz: %s", resp.Status)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

func callTool(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.NewStreamableHttpClient(base + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "imagetest", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize through the container: %v", err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "catalog_get_entity"
	req.Params.Arguments = map[string]any{"ref": "component:default/orders-service"}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("tools/call through the container: %v", err)
	}
	text := ""
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if res.IsError || !strings.Contains(text, "orders-service") {
		t.Fatalf("catalog_get_entity through the container: isError=%v %s", res.IsError, text)
	}
}
