// Command benchcmd is the end-to-end benchmark behind `make bench-e2e`: it
// generates a large catalog, loads it into a real Backstage (the e2e
// harness, on a PostgreSQL cluster of its own whose ingested state is kept
// in a cache: dbcache.go), and asks the same questions of backstage-mcp over
// Streamable HTTP (one process per configuration in oursVariants: the
// shipped defaults first), of Backstage's own MCP endpoint
// (plugin-mcp-actions-backend), of Backstage's catalog REST API, of the
// same REST API through a trivial pass-through reverse proxy (the floor of
// any proxy), and of two trivial mcp-go servers (one forwarding to REST,
// one answering without work: the floors of any MCP server and of any MCP
// answer). It does so at every catalog size of --scale, and reports
// latency, throughput, answer sizes in bytes and tokens, peak memory and
// leaked secrets, and writes testdata/bench/results.md and results.json.
// With --soak it also runs 200 concurrent sessions of mixed tool calls
// against backstage-mcp and checks the audit trail.
//
// Run it from the repository:
//
//	go run ./server/e2e/benchcmd --soak
//
// It needs node and npm (for Backstage and the tokenizer) and Go. Method
// and caveats: testdata/bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	// scales are the catalog sizes measured, one Backstage each; the
	// first also gets the answer-size, secrets, state and soak parts.
	scales       []int
	seed         uint64
	phase        time.Duration
	warmup       time.Duration
	minCalls     int
	rounds       int
	phaseMax     time.Duration
	restGzip     bool
	conc         []int
	hot          int
	sizeSample   int
	soak         bool
	soakDuration time.Duration
	soakSessions int
	out          string
	keep         bool
	worktree     bool
	// state is "memory" (default) or "redis": with redis, the run also
	// compares state: redis with state: memory (rate limits and sessions
	// in Redis) in interleaved blocks.
	state string
	only  string
	// scenarios, when set, keeps only the load phases of these scenario
	// keys (see scenarioKeys); sizes, secrets and the rest still run.
	scenarios       map[string]bool
	stateBlocks     int
	stateBlockCalls int
	binary          string
	// backstageDB is Backstage's database: dbPostgres or dbMemory
	// (dbcache.go).
	backstageDB string
	// dbCache is the directory of the catalog database cache.
	dbCache string
	// fullUpTo is the largest size measured on every path; larger ones
	// measure REST and the mirror only.
	fullUpTo int
	// prepare only fills the database cache: Backstage ingests each
	// scale's catalog, and nothing is measured.
	prepare bool
	// floorListen and floorTarget run this program as the floor proxy.
	floorListen string
	floorTarget string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("benchcmd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scaleStr := fs.String("scale", "10000,30000", "comma-separated catalog sizes (generated entities), one Backstage each, measured in this order; the first also gets the peer, the hot set, relations, owner, answer sizes, secrets, --state and --soak")
	entities := fs.Int("entities", 0, "one catalog size: the same as --scale N")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated catalog and question order")
	fs.DurationVar(&o.phase, "phase", 5*time.Second, "shortest measuring window of each load phase (path × question × concurrency)")
	fs.IntVar(&o.minCalls, "min-calls", 20, "fewest calls that must end inside a measuring window (at least twice the concurrency): slow phases run longer until they have")
	fs.IntVar(&o.rounds, "rounds", 1, "measure each (question, concurrency) block this many times over all paths, alternating their order, and merge the windows (interleaving evens out drift between paths)")
	fs.DurationVar(&o.phaseMax, "phase-max", 3*time.Minute, "cap on one phase, warm-up included (a phase that reaches it is marked capped)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "shortest unmeasured warm-up before each phase (it also lasts until every worker has finished a call)")
	fs.BoolVar(&o.restGzip, "rest-gzip", false, "let the REST and floor clients ask Backstage for gzip (Go's default); without it they ask for identity encoding, the cheaper and stricter baseline")
	concStr := fs.String("concurrency", "1,16", "comma-separated concurrency levels")
	scStr := fs.String("scenarios", "", "comma-separated load scenarios to run, of: "+strings.Join(scenarioKeys, ", ")+" (default all); for a diagnostic run: pair it with --out elsewhere, since the report then lacks the other rows")
	fs.IntVar(&o.hot, "hot", 32, "size of the hot set for repeated lookups")
	fs.IntVar(&o.sizeSample, "size-sample", 300, "lookups sampled for answer sizes (plus one search per 5)")
	fs.BoolVar(&o.soak, "soak", false, "also run the soak: --soak-sessions sessions of mixed calls for --soak-duration")
	fs.DurationVar(&o.soakDuration, "soak-duration", 60*time.Second, "soak duration")
	fs.IntVar(&o.soakSessions, "soak-sessions", 200, "concurrent soak sessions")
	fs.StringVar(&o.out, "out", "testdata/bench", "directory for results.md and results.json (relative to the repository root)")
	fs.BoolVar(&o.worktree, "worktree", false, "build backstage-mcp from the work tree instead of the committed HEAD")
	fs.StringVar(&o.state, "state", "memory", "memory, or redis: also measure the latency state: redis (Redis-backed limits and sessions) adds per call against state: memory, in interleaved blocks")
	fs.StringVar(&o.only, "only", "", "limits: run only the --state redis comparison, on the embedded demo catalog (no Backstage; about a minute); writes state-redis.md and .json. readme: measure nothing, write the summary table of --out's results.json into README.md's performance section")
	fs.StringVar(&o.binary, "binary", "", "with --only limits: use this backstage-mcp binary instead of building one")
	fs.IntVar(&o.stateBlocks, "state-blocks", 20, "interleaved blocks per mode in the --state redis comparison")
	fs.IntVar(&o.stateBlockCalls, "state-block-calls", 100, "sequential calls per block in the --state redis comparison")
	fs.StringVar(&o.backstageDB, "backstage-db", dbPostgres, "Backstage's catalog database: postgres (a PostgreSQL cluster of the bench's own, from the Debian package, kept per catalog in --db-cache so a later run boots on it instead of ingesting again), or memory (SQLite in memory, ingested on every run; too slow for 100,000 entities)")
	fs.StringVar(&o.dbCache, "db-cache", ".cache/bench-backstage", "directory (relative to the repository root) of the PostgreSQL database cache")
	fs.IntVar(&o.fullUpTo, "full-up-to", 50000, "the largest --scale measured on every path; larger sizes measure only REST and the mirror (pass-through searches there take seconds each)")
	fs.BoolVar(&o.prepare, "prepare", false, "only fill the PostgreSQL database cache (--db-cache) for every --scale, measuring nothing: run it once, e.g. in the background, before a run at 100,000 entities")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (catalog, configs, logs, audit files); it is also kept when calls fail")
	fs.StringVar(&o.floorListen, "floor-listen", "", "internal: serve as the floor proxy on this address")
	fs.StringVar(&o.floorTarget, "floor-target", "", "internal: the floor proxy's upstream URL")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.floorListen != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serveFloor(ctx, o.floorListen, o.floorTarget, stderr)
	}
	if *entities != 0 {
		*scaleStr = fmt.Sprint(*entities)
	}
	for _, f := range strings.Split(*scaleStr, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%d", &n); err != nil || n < 100 || n > 1000000 {
			fmt.Fprintf(stderr, "benchcmd: bad --scale %q (sizes from 100 to 1000000)\n", *scaleStr)
			return 2
		}
		o.scales = append(o.scales, n)
	}
	if o.minCalls < 1 || o.rounds < 1 || o.phase <= 0 || o.warmup < 0 || o.phaseMax < o.warmup+o.phase {
		fmt.Fprintln(stderr, "benchcmd: --min-calls and --rounds must be at least 1, --phase positive, and --phase-max at least --warmup plus --phase")
		return 2
	}
	for _, f := range strings.Split(*concStr, ",") {
		var c int
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%d", &c); err != nil || c < 1 || c > 1024 {
			fmt.Fprintf(stderr, "benchcmd: bad --concurrency %q\n", *concStr)
			return 2
		}
		o.conc = append(o.conc, c)
	}
	if *scStr != "" {
		o.scenarios = map[string]bool{}
		for _, f := range strings.Split(*scStr, ",") {
			k := strings.TrimSpace(f)
			if !slices.Contains(scenarioKeys, k) {
				fmt.Fprintf(stderr, "benchcmd: bad --scenarios %q: each must be one of %s\n", *scStr, strings.Join(scenarioKeys, ", "))
				return 2
			}
			o.scenarios[k] = true
		}
	}
	if o.backstageDB != dbPostgres && o.backstageDB != dbMemory {
		fmt.Fprintf(stderr, "benchcmd: --backstage-db must be postgres or memory, not %q\n", o.backstageDB)
		return 2
	}
	if o.prepare && o.backstageDB != dbPostgres {
		fmt.Fprintln(stderr, "benchcmd: --prepare fills the PostgreSQL database cache: it needs --backstage-db postgres")
		return 2
	}
	if o.state != "memory" && o.state != "redis" {
		fmt.Fprintf(stderr, "benchcmd: --state must be memory or redis, not %q\n", o.state)
		return 2
	}
	if o.only != "" && o.only != "readme" && (o.only != "limits" || o.state != "redis") {
		fmt.Fprintln(stderr, "benchcmd: --only takes readme, or limits with --state redis")
		return 2
	}
	if o.stateBlocks < 2 || o.stateBlockCalls < 1 {
		fmt.Fprintln(stderr, "benchcmd: --state-blocks must be at least 2 and --state-block-calls at least 1")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{o: o, log: log, stdout: stdout, rng: rand.New(rand.NewPCG(o.seed, 7))}
	if err := b.run(ctx); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// bench holds the state of one run.
type bench struct {
	o      options
	log    *slog.Logger
	stdout io.Writer
	rng    *rand.Rand
	// guide is the link from the report's folder to testdata/bench/README.md
	// (method and caveats), set by write.
	guide string

	root    string
	tmp     string
	binary  string
	res     results
	cleanup []func()
	// failed is set when a phase had failed calls: the temporary
	// directory (server logs, audit files) is then kept for diagnosis.
	failed atomic.Bool
}

func (b *bench) onExit(f func()) { b.cleanup = append(b.cleanup, f) }

func (b *bench) run(ctx context.Context) (err error) {
	defer func() {
		for i := len(b.cleanup) - 1; i >= 0; i-- {
			b.cleanup[i]()
		}
	}()
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	if b.root, err = findRoot(wd); err != nil {
		return err
	}
	if b.o.only == "readme" {
		return b.renderReadme()
	}
	if !filepath.IsAbs(b.o.dbCache) {
		b.o.dbCache = filepath.Join(b.root, b.o.dbCache)
	}
	if b.tmp, err = os.MkdirTemp("", "backstage-mcp-bench-"); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	if b.o.keep {
		b.log.Info("keeping temporary directory", "dir", b.tmp)
	} else {
		b.onExit(func() {
			if b.failed.Load() {
				b.log.Warn("calls failed; keeping the temporary directory (server logs, audit files)", "dir", b.tmp)
				return
			}
			_ = os.RemoveAll(b.tmp)
		})
	}
	b.res.Started = time.Now().UTC()
	b.res.Command = "go run ./server/e2e/benchcmd " + strings.Join(os.Args[1:], " ")
	b.res.Machine = machineInfo()
	b.res.Versions = versions(ctx, b.root, b.o.worktree)
	b.res.RESTGzip = b.o.restGzip
	for _, v := range oursVariants {
		b.res.Variants = append(b.res.Variants, variantInfo{Path: v.name, Label: v.label, Note: v.note})
	}
	if b.o.only == "limits" {
		return b.runStateOnly(ctx)
	}

	// The binary is built once, in parallel with the first Backstage's boot.
	buildErr := make(chan error, 1)
	go func() { buildErr <- b.build(ctx) }()
	waitBuild := sync.OnceValue(func() error { return <-buildErr })
	for i, n := range b.o.scales {
		if err := b.runScale(ctx, n, i == 0, waitBuild); err != nil {
			_ = waitBuild() // the build must not outlive the temporary directory
			if i == 0 || ctx.Err() != nil || b.o.prepare {
				return err
			}
			// Keep what the smaller sizes measured.
			b.res.Incomplete = fmt.Sprintf("the run stopped at %d entities: %v", n, err)
			b.res.Finished = time.Now().UTC()
			if werr := b.write(); werr != nil {
				b.log.Error("writing the partial results", "err", werr)
			}
			return err
		}
	}
	b.res.Finished = time.Now().UTC()
	if b.o.prepare {
		b.log.Info("database cache filled; nothing measured", "cache", b.o.dbCache)
		return nil
	}
	return b.write()
}

// runScale measures one catalog size on a Backstage of its own, stopped at
// the end so the next size has the machine to itself. The first size also
// gets the answer sizes, the secrets check, the --state comparison and the
// soak.
func (b *bench) runScale(ctx context.Context, n int, first bool, waitBuild func() error) error {
	t0 := time.Now()
	catDir := filepath.Join(b.tmp, fmt.Sprintf("catalog-%d", n))
	if err := os.MkdirAll(catDir, 0o755); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	cat, err := generate(catDir, n, b.o.seed)
	if err != nil {
		return err
	}
	b.log.Info("catalog generated", "entities", cat.Entities, "files", len(cat.Files), "took", time.Since(t0).Round(time.Millisecond))
	bs, stopBackstage, ingest, db, err := b.startBackstage(ctx, cat)
	if err != nil {
		return err
	}
	defer stopBackstage()
	info := catalogInfo{Scale: n, Generated: cat.Entities, Total: bs.Entities, Files: len(cat.Files), IngestSeconds: ingest.Seconds(), DB: db, Kinds: map[string]int{}}
	for k, v := range cat.ByKind {
		info.Kinds[k] = len(v)
	}
	b.res.Catalogs = append(b.res.Catalogs, info)
	b.log.Info("Backstage ready", "url", bs.BaseURL, "entities", bs.Entities, "boot+ingest", ingest.Round(time.Second))
	if b.o.prepare {
		return nil
	}
	if err := waitBuild(); err != nil {
		return err
	}
	user := "user:default/" + cat.ByKind["user"][0].Name

	// backstage-mcp once per variant, and the floor proxy. Above
	// --full-up-to entities only the mirror runs (and only REST and the
	// mirror are measured): a pass-through search there takes seconds.
	full := n <= b.o.fullUpTo
	var procs []*oursProc
	var procNames []string
	oursURLs := map[string]string{}
	for _, v := range oursVariants {
		if !full && !mirrorOnly(v.name) {
			continue
		}
		p, err := b.startOurs(ctx, bs, user, fmt.Sprintf("%s-%d", v.name, n), v)
		if err != nil {
			return fmt.Errorf("benchcmd: %s: %w", v.label, err)
		}
		procs = append(procs, p)
		procNames = append(procNames, v.name)
		oursURLs[v.name] = p.url
	}
	floorURL, stopFloor, err := b.startFloor(ctx, bs.BaseURL, bs.Token)
	if err != nil {
		return err
	}
	defer stopFloor()

	// Callers: one session per worker for each MCP path.
	maxConc := 1
	for _, c := range b.o.conc {
		maxConc = max(maxConc, c)
	}
	paths, err := b.dialPaths(ctx, bs, oursURLs, floorURL, maxConc, first)
	if err != nil {
		return err
	}
	closeCallers := sync.OnceFunc(func() {
		for _, p := range paths {
			for _, c := range p.callers {
				c.close()
			}
		}
	})
	defer closeCallers()

	// Questions, load phases, and on the first size sizes and secrets.
	qs := b.questions(cat)
	if !full {
		paths = slices.DeleteFunc(paths, func(p *pathSet) bool { return !mirrorOnly(p.name) })
	}
	if err := b.loadPhases(ctx, n, first, paths, qs); err != nil {
		return err
	}
	if first {
		// Sizes and secrets on the shipped defaults, the peer and REST.
		var three []*pathSet
		for _, name := range []string{"ours", pathPeer, pathRest} {
			for _, p := range paths {
				if p.name == name {
					three = append(three, p)
				}
			}
		}
		if err := b.sizes(ctx, three, qs); err != nil {
			return err
		}
		if err := b.secrets(ctx, three, cat); err != nil {
			return err
		}
	}
	closeCallers()
	for i, name := range procNames {
		if kib, err := procStatusKiB(procs[i].pid, "VmHWM"); err == nil {
			pr := peakRSS{Scale: n, Path: name, KiB: kib, ReadyMs: procs[i].ready.Milliseconds()}
			if strings.Contains(name, "mirror") {
				if st, err := mirrorSyncs(ctx, procs[i].admin); err != nil {
					b.log.Warn("mirror sync figures not read", "path", name, "err", err)
				} else {
					pr.DeltaSyncs = &st
				}
				pr.AtReady = procs[i].atReady
				if f, err := readyzFreshness(ctx, procs[i].admin); err != nil {
					b.log.Warn("mirror freshness after the load phases not read", "path", name, "err", err)
				} else {
					pr.AtEnd = f
				}
				b.log.Info("mirror freshness", "path", name, "entities", n, "atReady", pr.AtReady, "atEnd", pr.AtEnd)
			}
			b.res.PeakRSS = append(b.res.PeakRSS, pr)
			if first && i == 0 {
				b.res.OursPeakRSSKiB = kib
			}
		}
		procs[i].stop()
	}
	if !first {
		return nil
	}

	// state: redis against state: memory, same catalog.
	if b.o.state == "redis" {
		b.log.Info("comparing state: redis with state: memory")
		st, err := b.compareState(ctx, bs.BaseURL, bs.Token, user, qs.hot)
		if err != nil {
			return err
		}
		b.res.State = st
	}
	if b.o.soak {
		if err := b.soak(ctx, bs, user, qs); err != nil {
			return err
		}
	}
	return nil
}

// findRoot returns the nearest directory at or above dir holding go.mod.
func findRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("benchcmd: run it inside the repository (no go.mod found)")
		}
		dir = parent
	}
}

// pathSet is one path (REST, the floor, the peer, or a backstage-mcp
// variant) with its callers.
type pathSet struct {
	name    string // pathRest, pathFloor, pathPeer, or an oursVariant name
	callers []caller
}

// dialPaths connects n callers to every path, in the order the phases
// measure them: REST, the floor, the MCP floor, backstage-mcp's variants, and on the
// first catalog size the peer.
func (b *bench) dialPaths(ctx context.Context, bs *backstage, oursURLs map[string]string, floorURL string, n int, first bool) ([]*pathSet, error) {
	rest := &pathSet{name: pathRest}
	floor := &pathSet{name: pathFloor}
	mfloor := &pathSet{name: pathMCPFloor}
	mempty := &pathSet{name: pathMCPEmpty}
	peer := &pathSet{name: pathPeer}
	restHC := &http.Client{Transport: newRESTTransport(b.o.restGzip), Timeout: callTimeout}
	floorHC := &http.Client{Transport: newRESTTransport(b.o.restGzip), Timeout: callTimeout}
	peerHC := &http.Client{Transport: newTransport()}
	mfloorHC := &http.Client{Transport: newTransport()}
	memptyHC := &http.Client{Transport: newTransport()}
	var ours []*pathSet
	var oursHC []*http.Client
	for _, v := range oursVariants {
		ours = append(ours, &pathSet{name: v.name})
		oursHC = append(oursHC, &http.Client{Transport: newTransport()})
	}
	if !first {
		peer = nil // the peer is compared on the first size only
	}
	for i := 0; i < n; i++ {
		rest.callers = append(rest.callers, &restCaller{base: bs.BaseURL, token: bs.Token, hc: restHC})
		floor.callers = append(floor.callers, &restCaller{base: floorURL, token: bs.Token, hc: floorHC})
		mc, err := dialMCP(ctx, floorURL+"/mcp", mfloorHC, nil, true)
		if err != nil {
			return nil, fmt.Errorf("benchcmd: MCP floor: %w", err)
		}
		mfloor.callers = append(mfloor.callers, mc)
		b.onExit(mc.close)
		me, err := dialMCP(ctx, floorURL+"/mcp-empty", memptyHC, nil, true)
		if err != nil {
			return nil, fmt.Errorf("benchcmd: MCP empty-answer floor: %w", err)
		}
		mempty.callers = append(mempty.callers, me)
		b.onExit(me.close)
		for j, v := range oursVariants {
			if oursURLs[v.name] == "" {
				continue // not started at this size
			}
			c, err := dialMCP(ctx, oursURLs[v.name]+"/mcp", oursHC[j], nil, true)
			if err != nil {
				return nil, err
			}
			ours[j].callers = append(ours[j].callers, c)
			b.onExit(c.close)
		}
		if peer == nil {
			continue
		}
		p, err := dialMCP(ctx, bs.BaseURL+"/api/mcp-actions/v1", peerHC, map[string]string{"Authorization": "Bearer " + bs.Token}, false)
		if err != nil {
			return nil, err
		}
		peer.callers = append(peer.callers, p)
		b.onExit(p.close)
	}
	out := []*pathSet{rest, floor, mfloor, mempty}
	out = append(out, ours...)
	if peer == nil {
		return out, nil
	}
	b.res.PeerTools = [2]string{peer.callers[0].(*mcpCaller).getTool, peer.callers[0].(*mcpCaller).qryTool}
	return append(out, peer), nil
}
