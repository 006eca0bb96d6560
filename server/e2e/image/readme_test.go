//go:build image

package image

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// capSysResource is CAP_SYS_RESOURCE's bit in /proc/PID/status CapEff.
const capSysResource = 24

// runReadmeLine runs the README's podman run line, exactly as printed by
// deploy/image/build.sh and shown in the README (the test's image name in
// place of localhost/backstage-mcp:dev), and calls a tool through it.
//
// Where the line cannot run as printed, the test says why in its output.
// The one known cause: podman 4.3 asks the OCI runtime to raise
// RLIMIT_NOFILE to 1048576, which needs CAP_SYS_RESOURCE; a sandbox that
// withholds it even from root (this project's CI machine) makes runc
// refuse. There the test runs the same line again with nothing changed but
// containers.conf's default_ulimits, set to this machine's hard limits
// through CONTAINERS_CONF, and says so. Any other failure fails the test.
func runReadmeLine(t *testing.T, root, printed string) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (apt-get install podman runc): the README's line cannot be tried")
	}
	// The deployment guide is the README's Deploying section, or
	// docs/deploying.md where the README points to it.
	var docs []byte
	for _, f := range []string{"README.md", "docs/deploying.md"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		docs = append(docs, b...)
	}
	documented := strings.Replace(printed, testImage, readmeImage, 1)
	if !strings.Contains(string(docs), documented) {
		t.Errorf("neither README.md nor docs/deploying.md shows the line make image-build prints:\n  %s", documented)
	}
	args := strings.Fields(printed)
	if len(storage) > 0 {
		args = append(append([]string{args[0]}, storage...), args[1:]...)
		t.Logf("BUILDAH_FLAGS=%q: the line runs with those storage flags added", strings.Join(storage, " "))
	}
	port := 8080
	if l, err := net.Listen("tcp", ":8080"); err != nil {
		port = freePort(t)
		for i, a := range args {
			if a == "8080:8080" {
				args[i] = fmt.Sprintf("%d:8080", port)
			}
		}
		t.Logf("port 8080 is taken on this machine (%v): publishing the container's 8080 on %d instead", err, port)
	} else {
		_ = l.Close()
	}
	t.Cleanup(func() {
		ids, _ := exec.Command("podman", append(append([]string{}, storage...), "ps", "-aq", "--filter", "ancestor="+testImage)...).Output()
		for _, id := range strings.Fields(string(ids)) {
			_ = exec.Command("podman", append(append([]string{}, storage...), "rm", "-f", id)...).Run()
		}
	})

	line := strings.Join(args, " ")
	err := runAndCall(t, args, nil, port)
	if err == nil {
		t.Logf("ran the README's line as printed: %s", line)
		return
	}
	if !strings.Contains(err.Error(), "rlimit") || !strings.Contains(err.Error(), "not permitted") {
		t.Fatalf("the README's line failed: %s\n%v", line, err)
	}
	capEff, held := capability(t, capSysResource)
	if held {
		t.Fatalf("the README's line failed on an rlimit although this process holds CAP_SYS_RESOURCE (CapEff %s): %s\n%v", capEff, line, err)
	}
	nofile := hardLimit(t, unix.RLIMIT_NOFILE, 65536)
	nproc := hardLimit(t, unix.RLIMIT_NPROC, 4096)
	t.Logf("THE README'S LINE CANNOT RUN HERE AS PRINTED: %s\n"+
		"  runc refused: %s\n"+
		"  podman 4.3 asks the runtime to raise RLIMIT_NOFILE to 1048576, which needs CAP_SYS_RESOURCE, and this sandbox\n"+
		"  withholds it even from root (CapEff %s, bit %d clear). Where root holds it, or with rootless podman (which caps\n"+
		"  the limits at the caller's own), the line runs as printed. Trying the same line with containers.conf's\n"+
		"  default_ulimits lowered to nofile %d, nproc %d (at or below this process's hard limits) through CONTAINERS_CONF,\n"+
		"  nothing else changed.",
		line, lastLine(err.Error()), capEff, capSysResource, nofile, nproc)
	conf := filepath.Join(t.TempDir(), "containers.conf")
	body := fmt.Sprintf("[containers]\ndefault_ulimits = [\"nofile=%[1]d:%[1]d\", \"nproc=%[2]d:%[2]d\"]\n", nofile, nproc)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runAndCall(t, args, []string{"CONTAINERS_CONF=" + conf}, port); err != nil {
		t.Fatalf("the README's line failed here even with default_ulimits lowered: %s\n%v", line, err)
	}
	t.Logf("ran the README's line with CONTAINERS_CONF=%s (%s): the image, the port mapping and the command work as printed",
		conf, strings.TrimSpace(strings.ReplaceAll(body, "\n", " ")))
}

// runAndCall starts args in the foreground as a shell would, waits for
// /readyz on the published port, calls a tool, then stops podman with
// SIGTERM (which it passes on to the server) and waits for it to exit.
func runAndCall(t *testing.T, args, env []string, port int) error {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	ready := make(chan error, 1)
	go func() { ready <- waitReady(base, 60*time.Second) }()
	select {
	case werr := <-done:
		return fmt.Errorf("exited before ready (%v): %s", werr, strings.TrimSpace(logs.String()))
	case rerr := <-ready:
		if rerr != nil {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("never ready: %v: %s", rerr, logs.String())
		}
	}
	t.Logf("%s: ready in %d ms", strings.Join(args[:2], " "), time.Since(start).Milliseconds())
	callTool(t, base)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		t.Logf("stopped with SIGTERM: %v", err)
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("podman run did not stop within 20 s of SIGTERM:\n%s", logs.String())
	}
	return nil
}

// capability reports this process's effective capability set and whether
// it holds capability bit.
func capability(t *testing.T, bit uint) (string, bool) {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			v = strings.TrimSpace(v)
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v, n&(1<<bit) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return "", false
}
