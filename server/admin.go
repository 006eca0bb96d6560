package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// The admin listener serves the operators' endpoints: /metrics, /readyz
// with each check's details, /healthz and, with server.pprof,
// /debug/pprof. None of them is served on the agents' listener: a counter
// a caller can read around its own calls is a side channel (an upstream
// 404 beside a 200 tells a hidden entity from a missing one; a cache hit
// tells that another user asked for the same ref).

const (
	// DefaultAdminAddr is where the admin listener binds when
	// server.adminAddr is empty and the server speaks Streamable HTTP.
	DefaultAdminAddr = "127.0.0.1:9090"
	// AdminOff as server.adminAddr turns the admin listener off.
	AdminOff = "off"
	// adminTokenMin is the shortest admin bearer token accepted.
	adminTokenMin = 32
	// adminTokenMax bounds the token file read.
	adminTokenMax = 4096
)

// isLoopbackHost reports whether host (from host:port) only reaches this
// machine: "localhost" or a loopback IP. An empty host binds every
// interface and is not loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AdminHandler serves the operators' endpoints. With token non-empty
// every request must carry it as a bearer token, compared in constant
// time; anything else is 401 with nothing about the server in the body.
func (s *Server) AdminHandler() http.Handler {
	return s.adminHandler(nil)
}

func (s *Server) adminHandler(token []byte) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Server.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if len(token) == 0 {
		return mux
	}
	want := sha256.Sum256(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Hashing first makes the comparison's time independent of the
		// presented token's length as well as of its bytes.
		gotSum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(gotSum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="backstage-mcp-admin"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// readAdminToken reads server.adminTokenFile: at most adminTokenMax bytes,
// surrounding white space trimmed, at least adminTokenMin left.
func readAdminToken(path string) ([]byte, error) {
	b, err := readLimited(path, "server.adminTokenFile", adminTokenMax)
	if err != nil {
		return nil, err
	}
	if len(b) > adminTokenMax {
		return nil, fmt.Errorf("server: server.adminTokenFile %s: longer than %d bytes; it must hold one token", path, adminTokenMax)
	}
	tok := []byte(strings.TrimSpace(string(b)))
	if len(tok) < adminTokenMin {
		return nil, fmt.Errorf("server: server.adminTokenFile %s: the token is %d bytes; use at least %d (openssl rand -hex 32)", path, len(tok), adminTokenMin)
	}
	return tok, nil
}

type adminServer struct {
	hs *http.Server
	ln net.Listener
}

func (a *adminServer) serve() error {
	if err := a.hs.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin listener: %w", err)
	}
	return nil
}

func (a *adminServer) close() { _ = a.hs.Close() }

// startAdmin opens the admin listener that server.adminAddr names, or the
// default one. nil, nil: no admin listener (turned off, or the default
// port is taken — logged, since metrics are not a security control and a
// second server on one machine must still start).
func (s *Server) startAdmin(ctx context.Context) (*adminServer, error) {
	addr, soft := s.cfg.Server.AdminAddr, false
	switch addr {
	case AdminOff:
		return nil, nil
	case "":
		addr, soft = DefaultAdminAddr, true
	}
	var token []byte
	if f := s.cfg.Server.AdminTokenFile; f != "" {
		t, err := readAdminToken(f)
		if err != nil {
			return nil, err
		}
		token = t
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if soft {
			s.log.Warn("admin listener not started on its default address (is another server using it?); set server.adminAddr (or --admin-http) to another loopback port, or \"off\"",
				"addr", addr, "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("server: admin listen %s: %w", addr, err)
	}
	s.log.Info("admin listener", "addr", ln.Addr().String(), "pprof", s.cfg.Server.Pprof, "bearer", len(token) > 0)
	return &adminServer{ln: ln, hs: &http.Server{
		Handler:           s.adminHandler(token),
		ReadHeaderTimeout: 10 * time.Second,
		// pprof's CPU profile and trace stream for up to their seconds= argument.
		WriteTimeout:   5 * time.Minute,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 16 << 10,
	}}, nil
}
