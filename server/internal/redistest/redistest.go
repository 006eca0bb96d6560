// Package redistest starts a real redis-server (the Debian package) for
// tests: on a free loopback port, in a temporary directory, without
// persistence, and stopped when the test ends. Where redis-server is not
// installed, tests that need it are skipped with one line saying so (`make
// test-tools` installs it), or fail where BACKSTAGE_MCP_REQUIRE_TOOLS is set,
// as in CI (see package testtools).
//
//	srv := redistest.Start(t)
//	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
//	srv.Stop()    // Redis down: callers must fail closed
//	srv.Restart() // same port, empty data
//
// It also starts the forms operators run: TLS with certificates made for
// the test (NewTLSFiles, Options.TLS), ACL users (Options.Args), a
// primary with a replica and sentinels (StartSentinelSet, redis-server
// --sentinel) and a Redis Cluster (StartCluster).
package redistest

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/testtools"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	bus  int // cluster bus port (Options.Cluster)
	opts Options

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Options start a server in another role than a plain one.
type Options struct {
	// Args are more redis-server arguments ("--user", "app", "on", ...).
	Args []string
	// TLS serves TLS only (the plain port is off) with these files;
	// Addr is then the TLS port.
	TLS *TLSFiles
	// Sentinel starts redis-server --sentinel with these lines in its
	// configuration file (port, bind and dir are added).
	Sentinel []string
	// Cluster starts a cluster-enabled node (see StartCluster).
	Cluster bool
}

// Binary returns the path of redis-server, or an error saying how to
// install it.
func Binary() (string, error) {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redistest: redis-server not found in PATH (Debian: apt-get install redis-server; make test-tools installs it): %w", err)
	}
	return p, nil
}

// Start starts redis-server on a free loopback port and stops it when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts redis-server with opts on a free loopback port and
// stops it when the test ends.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		testtools.Missing(t, "redis-server (redis-server)")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), opts: opts}
	s.port, err = freePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// URL is the redis:// URL of the server (rediss:// with TLS).
func (s *Server) URL() string {
	if s.opts.TLS != nil {
		return "rediss://" + s.Addr() + "/0"
	}
	return "redis://" + s.Addr() + "/0"
}

// Log returns what the server wrote to its log file.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

func (s *Server) start() error {
	var args []string
	common := []string{"--bind", "127.0.0.1", "--dir", s.dir, "--daemonize", "no", "--loglevel", "warning",
		"--logfile", filepath.Join(s.dir, "redis.log")}
	switch {
	case s.opts.Sentinel != nil:
		conf := filepath.Join(s.dir, "sentinel.conf")
		lines := append([]string{"port " + strconv.Itoa(s.port)}, s.opts.Sentinel...)
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return fmt.Errorf("redistest: %w", err)
		}
		args = append([]string{conf, "--sentinel"}, common...)
	default:
		port := []string{"--port", strconv.Itoa(s.port)}
		if f := s.opts.TLS; f != nil {
			port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port), "--tls-cert-file", f.ServerCert,
				"--tls-key-file", f.ServerKey, "--tls-ca-cert-file", f.CA, "--tls-auth-clients", "optional"}
		}
		args = append(port, "--save", "", "--appendonly", "no", "--protected-mode", "yes")
		args = append(args, common...)
		if s.opts.Cluster {
			// The bus port defaults to port+10000, past 65535 for most
			// ephemeral ports: take a free one.
			if s.bus == 0 {
				bus, err := freePort()
				if err != nil {
					return err
				}
				s.bus = bus
			}
			args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
				"--cluster-node-timeout", "2000", "--cluster-port", strconv.Itoa(s.bus))
		}
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s.ping() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return fmt.Errorf("redistest: redis-server on %s did not answer PING within 10s; log:\n%s", s.Addr(), s.Log())
}

// Stop kills the server (like a crash: no shutdown, no save). Safe to call
// twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Restart starts the server again on the same port (with empty data).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// SetReplicaOf makes the server start as a replica of primary at its
// next Restart (as a primary when primary is nil), as an operator's
// restarted pod asks Sentinel for the primary before it starts.
func (s *Server) SetReplicaOf(primary *Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var args []string
	for i := 0; i < len(s.opts.Args); i++ {
		if s.opts.Args[i] == "--replicaof" && i+2 < len(s.opts.Args) {
			i += 2
			continue
		}
		args = append(args, s.opts.Args[i])
	}
	if primary != nil {
		args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port()))
	}
	s.opts.Args = args
}

// Do sends one command and returns the first line of the reply, for
// tests that inspect the store without a client library.
func (s *Server) Do(args ...string) (string, error) {
	return do(s.Addr(), s.tlsConfig(), args...)
}

func (s *Server) tlsConfig() *tls.Config {
	if s.opts.TLS == nil {
		return nil
	}
	return s.opts.TLS.ClientConfig()
}

// ping reports whether the server answers; a server that wants a password
// first (-NOAUTH) answers too.
func (s *Server) ping() error {
	r, err := do(s.Addr(), s.tlsConfig(), "PING")
	if err != nil {
		return err
	}
	if r != "+PONG" && !strings.HasPrefix(r, "-NOAUTH") {
		return fmt.Errorf("redistest: PING answered %q", r)
	}
	return nil
}

func do(addr string, tc *tls.Config, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var c net.Conn
	var err error
	if tc != nil {
		d := tls.Dialer{Config: tc}
		c, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
