package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server"
)

// demoUser is the identity the demo acts for.
const demoUser = "user:default/amelia.hart"

type serveFlags struct {
	config    string
	stdio     bool
	http      string
	demo      bool
	localUser string
	logLevel  string
	adminHTTP string
	pprof     bool
}

func runServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "configuration file (YAML); see testdata/config.example.yaml")
	fs.BoolVar(&f.stdio, "stdio", false, "speak MCP on stdin/stdout (for IDE assistants)")
	fs.StringVar(&f.http, "http", "", "serve Streamable HTTP at ADDR, e.g. 127.0.0.1:8080 (MCP endpoint /mcp)")
	fs.BoolVar(&f.demo, "demo", false, "use the embedded demo catalog instead of a Backstage (no Backstage needed)")
	fs.StringVar(&f.localUser, "insecure-local-user", "", "INSECURE, for demo/dev only: act for this fixed user ref (user:default/NAME) without any token")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	fs.StringVar(&f.adminHTTP, "admin-http", "", "the operators' listener ADDR: /metrics, /readyz details and /debug/pprof with --pprof, never served to agents (default 127.0.0.1:9090; \"off\" for none; a non-loopback ADDR needs server.adminTokenFile; overrides server.adminAddr)")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's profiling endpoints under /debug/pprof on the admin listener (needs --admin-http)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: backstage-mcp serve (--stdio | --http ADDR) [--config FILE] [--demo] [flags]

Runs the MCP server. Exactly one transport is required.

Examples:
  backstage-mcp serve --demo --http 127.0.0.1:8080
      Embedded demo catalog, Streamable HTTP at http://127.0.0.1:8080/mcp,
      acting for the demo user `+demoUser+`.
  backstage-mcp serve --demo --stdio
      The same over stdin/stdout, for IDE assistants.
  BACKSTAGE_TOKEN=… backstage-mcp serve --config config.yaml --http 127.0.0.1:8080
      Against a real Backstage (see testdata/config.example.yaml).

Logs go to stderr (never stdout, which carries the protocol with --stdio).

Flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "backstage-mcp serve: unexpected argument %q (see backstage-mcp serve --help)\n", fs.Arg(0))
		return 2
	}
	if f.stdio == (f.http != "") {
		fmt.Fprintln(stderr, "backstage-mcp serve: choose exactly one transport: --stdio or --http ADDR (e.g. --http 127.0.0.1:8080; see backstage-mcp serve --help)")
		return 2
	}
	if err := serve(ctx, f, stdin, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "backstage-mcp: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, f serveFlags, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		cfg *server.Config
		err error
	)
	if f.config != "" {
		cfg, err = server.LoadConfig(f.config, os.Getenv)
	} else {
		cfg, err = server.ParseConfig(nil, "", os.Getenv)
	}
	if err != nil {
		return err
	}
	if f.logLevel != "" {
		cfg.Log.Level = f.logLevel
	}
	if f.adminHTTP != "" {
		cfg.Server.AdminAddr = f.adminHTTP
	}
	if f.pprof {
		cfg.Server.Pprof = true
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := server.NewLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	server.ApplyContainerMemoryLimit(log, os.Getenv, os.ReadFile)
	if f.demo && f.localUser == "" {
		f.localUser = demoUser
	}
	auditOut := stdout
	if f.stdio {
		auditOut = nil
	}
	tracing, err := server.TracingFromEnv(ctx, os.Getenv, appVersion())
	if err != nil {
		return err
	}
	if tracing.Enabled() {
		log.Info("tracing on: exporting spans over OTLP (OTEL_* environment)")
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tracing.Shutdown(sctx); err != nil {
				log.Warn("tracing: spans not flushed", "err", err)
			}
		}()
	}
	s, closeFn, err := server.Build(ctx, cfg, server.BuildOptions{
		Demo: f.demo, LocalUser: f.localUser, Stdio: f.stdio, ListenAddr: f.http,
		Logger: log, Version: appVersion(), Stdout: auditOut, Tracing: tracing,
	})
	if err != nil {
		return err
	}
	defer closeFn()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go s.WatchPolicy(ctx, hup)

	if f.stdio {
		log.Info("serving MCP on stdio", "demo", f.demo)
		return s.ServeStdio(ctx, stdin, stdout)
	}
	return s.ServeHTTP(ctx, f.http, func(a net.Addr) {
		log.Info("ready", "url", "http://"+a.String()+"/mcp", "demo", f.demo)
	})
}
