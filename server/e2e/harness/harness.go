// Package harness starts a real Backstage backend for end-to-end tests.
//
// The backend lives in testdata/backstage: Backstage's own catalog and MCP
// actions plugins from npm, an in-memory SQLite database, a static
// external-access token, and file locations that load the demo catalog
// (server/demo/catalog) and the fake-secrets fixture (testdata/catalog).
//
// Start is for tests:
//
//	bs := harness.Start(t, 0) // 0: wait for every demo and fixture entity
//	req, _ := bs.NewRequest(ctx, http.MethodGet, "/api/catalog/entities/by-query?limit=1", nil)
//
// StartProcess does the same without a testing.TB, for benchmark commands.
// The first start in a fresh checkout runs `npm ci` (minutes); later starts
// boot in seconds. The package needs node and npm on PATH and a Unix system
// (process groups, flock).
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Default timeouts used when Options leaves them zero.
const (
	DefaultInstallTimeout = 10 * time.Minute
	DefaultBootTimeout    = 2 * time.Minute
)

// Options configures StartProcess. The zero value is not usable: RepoRoot
// and LogFile must be set.
type Options struct {
	// RepoRoot is the repository root (the directory holding go.mod).
	RepoRoot string
	// LogFile receives Backstage's stdout and stderr (and npm's output when
	// it installs). It is created or truncated.
	LogFile string
	// MinEntities is how many entities (of every kind, Location included)
	// the catalog must report before StartProcess returns. Zero or less
	// means every entity of the demo catalog and the fixtures, see
	// ExpectedTotal.
	MinEntities int
	// InstallTimeout bounds `npm ci`; zero means DefaultInstallTimeout.
	InstallTimeout time.Duration
	// BootTimeout bounds boot plus ingestion; zero means DefaultBootTimeout.
	BootTimeout time.Duration
}

// Backstage is a running Backstage backend.
type Backstage struct {
	// BaseURL is the backend's root, e.g. "http://127.0.0.1:40123", without
	// a trailing slash. The catalog is at BaseURL + "/api/catalog" and the
	// MCP actions endpoint at BaseURL + "/api/mcp-actions/v1".
	BaseURL string
	// Token is the static external-access token Backstage accepts as
	// "Authorization: Bearer <Token>" (subject "backstage-mcp"). It is
	// random per start.
	Token string
	// LogFile is where Backstage's output goes.
	LogFile string
	// Entities is the catalog's totalItems when the backend became ready.
	Entities int

	client *http.Client
}

// StartError is returned when Backstage could not be installed, started or
// made ready. Log holds the tail of the log file.
type StartError struct {
	Stage string // "install", "start" or "ready"
	Err   error
	Log   string
}

// Error implements error.
func (e *StartError) Error() string {
	return fmt.Sprintf("harness: %s: %v", e.Stage, e.Err)
}

// Unwrap returns the cause.
func (e *StartError) Unwrap() error { return e.Err }

// NewRequest builds a request to path (e.g. "/api/catalog/entities") on the
// backend, carrying the static token.
func (b *Backstage) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.BaseURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("harness: new request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+b.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// GetJSON fetches path with the token and decodes a 200 response into out.
func (b *Backstage) GetJSON(ctx context.Context, path string, out any) error {
	req, err := b.NewRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("harness: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("harness: GET %s: read body: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("harness: GET %s: status %d: %s", path, resp.StatusCode, truncate(string(data), 500))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("harness: GET %s: decode: %w", path, err)
	}
	return nil
}

// Start starts Backstage for a test, waiting until the catalog holds at
// least minEntities entities (zero or less: every demo and fixture entity).
// Backstage's log goes to a file under tb.TempDir(); its tail is printed when
// the test fails. The process group is killed in tb.Cleanup. Start calls
// tb.Fatal when anything goes wrong.
func Start(tb testing.TB, minEntities int) *Backstage {
	tb.Helper()
	return StartWith(tb, context.Background(), Options{MinEntities: minEntities})
}

// StartWith is Start with the caller's options: opts.RepoRoot defaults to
// the repository root and opts.LogFile to a file under tb.TempDir().
func StartWith(tb testing.TB, ctx context.Context, opts Options) *Backstage {
	tb.Helper()
	if opts.RepoRoot == "" {
		opts.RepoRoot = RepoRoot(tb)
	}
	if opts.LogFile == "" {
		opts.LogFile = filepath.Join(tb.TempDir(), "backstage.log")
	}
	bs, stop, err := StartProcess(ctx, opts)
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			tb.Fatalf("%v\n--- backstage log tail (%s) ---\n%s", err, opts.LogFile, se.Log)
		}
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		stop()
		if tb.Failed() {
			tb.Logf("--- backstage log tail (%s) ---\n%s", opts.LogFile, tailFile(opts.LogFile, 8<<10))
		}
	})
	return bs
}

// RepoRoot returns the repository root: the nearest directory above the
// working directory that holds go.mod. It calls tb.Fatal if there is none.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("harness: working directory: %v", err)
	}
	root, err := FindRepoRoot(wd)
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// FindRepoRoot returns the nearest directory at or above dir holding go.mod.
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: no go.mod above the working directory")
		}
		dir = parent
	}
}

// BackendDir is the directory of the test backend inside the repository.
func BackendDir(repoRoot string) string {
	return filepath.Join(repoRoot, "testdata", "backstage")
}

// StartProcess installs the backend's node_modules if needed, starts
// `node index.js` on a free loopback port with a random token, and waits
// until the catalog has ingested opts.MinEntities entities and relations
// have settled. stop kills the process group and waits for it; it is safe to
// call more than once. Errors are *StartError.
func StartProcess(ctx context.Context, opts Options) (*Backstage, func(), error) {
	if opts.RepoRoot == "" || opts.LogFile == "" {
		return nil, nil, errors.New("harness: Options.RepoRoot and Options.LogFile are required")
	}
	if opts.InstallTimeout <= 0 {
		opts.InstallTimeout = DefaultInstallTimeout
	}
	if opts.BootTimeout <= 0 {
		opts.BootTimeout = DefaultBootTimeout
	}
	if opts.MinEntities <= 0 {
		n, err := ExpectedTotal(opts.RepoRoot)
		if err != nil {
			return nil, nil, err
		}
		opts.MinEntities = n
	}
	logf, err := os.Create(opts.LogFile)
	if err != nil {
		return nil, nil, fmt.Errorf("harness: create log file: %w", err)
	}
	dir := BackendDir(opts.RepoRoot)

	installCtx, cancel := context.WithTimeout(ctx, opts.InstallTimeout)
	err = EnsureInstalled(installCtx, dir, logf)
	cancel()
	if err != nil {
		_ = logf.Close()
		return nil, nil, &StartError{Stage: "install", Err: err, Log: tailFile(opts.LogFile, 8<<10)}
	}

	bootCtx, cancel := context.WithTimeout(ctx, opts.BootTimeout)
	defer cancel()
	// A free port can be taken between probing and binding; try a few.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		bs, stop, err := boot(bootCtx, dir, logf, opts)
		if err == nil {
			bs.LogFile = opts.LogFile
			return bs, stop, nil
		}
		lastErr = err
		var se *StartError
		if !errors.As(err, &se) || se.Stage != "start" || bootCtx.Err() != nil {
			break
		}
	}
	_ = logf.Close()
	var se *StartError
	if errors.As(lastErr, &se) {
		se.Log = tailFile(opts.LogFile, 8<<10)
		return nil, nil, se
	}
	return nil, nil, &StartError{Stage: "start", Err: lastErr, Log: tailFile(opts.LogFile, 8<<10)}
}

// boot starts one process and waits for readiness.
func boot(ctx context.Context, dir string, logf *os.File, opts Options) (*Backstage, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, &StartError{Stage: "start", Err: err}
	}
	token, err := randomToken()
	if err != nil {
		return nil, nil, &StartError{Stage: "start", Err: err}
	}
	cmd := exec.Command("node", "index.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"BACKSTAGE_PORT="+strconv.Itoa(port),
		"BACKSTAGE_TOKEN="+token,
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, &StartError{Stage: "start", Err: fmt.Errorf("start node: %w", err)}
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	pgid := cmd.Process.Pid // Setpgid: the group id is the leader's pid.
	bs := &Backstage{
		BaseURL: "http://127.0.0.1:" + strconv.Itoa(port),
		Token:   token,
		client:  &http.Client{Timeout: 10 * time.Second},
	}
	n, err := waitReady(ctx, bs, opts.MinEntities, exited)
	if err != nil {
		select {
		case <-exited:
			return nil, nil, &StartError{Stage: "start", Err: fmt.Errorf("node exited: %w", waitErr)}
		default:
		}
		killGroup(pgid, exited, 0)
		return nil, nil, &StartError{Stage: "ready", Err: err}
	}
	bs.Entities = n
	var once sync.Once
	stop := func() {
		once.Do(func() {
			killGroup(pgid, exited, 10*time.Second)
			_ = logf.Close()
		})
	}
	return bs, stop, nil
}

// killGroup sends SIGTERM to the process group, then SIGKILL after grace
// (at once when grace is zero), and waits for the leader to exit.
func killGroup(pgid int, exited <-chan struct{}, grace time.Duration) {
	if grace > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
			// Children of the leader may outlive it; make sure they go too.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
}

// waitReady polls the catalog until it holds min entities, then until the
// relations of all entities are the same in two polls in a row.
func waitReady(ctx context.Context, bs *Backstage, min int, exited <-chan struct{}) (int, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var total int
	var lastErr error
	var prev []byte
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("catalog has %d of %d entities (last error: %w): %w", total, min, lastErr, ctx.Err())
		case <-exited:
			return 0, errors.New("node exited")
		case <-tick.C:
		}
		if total < min {
			var page struct {
				TotalItems int `json:"totalItems"`
			}
			if err := bs.GetJSON(ctx, "/api/catalog/entities/by-query?limit=1", &page); err != nil {
				lastErr = err
				continue
			}
			total = page.TotalItems
			continue
		}
		// Relations arrive through stitching, shortly after the entities.
		var snap json.RawMessage
		if err := bs.GetJSON(ctx, "/api/catalog/entities/by-query?fields=kind,metadata.namespace,metadata.name,relations", &snap); err != nil {
			lastErr = err
			continue
		}
		if prev != nil && bytes.Equal(prev, snap) {
			return total, nil
		}
		prev = snap
	}
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("harness: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// randomToken returns 32 random bytes in hex.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("harness: random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// tailFile returns up to max bytes from the end of a file.
func tailFile(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return string(buf)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
