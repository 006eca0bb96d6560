package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"
	"github.com/backstage-mcp/backstage-mcp/server/login"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/backstage-mcp/backstage-mcp/server/state"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/mirror"
)

// BuildOptions are the command-line choices that shape a server.
type BuildOptions struct {
	// Demo serves the embedded demo catalog and, without a policy file,
	// the embedded demo policy.
	Demo bool
	// LocalUser is the insecure fixed identity (--insecure-local-user).
	LocalUser string
	// Stdio selects the stdio transport (identity from the stored login).
	Stdio bool
	// ListenAddr is the HTTP address, used for the default public URL.
	ListenAddr string
	// Logger receives operational logs.
	Logger *slog.Logger
	// Version is reported to clients.
	Version string
	// Stdout is where the audit "stdout" sink writes (never the stdio
	// protocol stream).
	Stdout io.Writer
	// Tracing exports OpenTelemetry spans (see TracingFromEnv); nil is off.
	Tracing *Tracing
}

// Build assembles a server from the configuration: catalog client with
// its upstream guard, redactor, policy, audit log, rate limits and
// identity. close writes the server_stop record and closes the audit log.
func Build(ctx context.Context, cfg *Config, bo BuildOptions) (s *Server, closeFn func(), err error) {
	return BuildWithSeams(ctx, cfg, bo, buildseam.Seams{})
}

// BuildWithSeams is Build with test-only inputs (package buildseam, which
// only code under server/ can name: the command line cannot reach it).
func BuildWithSeams(ctx context.Context, cfg *Config, bo BuildOptions, seams buildseam.Seams) (s *Server, closeFn func(), err error) {
	log := bo.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := redact.New()
	if err != nil {
		return nil, nil, fmt.Errorf("server: redaction rules: %w", err)
	}
	// Every log line of every part built here passes egress.
	log = redactingLogger(log, r)
	if cfg.Server.PublicURL == "" && bo.ListenAddr != "" {
		cfg.Server.PublicURL = "http://" + bo.ListenAddr
	}
	if cfg.Server.PublicURL == "" && cfg.Auth.Audience != "" {
		// stdio serves no metadata; the audience names the resource.
		if u, err := url.Parse(cfg.Auth.Audience); err == nil && u.Scheme != "" && u.Host != "" {
			cfg.Server.PublicURL = u.Scheme + "://" + u.Host
		}
	}
	metrics := NewMetrics()

	up, err := ratelimit.NewUpstream(cfg.RateLimits.Upstream)
	if err != nil {
		return nil, nil, fmt.Errorf("server: rateLimits.upstream: %w", err)
	}
	// The mirror alone reads Backstage, and it reads to be fresh: an
	// answer from the upstream cache (rateLimits.upstream.cacheTTL) would
	// be as old as the cache's entry, and a delta sync would miss changes
	// Backstage already shows. So in mirror mode nothing is cached or
	// coalesced; the concurrency caps and rate still apply.
	guard := upstreamGuard(up, cfg.Catalog.Mode == CatalogMirror)
	var upstream *catalog.Client // reads Backstage (nil in demo mode)
	// source is what the catalog is read from: Backstage through the
	// client, or in demo mode the in-memory demo catalog, called in
	// process as the mirror's copy is (no HTTP, no emulator).
	var source catalogReader
	switch {
	case bo.Demo && seams.DemoUpstream != nil:
		upstream, err = catalog.New(catalog.Config{BaseURL: demoBaseURL, Token: catalog.StaticToken("demo"),
			HTTPClient: &http.Client{Transport: bo.Tracing.Transport(buildseam.InProcessTransport{Handler: seams.DemoUpstream})},
			Guard:      guard, Observe: metrics.Upstream})
	case bo.Demo:
		source, err = newDemoCatalog(seams.DemoEntities)
	case cfg.Backstage.BaseURL != "":
		upstream, err = newCatalogClient(cfg, bo.Version, guard, upstreamObserver(metrics, log, cfg.Backstage.Timeout/2), bo.Tracing)
	default:
		err = errors.New("server: no catalog: set backstage.baseUrl in the config (or BACKSTAGE_MCP_BACKSTAGE_URL), or use --demo")
	}
	if err != nil {
		return nil, nil, err
	}
	if upstream != nil {
		source = upstream
	}
	// What the tools, identity resolution and reviews read: the source,
	// or in mirror mode the mirror itself, in process (the mirror alone
	// reads the source: Backstage with the client just built, guard and
	// timeouts included).
	client := source
	var mir *mirror.Mirror
	if cfg.Catalog.Mode == CatalogMirror {
		mir, err = newMirror(cfg, source, log, metrics, bo.Tracing, seams.MirrorNow)
		if err != nil {
			return nil, nil, err
		}
		client = mir
	}

	checkPolicy := func(_ *policy.Policy, doc policy.Document) error { return cfg.CheckPolicy(doc) }
	var pols *PolicyStore
	switch {
	case cfg.Policy.File != "":
		pols, err = NewPolicyStore(cfg.Policy.File, checkPolicy)
	case bo.Demo:
		pols, err = NewStaticPolicyStore(demo.Policy(), "demo policy")
	default:
		err = errors.New("server: policy.file is required: without a policy nothing is allowed (see policy/doc.md; " +
			"testdata/policy.example.yaml gives everyone read-only access)")
	}
	if err != nil {
		return nil, nil, err
	}

	if bo.Stdio && cfg.Audit.Sink == audit.SinkStdout {
		return nil, nil, errors.New("server: audit.sink stdout cannot be used with --stdio: stdout carries the protocol")
	}
	alog, acfg, err := openAudit(cfg.Audit.Config, bo, log)
	if err != nil {
		return nil, nil, err
	}
	if acfg.Sink == audit.SinkFile {
		log.Info("audit trail", "path", acfg.Path)
	}
	stopExport, err := startAuditExport(ctx, cfg.Audit, acfg, alog, bo, metrics, log)
	if err != nil {
		_ = alog.Close()
		return nil, nil, err
	}
	fail := func(err error) (*Server, func(), error) {
		_ = alog.Close()
		stopExport()
		return nil, nil, err
	}

	shared, err := openSharedState(ctx, cfg, log)
	if err != nil {
		return fail(err)
	}
	if shared != nil && mir != nil {
		// The change feed lives in Redis: kept across restarts, one for
		// every replica.
		scrub := func(doc []byte) ([]byte, error) {
			out, _, err := r.JSON(doc)
			return out, err
		}
		mir.UseChangeLog(state.NewRedisChanges(shared.rdb, shared.prefix, mirror.MaxChanges, cfg.Catalog.ChangeRetention, seams.MirrorNow, scrub))
	}
	if shared != nil {
		closeShared := shared.close
		prevFail := fail
		fail = func(err error) (*Server, func(), error) {
			closeShared()
			return prevFail(err)
		}
	}

	var authFailure func(ctx context.Context, reason string, r *http.Request)
	var auth *identity.Authenticator
	idCat := IdentityCatalog(client)
	if len(cfg.Auth.Issuers) > 0 {
		var cache identity.ResolverCache // nil: in this process
		if shared != nil {
			cache = shared.resolverCache()
		}
		auth, err = identity.New(identity.Options{
			Config:    cfg.Auth.Config,
			PublicURL: cfg.Server.PublicURL,
			Catalog:   idCat,
			Logger:    log,
			// The 401 challenge names the scope every token must carry.
			ChallengeScope: cfg.Auth.RequiredScope,
			Cache:          cache,
			OnFailure: func(ctx context.Context, reason string, r *http.Request) {
				if authFailure != nil {
					authFailure(ctx, reason, r)
				}
			},
		})
		if err != nil {
			return fail(fmt.Errorf("server: auth: %w", err))
		}
	}

	opts := Options{
		Logger: log, Catalog: client, Redactor: r, Policy: pols, Audit: alog,
		Metrics: metrics, Tracing: bo.Tracing, Version: bo.Version, RequiredScope: cfg.Auth.RequiredScope, Transport: audit.TransportHTTP,
		Mirror: mir,
	}
	if upstream != nil {
		// The demo catalog is in process: nothing to probe.
		opts.Ready = upstream.Ping
	}
	if mir != nil {
		// Backstage being down is what the mirror rides out: readiness
		// follows the mirror's age, not Backstage's answers.
		opts.Ready = nil
	}
	if shared != nil {
		opts.Limiter = shared.limiter
		opts.UnauthLimiter = shared.unauth
		opts.Sessions = shared.sessions
		opts.ReadyChecks = append(opts.ReadyChecks, ReadyCheck{Name: "redis", Check: func(ctx context.Context) (string, error) {
			if err := shared.ping(ctx); err != nil {
				return "Redis unreachable: rate limits and sessions fail closed until it answers", err
			}
			return "reachable", nil
		}})
	}
	if bo.Stdio {
		opts.Transport = audit.TransportStdio
	}
	switch {
	case bo.LocalUser != "":
		ref, err := catalog.ParseRef(bo.LocalUser, "user")
		if err != nil || !strings.EqualFold(ref.Kind, "user") {
			return fail(fmt.Errorf("--insecure-local-user %q: expected a user ref such as user:default/jane.doe", bo.LocalUser))
		}
		log.Warn("INSECURE: acting for a fixed local user without any token; for demo and development only", "user", ref.String())
		if mir != nil {
			// The user's groups are read from the mirror: fill it first.
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			_, serr := mir.Sync(sctx)
			cancel()
			if serr != nil {
				log.Warn("catalog mirror: first sync failed; retrying in the background", "err", serr)
			}
		}
		p := identity.InsecureLocalUser(ref.String())
		if refs, err := identity.NewResolver(idCat).OwnershipRefs(ctx, ref.String()); err == nil {
			p.User.OwnershipRefs = refs
		} else {
			log.Warn("could not resolve the local user's groups", "user", ref.String(), "err", err)
		}
		if seams.FixedPrincipal != nil {
			p = seams.FixedPrincipal
		}
		if pol, _ := pols.Current(); len(pol.Grant(chain.Subject(p)).AllowedTools()) == 0 {
			log.Warn("the policy grants the local user no tool, so every tool call will answer \"tool not found\": "+
				"roles bound by authenticated, idpGroups or claims need a verified token; for --insecure-local-user "+
				"bind a role with users: ["+ref.String()+"] or backstageGroups (check with: backstage-mcp policy explain)",
				"user", ref.String())
		}
		opts.LocalPrincipal = func(context.Context) (*identity.Principal, error) { return p, nil }
		if !bo.Stdio && auth == nil {
			log.Warn("INSECURE: HTTP without token verification; anyone who can reach this port acts as the local user")
		}
	case bo.Stdio:
		if auth == nil {
			return fail(errors.New("server: --stdio needs auth.issuers (and `backstage-mcp login`), or --insecure-local-user for development"))
		}
		opts.LocalPrincipal, err = storedLoginPrincipal(ctx, auth, cfg.Auth.Stdio.Issuer)
		if err != nil {
			return fail(err)
		}
	default:
		if auth == nil {
			return fail(errors.New("server: --http needs auth.issuers (bearer tokens from your OpenID provider), or --insecure-local-user for development"))
		}
	}
	opts.Auth = auth
	if bo.Stdio {
		opts.Auth = nil // stdio has no HTTP requests; its principal is the stored login
	}

	s, err = New(cfg, opts)
	if err != nil {
		return fail(err)
	}
	authFailure = s.auditAuthFailure
	stopEvicted := func() {}
	if shared != nil {
		// Sessions another replica evicts are dropped here too, at once.
		stopEvicted = shared.sessions.SubscribeEvicted(s.endTransports)
	}
	metrics.Gauge("backstage_mcp_sessions_local", "Sessions whose state this process holds (mcp-go's session map).",
		func() float64 { return float64(s.transportSessions.Load()) })
	metrics.Gauge("backstage_mcp_audit_records_total", "Audit records written since start.",
		func() float64 { return float64(alog.Stats().Records) })
	metrics.Gauge("backstage_mcp_audit_checkpoints_total", "Signed audit checkpoints written since start (audit.checkpoint).",
		func() float64 { return float64(alog.Stats().Checkpoints) })
	metrics.Gauge("backstage_mcp_upstream_cache_hits_total", "Requests to Backstage answered from the short-lived cache.",
		func() float64 { return float64(up.Stats().CacheHits) })
	metrics.Gauge("backstage_mcp_upstream_coalesced_total", "Requests to Backstage that joined an identical request in flight.",
		func() float64 { return float64(up.Stats().Coalesced) })

	_, ver := pols.Current()
	if err := s.AuditEvent(ctx, audit.TypeServerStart, fmt.Sprintf("backstage-mcp %s started (%s, policy %s)", bo.Version, opts.Transport, ver)); err != nil {
		return fail(fmt.Errorf("server: audit: %w", err))
	}
	stopMirror := func() {}
	if mir != nil {
		mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); mir.Run(mctx) }()
		stopMirror = func() { cancel(); <-done }
		log.Info("catalog mirror on", "syncInterval", cfg.Catalog.SyncInterval, "maxStaleness", cfg.Catalog.MaxStaleness)
	}
	var once sync.Once
	closeFn = func() {
		once.Do(func() {
			stopMirror()
			s.FlushAuthFailures()
			if err := s.AuditEvent(context.Background(), audit.TypeServerStop, "backstage-mcp stopped"); err != nil {
				log.Error("audit: server_stop record not written", "err", err)
			}
			if err := alog.Close(); err != nil {
				log.Error("audit: close", "err", err)
			}
			stopExport()
			stopEvicted()
			if shared != nil {
				shared.close()
			}
		})
	}
	return s, closeFn, nil
}

// WatchPolicy reloads the policy on SIGHUP (values from hup) and when its
// file changes, logging and auditing every reload; an invalid file keeps
// the old policy.
func (s *Server) WatchPolicy(ctx context.Context, hup <-chan os.Signal) {
	s.opts.Policy.Watch(ctx, hup, s.cfg.Policy.ReloadInterval, func(changed bool, err error) {
		if err != nil {
			s.log.Error("policy reload failed; keeping the previous policy", "err", err)
			_ = s.AuditEvent(ctx, audit.TypePolicyReload, "rejected: "+redact.Clip(err.Error(), 900))
			return
		}
		_, ver := s.opts.Policy.Current()
		s.log.Info("policy reloaded", "version", ver)
		_ = s.AuditEvent(ctx, audit.TypePolicyReload, "loaded policy "+ver)
	})
}

// upstreamGuard is the catalog client's guard: up, with searches and
// facets marked as queries (rateLimits.upstream.maxConcurrentQueries), and
// with fresh, nothing cached or coalesced.
func upstreamGuard(up *ratelimit.Upstream, fresh bool) catalog.Guard {
	return func(ctx context.Context, key string, fetch catalog.Fetch) ([]byte, int, error) {
		if isQueryKey(key) {
			ctx = ratelimit.AsQuery(ctx)
		}
		if fresh {
			key = ""
		}
		return up.Do(ctx, key, fetch)
	}
}

// isQueryKey reports whether an upstream guard key (the catalog client's
// "METHOD URL") lists entities: a search page or facets, the requests that
// take one of rateLimits.upstream.maxConcurrentQueries.
func isQueryKey(key string) bool {
	_, u, _ := strings.Cut(key, " ")
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return strings.HasSuffix(u, "/entities/by-query") || strings.HasSuffix(u, "/entity-facets")
}

// upstreamObserver records every request to Backstage in the metrics and
// logs the ones that failed in transport or took longer than slow, so that
// an operator can tell a slow Backstage from a slow backstage-mcp. The line
// names the operation, status and duration, never the URL (its query holds
// the caller's filter values).
func upstreamObserver(m *Metrics, log *slog.Logger, slow time.Duration) catalog.Observer {
	if slow <= 0 {
		slow = 5 * time.Second
	}
	return func(op string, status int, d time.Duration, err error) {
		m.Upstream(op, status, d, err)
		switch {
		case err != nil && !errors.Is(err, catalog.ErrNotFound) && !errors.Is(err, catalog.ErrBadInput):
			// The cause of every "Backstage is unavailable" a caller sees:
			// its class and status, never an upstream body.
			log.Warn("request to Backstage failed", "op", op, "status", status, "duration_ms", d.Milliseconds(), "cause", upstreamCause(err, status))
		case d >= slow:
			log.Warn("slow request to Backstage", "op", op, "status", status, "duration_ms", d.Milliseconds())
		}
	}
}

// upstreamCause names why a request to Backstage failed, in words that
// carry no upstream text.
func upstreamCause(err error, status int) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, catalog.ErrResponseTooLarge):
		return "response too large"
	case errors.Is(err, catalog.ErrRateLimited):
		return "rate limited by Backstage"
	case errors.Is(err, catalog.ErrNotAllowed):
		return "credential refused"
	case errors.Is(err, context.Canceled):
		return "cancelled by the caller"
	case status >= 500:
		return fmt.Sprintf("HTTP %d from Backstage", status)
	case status == 0:
		return "transport"
	}
	return "invalid answer"
}

// NewCatalogClient builds the Backstage client from the config.
func NewCatalogClient(cfg *Config, version string,
	guard catalog.Guard, observe catalog.Observer) (*catalog.Client, error) {
	return newCatalogClient(cfg, version, guard, observe, nil)
}

func newCatalogClient(cfg *Config, version string, guard catalog.Guard, observe catalog.Observer, tracing *Tracing) (*catalog.Client, error) {
	var hc *http.Client
	if tracing.Enabled() {
		// The client's own transport settings, plus a span and traceparent per request.
		conns := cfg.RateLimits.Upstream.MaxConcurrent
		if conns <= 0 {
			conns = 64
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conns, conns
		tr.DisableCompression = !cfg.Backstage.Compression
		tr.ResponseHeaderTimeout = cfg.Backstage.Timeout
		hc = &http.Client{Transport: tracing.Transport(tr)}
	}
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
		Compression:      cfg.Backstage.Compression,
		MaxConns:         cfg.RateLimits.Upstream.MaxConcurrent,
		HTTPClient:       hc,
		Guard:            guard,
		Observe:          observe,
	})
}

// catalogReader is what the tools, identity resolution and reviews read
// the catalog with: the Backstage client, or the mirror.
type catalogReader interface {
	tools.Catalog
	EntityReader
}

// newMirror builds the catalog mirror over upstream; the tools read it in
// process. The mirror is empty (not ready) until its first sync.
//
// The calls it answers keep the client's bounds (backstage.maxResponseBytes
// and backstage.timeout apply to each answer as to each response) and its
// tracing (one span per call, as one per request to Backstage).
func newMirror(cfg *Config, upstream mirror.Upstream, log *slog.Logger, metrics *Metrics,
	tracing *Tracing, now func() time.Time) (*mirror.Mirror, error) {
	mir, err := mirror.New(mirror.Config{
		Upstream:         upstream,
		SyncInterval:     cfg.Catalog.SyncInterval,
		MaxStaleness:     cfg.Catalog.MaxStaleness,
		PageSize:         cfg.Catalog.PageSize,
		BatchSize:        cfg.Catalog.BatchSize,
		MaxEntities:      cfg.Catalog.MaxEntities,
		FullSyncInterval: cfg.Catalog.FullSyncInterval,
		ChangeRetention:  cfg.Catalog.ChangeRetention,
		Logger:           log.With("component", "catalog-mirror"),
		OnSync:           metrics.mirrorSync,
		Now:              now,
		MaxAnswerBytes:   cfg.Backstage.MaxResponseBytes,
		CallTimeout:      cfg.Backstage.Timeout,
		Span:             tracing.MirrorSpan(),
	})
	if err != nil {
		return nil, fmt.Errorf("server: catalog: %w", err)
	}
	metrics.Gauge("backstage_mcp_catalog_mirror_entities", "Entities in the catalog mirror.",
		func() float64 { return float64(mir.Status().Entities) })
	metrics.Gauge("backstage_mcp_catalog_mirror_age_seconds",
		"Age of the catalog mirror's data: seconds since its last completed sync started (0 before the first); stale beyond maxStaleness.",
		func() float64 { return mir.Status().Age.Seconds() })
	metrics.Gauge("backstage_mcp_catalog_mirror_last_sync_duration_seconds",
		"Duration of the catalog mirror's last completed sync (full or delta): the data's age when it completed.",
		func() float64 { return mir.Status().SyncDuration.Seconds() })
	metrics.Gauge("backstage_mcp_catalog_mirror_last_full_sync_duration_seconds",
		"Duration of the catalog mirror's last completed full sync; maxStaleness should exceed syncInterval plus this.",
		func() float64 { return mir.Status().FullSyncDuration.Seconds() })
	metrics.Gauge("backstage_mcp_catalog_mirror_ready", "1 when the catalog mirror answers calls (synced, not stale: within maxStaleness), else 0.",
		func() float64 {
			if mir.Status().Ready {
				return 1
			}
			return 0
		})
	return mir, nil
}

// EntityReader is the part of the catalog client that identity
// resolution needs.
type EntityReader interface {
	Query(ctx context.Context, q catalog.Query) (*catalog.Page, error)
	GetByName(ctx context.Context, r catalog.Ref) (json.RawMessage, error)
}

// IdentityCatalog lets the identity resolver read users and groups through
// a catalog client (the server's own credential, never the user's token).
func IdentityCatalog(c EntityReader) identity.Catalog { return identityCatalog{c} }

type identityCatalog struct{ c EntityReader }

// The catalog client and the mirror serve the tools, identity resolution
// and reviews.
var (
	_ catalogReader    = (*catalog.Client)(nil)
	_ catalogReader    = (*mirror.Mirror)(nil)
	_ identity.Catalog = identityCatalog{}
)

func (ic identityCatalog) FindUsers(ctx context.Context, f catalog.Filter) ([]map[string]any, error) {
	page, err := ic.c.Query(ctx, catalog.Query{Filters: []catalog.Filter{f}, Limit: 10})
	if err != nil {
		return nil, err
	}
	return decodeAll(page.Items)
}

func (ic identityCatalog) GetEntity(ctx context.Context, ref string) (map[string]any, error) {
	r, err := catalog.ParseRef(ref, "")
	if err != nil {
		return nil, err
	}
	raw, err := ic.c.GetByName(ctx, r)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ms, err := decodeAll([]json.RawMessage{raw})
	if err != nil {
		return nil, err
	}
	return ms[0], nil
}

// storedLoginPrincipal verifies the token stored by `backstage-mcp login`
// exactly as HTTP tokens are verified, and re-verifies a refreshed token.
func storedLoginPrincipal(ctx context.Context, auth *identity.Authenticator, issuer string) (func(context.Context) (*identity.Principal, error), error) {
	_, ts, err := login.StoredToken(ctx, issuer)
	if err != nil {
		if errors.Is(err, login.ErrNotLoggedIn) {
			return nil, fmt.Errorf("server: not logged in to %s: run `backstage-mcp login --issuer %s --client-id <id>` first", issuer, issuer)
		}
		return nil, fmt.Errorf("server: stored login: %w", err)
	}
	var (
		mu     sync.Mutex
		lastAT string
		last   *identity.Principal
	)
	get := func(ctx context.Context) (*identity.Principal, error) {
		mu.Lock()
		defer mu.Unlock()
		tok, err := ts.Token()
		if err != nil {
			return nil, fmt.Errorf("server: refresh stored login: %w (run `backstage-mcp login` again)", err)
		}
		if last != nil && tok.AccessToken == lastAT && time.Until(last.ExpiresAt) > 0 {
			return last, nil
		}
		p, err := auth.VerifyToken(ctx, tok.AccessToken)
		if err != nil {
			return nil, fmt.Errorf("server: stored login token rejected: %w", err)
		}
		lastAT, last = tok.AccessToken, p
		return p, nil
	}
	if _, err := get(ctx); err != nil {
		return nil, err
	}
	return get, nil
}

func decodeAll(items []json.RawMessage) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		var m map[string]any
		if err := json.Unmarshal(it, &m); err != nil {
			return nil, fmt.Errorf("server: catalog entity: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}
