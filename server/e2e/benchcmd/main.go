// Command benchcmd is the end-to-end benchmark behind `make bench-e2e`: it
// generates a large catalog, loads it into a real Backstage (the e2e
// harness), and asks the same questions of backstage-mcp over Streamable
// HTTP, of Backstage's own MCP endpoint (plugin-mcp-actions-backend) and of
// Backstage's catalog REST API. It reports latency, throughput, answer
// sizes in bytes and tokens, peak memory and leaked secrets, and writes
// testdata/bench/results.md and results.json. With --soak it also runs
// 200 concurrent sessions of mixed tool calls against backstage-mcp and
// checks the audit trail.
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
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	entities     int
	seed         uint64
	phase        time.Duration
	warmup       time.Duration
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
	state           string
	only            string
	stateBlocks     int
	stateBlockCalls int
	binary          string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("benchcmd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.entities, "entities", 10000, "entities to generate and load into Backstage")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated catalog and question order")
	fs.DurationVar(&o.phase, "phase", 5*time.Second, "measured duration of each load phase (path × question × concurrency)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each phase")
	concStr := fs.String("concurrency", "1,16,64", "comma-separated concurrency levels")
	fs.IntVar(&o.hot, "hot", 32, "size of the hot set for repeated lookups")
	fs.IntVar(&o.sizeSample, "size-sample", 300, "lookups sampled for answer sizes (plus one search per 5)")
	fs.BoolVar(&o.soak, "soak", false, "also run the soak: --soak-sessions sessions of mixed calls for --soak-duration")
	fs.DurationVar(&o.soakDuration, "soak-duration", 60*time.Second, "soak duration")
	fs.IntVar(&o.soakSessions, "soak-sessions", 200, "concurrent soak sessions")
	fs.StringVar(&o.out, "out", "testdata/bench", "directory for results.md and results.json (relative to the repository root)")
	fs.BoolVar(&o.worktree, "worktree", false, "build backstage-mcp from the work tree instead of the committed HEAD")
	fs.StringVar(&o.state, "state", "memory", "memory, or redis: also measure the latency state: redis (Redis-backed limits and sessions) adds per call against state: memory, in interleaved blocks")
	fs.StringVar(&o.only, "only", "", "limits: run only the --state redis comparison, on the embedded demo catalog (no Backstage; about a minute); writes state-redis.md and .json")
	fs.StringVar(&o.binary, "binary", "", "with --only limits: use this backstage-mcp binary instead of building one")
	fs.IntVar(&o.stateBlocks, "state-blocks", 20, "interleaved blocks per mode in the --state redis comparison")
	fs.IntVar(&o.stateBlockCalls, "state-block-calls", 100, "sequential calls per block in the --state redis comparison")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (catalog, configs, logs, audit files)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
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
	if o.state != "memory" && o.state != "redis" {
		fmt.Fprintf(stderr, "benchcmd: --state must be memory or redis, not %q\n", o.state)
		return 2
	}
	if o.only != "" && (o.only != "limits" || o.state != "redis") {
		fmt.Fprintln(stderr, "benchcmd: --only takes one value, limits, and needs --state redis")
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

	root    string
	tmp     string
	binary  string
	res     results
	cleanup []func()
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
	if b.tmp, err = os.MkdirTemp("", "backstage-mcp-bench-"); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	if b.o.keep {
		b.log.Info("keeping temporary directory", "dir", b.tmp)
	} else {
		b.onExit(func() { _ = os.RemoveAll(b.tmp) })
	}
	b.res.Started = time.Now().UTC()
	b.res.Command = "go run ./server/e2e/benchcmd " + strings.Join(os.Args[1:], " ")
	b.res.Machine = machineInfo()
	b.res.Versions = versions(ctx, b.root, b.o.worktree)
	if b.o.only == "limits" {
		return b.runStateOnly(ctx)
	}

	// 1. Catalog.
	t0 := time.Now()
	catDir := filepath.Join(b.tmp, "catalog")
	if err := os.MkdirAll(catDir, 0o755); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	cat, err := generate(catDir, b.o.entities, b.o.seed)
	if err != nil {
		return err
	}
	b.log.Info("catalog generated", "entities", cat.Entities, "files", len(cat.Files), "took", time.Since(t0).Round(time.Millisecond))

	// 2. Backstage and backstage-mcp (built in parallel with Backstage's boot).
	buildErr := make(chan error, 1)
	go func() { buildErr <- b.build(ctx) }()
	bs, ingest, err := b.startBackstage(ctx, cat)
	if err != nil {
		<-buildErr
		return err
	}
	b.res.Catalog = catalogInfo{Generated: cat.Entities, Total: bs.Entities, Files: len(cat.Files), IngestSeconds: ingest.Seconds(), Kinds: map[string]int{}}
	for k, v := range cat.ByKind {
		b.res.Catalog.Kinds[k] = len(v)
	}
	b.log.Info("Backstage ready", "url", bs.BaseURL, "entities", bs.Entities, "boot+ingest", ingest.Round(time.Second))
	if err := <-buildErr; err != nil {
		return err
	}
	user := "user:default/" + cat.ByKind["user"][0].Name
	ours, err := b.startOurs(ctx, bs, user, "bench")
	if err != nil {
		return err
	}

	// 3. Callers: one session per worker for each MCP path.
	maxConc := 1
	for _, c := range b.o.conc {
		maxConc = max(maxConc, c)
	}
	paths, err := b.dialPaths(ctx, bs, ours.url, maxConc)
	if err != nil {
		return err
	}

	// 4. Questions, load phases, sizes, secrets.
	qs := b.questions(cat)
	if err := b.loadPhases(ctx, paths, qs); err != nil {
		return err
	}
	if err := b.sizes(ctx, paths, qs); err != nil {
		return err
	}
	if err := b.secrets(ctx, paths, cat); err != nil {
		return err
	}
	b.res.OursPeakRSSKiB, _ = procStatusKiB(ours.pid, "VmHWM")
	for _, p := range paths {
		for _, c := range p.callers {
			c.close()
		}
	}
	ours.stop()

	// 5. state: redis against state: memory, same catalog.
	if b.o.state == "redis" {
		b.log.Info("comparing state: redis with state: memory")
		st, err := b.compareState(ctx, bs.BaseURL, bs.Token, user, qs.hot)
		if err != nil {
			return err
		}
		b.res.State = st
	}

	// 6. Soak.
	if b.o.soak {
		if err := b.soak(ctx, bs, user, qs); err != nil {
			return err
		}
	}
	b.res.Finished = time.Now().UTC()
	return b.write()
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

// pathSet is one of the three paths with its callers.
type pathSet struct {
	name    string // "ours", "peer", "rest"
	callers []caller
}

func (b *bench) dialPaths(ctx context.Context, bs *backstage, oursURL string, n int) ([]*pathSet, error) {
	ours := &pathSet{name: "ours"}
	peer := &pathSet{name: "peer"}
	rest := &pathSet{name: "rest"}
	oursHC := &http.Client{Transport: newTransport()}
	peerHC := &http.Client{Transport: newTransport()}
	restHC := &http.Client{Transport: newTransport(), Timeout: 30 * time.Second}
	for i := 0; i < n; i++ {
		c, err := dialMCP(ctx, oursURL+"/mcp", oursHC, nil, true)
		if err != nil {
			return nil, err
		}
		ours.callers = append(ours.callers, c)
		b.onExit(c.close)
		p, err := dialMCP(ctx, bs.BaseURL+"/api/mcp-actions/v1", peerHC, map[string]string{"Authorization": "Bearer " + bs.Token}, false)
		if err != nil {
			return nil, err
		}
		peer.callers = append(peer.callers, p)
		b.onExit(p.close)
		rest.callers = append(rest.callers, &restCaller{base: bs.BaseURL, token: bs.Token, hc: restHC})
	}
	b.res.PeerTools = [2]string{peer.callers[0].(*mcpCaller).getTool, peer.callers[0].(*mcpCaller).qryTool}
	return []*pathSet{ours, peer, rest}, nil
}
