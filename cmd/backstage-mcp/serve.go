package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
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
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: backstage-mcp serve (--stdio | --http ADDR) [--config FILE] [--demo] [flags]

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
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if f.stdio == (f.http != "") {
		fmt.Fprintln(stderr, "serve: choose exactly one transport: --stdio or --http ADDR (e.g. --http 127.0.0.1:8080)")
		return 2
	}
	if err := serve(ctx, f, stdin, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "backstage-mcp: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, f serveFlags, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg := &server.Config{}
	var err error
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
	log, err := server.NewLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	opts := server.Options{Logger: log, Version: version}

	var client *catalog.Client
	switch {
	case f.demo:
		client, err = server.NewDemoCatalog()
		if f.localUser == "" {
			f.localUser = demoUser
		}
	case cfg.Backstage.BaseURL != "":
		client, err = newCatalogClient(cfg)
	default:
		return errors.New("no catalog: set backstage.baseUrl in --config (or BACKSTAGE_MCP_BACKSTAGE_URL), or use --demo")
	}
	if err != nil {
		return err
	}
	opts.Catalog = client
	opts.Ready = client.Ping

	if f.localUser != "" {
		ref, err := catalog.ParseRef(f.localUser, "user")
		if err != nil || !strings.EqualFold(ref.Kind, "user") {
			return fmt.Errorf("--insecure-local-user %q: expected a user ref such as user:default/jane.doe", f.localUser)
		}
		log.Warn("INSECURE: acting for a fixed local user without any token; for demo and development only", "user", ref.String())
		opts.LocalIdentity = &tools.Identity{User: ref.String(), Mode: "insecure-local-user"}
	}

	r, err := redact.New()
	if err != nil {
		return fmt.Errorf("redaction rules: %w", err)
	}
	opts.Redactor = server.Redactor{R: r}

	s, err := server.New(cfg, opts)
	if err != nil {
		return err
	}
	if f.stdio {
		log.Info("serving MCP on stdio", "demo", f.demo)
		return s.ServeStdio(ctx, stdin, stdout)
	}
	return s.ServeHTTP(ctx, f.http, func(a net.Addr) {
		log.Info("ready", "url", "http://"+a.String()+"/mcp", "demo", f.demo)
	})
}

func newCatalogClient(cfg *server.Config) (*catalog.Client, error) {
	var ts catalog.TokenSource
	if cfg.Backstage.TokenFile != "" {
		ft, err := catalog.NewFileToken(cfg.Backstage.TokenFile)
		if err != nil {
			return nil, err
		}
		ts = ft
	} else {
		ts = catalog.StaticToken(cfg.Backstage.Token)
	}
	return catalog.New(catalog.Config{
		BaseURL:          cfg.Backstage.BaseURL,
		Token:            ts,
		Timeout:          cfg.Backstage.Timeout,
		MaxResponseBytes: cfg.Backstage.MaxResponseBytes,
		UserAgent:        "backstage-mcp/" + version,
	})
}
