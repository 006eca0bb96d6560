package main

import (
	"bufio"
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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
)

type backstage = harness.Backstage

// build compiles the backstage-mcp binary (no race detector: this is a
// benchmark of the shipped binary). By default it builds the committed
// HEAD from a `git archive` snapshot, so that the figures belong to a
// commit and uncommitted work elsewhere in the tree cannot break or skew
// the run; --worktree builds the work tree as it is.
func (b *bench) build(ctx context.Context) error {
	b.binary = filepath.Join(b.tmp, "backstage-mcp")
	src := b.root
	if !b.o.worktree {
		src = filepath.Join(b.tmp, "src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return fmt.Errorf("benchcmd: %w", err)
		}
		archive := exec.CommandContext(ctx, "sh", "-c", "git archive --format=tar HEAD | tar -x -C \"$0\"", src)
		archive.Dir = b.root
		if out, err := archive.CombinedOutput(); err != nil {
			return fmt.Errorf("benchcmd: git archive HEAD: %w\n%s", err, out)
		}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", b.binary, "./cmd/backstage-mcp")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("benchcmd: go build: %w\n%s", err, out)
	}
	return nil
}

// startBackstage starts the real Backstage with the generated catalog as
// its only locations (plus the committed fake-secrets fixture), passed
// through Backstage's APP_CONFIG_ environment overrides so the committed
// app-config stays as it is. The processing interval is raised to an hour
// so that background re-processing of the whole catalog does not run
// during the measurements (it would slow all paths alike). The returned
// stop function may be called more than once.
func (b *bench) startBackstage(ctx context.Context, cat *genCatalog) (*backstage, func(), time.Duration, string, error) {
	type loc struct {
		Type   string `json:"type"`
		Target string `json:"target"`
	}
	fixture, err := harness.FixtureEntities(b.root)
	if err != nil {
		return nil, nil, 0, "", err
	}
	plan, err := b.planDB(ctx, cat, cat.Entities)
	if err != nil {
		return nil, nil, 0, "", err
	}
	// planDB may have moved the files: list the locations after it.
	locs := []loc{}
	for _, f := range cat.Files {
		locs = append(locs, loc{Type: "file", Target: f})
	}
	locs = append(locs, loc{Type: "file", Target: harness.SecretsFixture(b.root)})
	raw, err := json.Marshal(locs)
	if err != nil {
		return nil, nil, 0, "", fmt.Errorf("benchcmd: %w", err)
	}
	dbConn := ""
	if plan != nil {
		dbConn = plan.Env
	}
	// The harness passes its own environment to node.
	for k, v := range map[string]string{
		"APP_CONFIG_catalog_locations":                  string(raw),
		"APP_CONFIG_catalog_processingInterval_seconds": "3600",
		"APP_CONFIG_backend_database":                   dbConn,
		"NODE_OPTIONS":                                  "--max-old-space-size=4096",
	} {
		if v == "" {
			if err := os.Unsetenv(k); err != nil {
				return nil, nil, 0, "", fmt.Errorf("benchcmd: %w", err)
			}
			continue
		}
		if err := os.Setenv(k, v); err != nil {
			return nil, nil, 0, "", fmt.Errorf("benchcmd: %w", err)
		}
	}
	min := cat.Entities + len(fixture) + len(locs)
	opts := harness.Options{
		RepoRoot:    b.root,
		LogFile:     filepath.Join(b.tmp, fmt.Sprintf("backstage-%d.log", cat.Entities)),
		MinEntities: min,
		BootTimeout: 3*time.Minute + time.Duration(cat.Entities)*40*time.Millisecond,
	}
	b.log.Info("starting Backstage", "expect_entities", min, "log", opts.LogFile)
	t0 := time.Now()
	bs, stop, err := harness.StartProcess(ctx, opts)
	if err != nil {
		var se *harness.StartError
		if errors.As(err, &se) {
			return nil, nil, 0, "", fmt.Errorf("benchcmd: start Backstage: %w\n%s", err, se.Log)
		}
		return nil, nil, 0, "", fmt.Errorf("benchcmd: start Backstage: %w", err)
	}
	took := time.Since(t0)
	// The harness installs Backstage's packages on its first start, so
	// their versions can be read only now.
	for k, v := range packageVersions(b.root) {
		b.res.Versions[k] = v
	}
	if plan != nil && plan.save != nil {
		// Save the cluster as ingested, then boot again on it.
		stop()
		if err := plan.save(ctx); err != nil {
			return nil, nil, 0, "", err
		}
		t1 := time.Now()
		if bs, stop, err = harness.StartProcess(ctx, opts); err != nil {
			return nil, nil, 0, "", fmt.Errorf("benchcmd: restart Backstage on the saved catalog database: %w", err)
		}
		b.log.Info("Backstage restarted on the saved catalog database", "took", time.Since(t1).Round(time.Millisecond))
	}
	once := sync.OnceFunc(func() {
		stop()
		if plan != nil {
			plan.close() // the cluster outlives Backstage only until this size is done
		}
	})
	b.onExit(once)
	db := "memory"
	switch {
	case plan != nil && plan.Hit:
		db = "cached"
		b.log.Info("Backstage booted on the cached catalog database", "took", took.Round(time.Millisecond))
	case plan != nil:
		db = "postgres"
	}
	return bs, once, took, db, nil
}

// readyTimeout bounds the wait for a started backstage-mcp to be ready.
const readyTimeout = 5 * time.Minute

// oursProc is a running backstage-mcp.
type oursProc struct {
	url string
	// admin is the operators' listener: /metrics and /readyz details.
	admin string
	pid   int
	audit string
	stop  func()
	// ready is the time from start to the first 200 on /readyz (in
	// mirror mode, the first full sync of the catalog).
	ready time.Duration
	// atReady is, in mirror mode, the mirror's freshness in that first
	// 200 answer of /readyz.
	atReady *mirrorFreshness
}

// startOurs starts the built binary over Streamable HTTP for the insecure
// local user, with the development read policy, limits that do not
// throttle the benchmark, an audit file, and variant v's settings.
func (b *bench) startOurs(ctx context.Context, bs *backstage, user, tag string, v oursVariant) (*oursProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.tmp, "ours-"+tag)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("benchcmd: %w", err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	cfg := oursConfig(v.settings(oursSettings{backstageURL: bs.BaseURL, policy: filepath.Join(b.root, "testdata", "policies", "anonymous-read.yaml"),
		auditPath: auditPath, bucket: "{ unlimited: true }"}))
	if b.res.OursConfigs == nil {
		b.res.OursConfigs = map[string]string{}
	}
	b.res.OursConfigs[v.name] = cfg
	return b.launchOurs(ctx, dir, port, cfg, []string{"--insecure-local-user", user}, "BENCH_BACKSTAGE_TOKEN="+bs.Token)
}

// launchOurs starts the built backstage-mcp with cfg written to dir, on
// port, with extra serve flags and environment, and waits until /readyz
// answers 200. Its audit file is dir/audit.log when cfg says so.
func (b *bench) launchOurs(ctx context.Context, dir string, port int, cfg string, args []string, env ...string) (*oursProc, error) {
	auditPath := filepath.Join(dir, "audit.log")
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("benchcmd: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, fmt.Errorf("benchcmd: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	adminPort, err := freePort()
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	adminAddr := "127.0.0.1:" + strconv.Itoa(adminPort)
	cmd := exec.Command(b.binary, append([]string{"serve", "--config", cfgPath, "--http", addr, "--admin-http", adminAddr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("benchcmd: start backstage-mcp: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logf.Close()
	}
	b.onExit(stop)
	url, admin := "http://"+addr, "http://"+adminAddr
	started := time.Now()
	// A mirror is ready after its first full sync, which takes long on a
	// big catalog.
	deadline := started.Add(readyTimeout)
	var atReady *mirrorFreshness
	for {
		resp, err := http.Get(admin + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// The first answer that says ready: in mirror mode,
				// right after the first full sync.
				if atReady, err = parseMirrorFreshness(body); err != nil {
					b.log.Warn("mirror freshness at ready not read", "err", err)
				}
				break
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("benchcmd: backstage-mcp exited at start; see %s", logf.Name())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("benchcmd: backstage-mcp not ready after %s; see %s", readyTimeout, logf.Name())
		}
	}
	return &oursProc{url: url, admin: admin, pid: cmd.Process.Pid, audit: auditPath, stop: stop, ready: time.Since(started), atReady: atReady}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("benchcmd: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// procStatusKiB reads a "Key:   N kB" line of /proc/<pid>/status.
func procStatusKiB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("benchcmd: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				return strconv.ParseInt(fields[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("benchcmd: %s not in /proc/%d/status", key, pid)
}

// machine describes where the benchmark ran.
type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemoryMiB int64  `json:"memory_mib"`
	Kernel    string `json:"kernel"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb, err := procStatusFileKiB("/proc/meminfo", "MemTotal"); err == nil {
		m.MemoryMiB = kb / 1024
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

func procStatusFileKiB(path, key string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("benchcmd: %w", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, key+":"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("benchcmd: %s not in %s", key, path)
}

// versions records the versions of everything measured.
func versions(ctx context.Context, root string, worktree bool) map[string]string {
	v := map[string]string{"go": runtime.Version()}
	out := func(name string, args ...string) string {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = root
		b, err := cmd.Output()
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(string(b))
	}
	v["node"] = out("node", "--version")
	v["backstage-mcp commit"] = out("git", "rev-parse", "--short=12", "HEAD")
	if worktree && out("git", "status", "--porcelain", "--untracked-files=no") != "" {
		v["backstage-mcp commit"] += " + uncommitted changes (--worktree)"
	}
	for k, pv := range packageVersions(root) {
		v[k] = pv
	}
	return v
}

// packageVersions are the versions of the Backstage packages installed in
// testdata/backstage (none before the first install).
func packageVersions(root string) map[string]string {
	v := map[string]string{}
	for _, p := range []string{"backend-defaults", "plugin-catalog-backend", "plugin-mcp-actions-backend"} {
		data, err := os.ReadFile(filepath.Join(root, "testdata", "backstage", "node_modules", "@backstage", p, "package.json"))
		if err != nil {
			continue
		}
		var pj struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(data, &pj) == nil {
			v["@backstage/"+p] = pj.Version
		}
	}
	return v
}
