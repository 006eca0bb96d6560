package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The floor is what any proxy in front of Backstage costs at least: the
// REST questions asked through a trivial pass-through reverse proxy, in a
// process of its own on loopback like backstage-mcp. It does nothing but
// forward: no compression of its own, keep-alive on both sides, no
// buffering beyond what net/http does.

// newFloorProxy returns a reverse proxy that forwards every request to
// target unchanged (the client's headers, Accept-Encoding included, pass
// through) over kept-alive connections.
func newFloorProxy(target *url.URL) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			// Pass the body as Backstage sent it: never ask for gzip on
			// the proxy's own account, never decode.
			DisableCompression: true,
		},
	}
	return rp
}

// mcpFloorTokenEnv carries Backstage's token to the floor process, for the
// MCP floor's requests (the proxy forwards its clients' own header).
const mcpFloorTokenEnv = "BENCH_BACKSTAGE_TOKEN"

// serveFloor is the floor proxy's process (--floor-listen): it serves until
// it is signalled.
func serveFloor(ctx context.Context, listen, target string, stderr io.Writer) int {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		fmt.Fprintf(stderr, "benchcmd: --floor-target %q is not an absolute URL\n", target)
		return 2
	}
	mux := http.NewServeMux()
	mux.Handle("/", newFloorProxy(u))
	mux.Handle("/mcp", newMCPFloor(u, os.Getenv(mcpFloorTokenEnv)))
	mux.Handle("/mcp-empty", newMCPEmpty())
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, "benchcmd: floor proxy:", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "benchcmd: floor proxy:", err)
		return 1
	}
	return 0
}

// startFloor starts this program again as the floor proxy (and the MCP
// floor, with token) in front of target and returns its base URL once it answers, and a stop function
// that may be called more than once.
func (b *bench) startFloor(ctx context.Context, target, token string) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("benchcmd: floor proxy: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logf, err := os.Create(filepath.Join(b.tmp, "floor-"+strconv.Itoa(port)+".log"))
	if err != nil {
		return "", nil, fmt.Errorf("benchcmd: %w", err)
	}
	cmd := exec.Command(self, "--floor-listen", addr, "--floor-target", target)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), mcpFloorTokenEnv+"="+token)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return "", nil, fmt.Errorf("benchcmd: start floor proxy: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logf.Close()
	})
	b.onExit(stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return "http://" + addr, stop, nil
		}
		select {
		case <-exited:
			return "", nil, fmt.Errorf("benchcmd: floor proxy exited at start; see %s", logf.Name())
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", nil, fmt.Errorf("benchcmd: floor proxy not listening after 15s; see %s", logf.Name())
		}
	}
}
