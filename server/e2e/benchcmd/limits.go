package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/redis/go-redis/v9"
)

// stateResult is the --state redis comparison: the same calls, in
// interleaved blocks, against two backstage-mcp processes that differ only
// in `state` (memory or redis), with finite rate limits so that every call
// charges its three buckets (user × class, agent, global).
type stateResult struct {
	Catalog      string  `json:"catalog"`
	Tool         string  `json:"tool"`
	Blocks       int     `json:"blocks"`
	BlockCalls   int     `json:"calls_per_block"`
	RedisVersion string  `json:"redis_version"`
	Memory       latency `json:"memory"`
	Redis        latency `json:"redis"`
	AddedP50Ms   float64 `json:"added_p50_ms"`
	AddedP99Ms   float64 `json:"added_p99_ms"`
	AddedMeanMs  float64 `json:"added_mean_ms"`
}

// latency is one mode's figures over all its blocks.
type latency struct {
	Calls  int     `json:"calls"`
	Failed int     `json:"failed"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// stateConfig is the configuration of one side of the comparison. Both
// sides get the same finite (never reached) limits, so the only difference
// is where the buckets and the session records live. The audit trail is
// synced at an interval on both sides, so that fsync times do not blur the
// small difference this comparison measures.
func stateConfig(mode, backstageURL, policy, auditPath, redisURL string) string {
	cfg := oursConfig(oursSettings{backstageURL: backstageURL, policy: policy, auditPath: auditPath,
		auditSync: "interval", bucket: "{ requests: 1000000, per: 1s, burst: 1000000 }"}) + "state: " + mode + "\n"
	if mode == "redis" {
		cfg += fmt.Sprintf("redis:\n  url: %s\n  keyPrefix: \"bench:\"\n", redisURL)
	}
	return cfg
}

// compareState measures the latency state: redis adds to a tools/call
// against state: memory. backstageURL "" uses the embedded demo catalog
// (--only state); otherwise the Backstage of the main run. refs are the
// entities asked for, round robin.
func (b *bench) compareState(ctx context.Context, backstageURL, token, user string, refs []entityRef) (*stateResult, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("benchcmd: state: no entities to ask for")
	}
	rs, err := b.startRedis(ctx)
	if err != nil {
		return nil, err
	}
	policy := filepath.Join(b.root, "testdata", "policies", "anonymous-read.yaml")
	args := []string{"--insecure-local-user", user}
	res := &stateResult{Catalog: "Backstage (the generated catalog above)", Tool: "catalog_get_entity (summary)", Blocks: b.o.stateBlocks, BlockCalls: b.o.stateBlockCalls, RedisVersion: rs.version}
	if backstageURL == "" {
		args = append(args, "--demo")
		res.Catalog = "the embedded demo catalog (no Backstage)"
	}
	callers := map[string]caller{}
	for _, mode := range []string{"memory", "redis"} {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(b.tmp, "state-"+mode)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("benchcmd: %w", err)
		}
		cfg := stateConfig(mode, backstageURL, policy, filepath.Join(dir, "audit.log"), rs.url)
		p, err := b.launchOurs(ctx, dir, port, cfg, args, "BENCH_BACKSTAGE_TOKEN="+token)
		if err != nil {
			return nil, fmt.Errorf("benchcmd: state %s: %w", mode, err)
		}
		c, err := dialMCP(ctx, p.url+"/mcp", &http.Client{Transport: newTransport()}, nil, true)
		if err != nil {
			return nil, fmt.Errorf("benchcmd: state %s: %w", mode, err)
		}
		b.onExit(c.close)
		callers[mode] = c
	}
	next := 0
	ask := func(mode string) (time.Duration, bool, error) {
		q := question{Kind: qGet, Ref: refs[next%len(refs)]}
		next++
		t0 := time.Now()
		a, err := callers[mode].call(ctx, q, false)
		d := time.Since(t0)
		if err != nil {
			return 0, false, fmt.Errorf("benchcmd: state %s: %w", mode, err)
		}
		return d, !a.ToolError, nil
	}
	// Warm-up: connections, the upstream cache, the Redis scripts.
	for range 100 {
		for _, mode := range []string{"memory", "redis"} {
			if _, ok, err := ask(mode); err != nil {
				return nil, err
			} else if !ok {
				return nil, fmt.Errorf("benchcmd: state %s: a warm-up call failed (tool error)", mode)
			}
		}
	}
	samples := map[string][]time.Duration{}
	failed := map[string]int{}
	for blk := range b.o.stateBlocks {
		order := []string{"memory", "redis"}
		if blk%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, mode := range order {
			next = blk * b.o.stateBlockCalls // the same entities in both modes
			for range b.o.stateBlockCalls {
				d, ok, err := ask(mode)
				if err != nil {
					return nil, err
				}
				if !ok {
					failed[mode]++
					continue
				}
				samples[mode] = append(samples[mode], d)
			}
		}
	}
	fill := func(mode string) latency {
		l := latency{Calls: len(samples[mode]) + failed[mode], Failed: failed[mode]}
		l.P50Ms, _, l.P99Ms, l.MeanMs = latencyStats(samples[mode])
		return l
	}
	res.Memory, res.Redis = fill("memory"), fill("redis")
	res.AddedP50Ms = res.Redis.P50Ms - res.Memory.P50Ms
	res.AddedP99Ms = res.Redis.P99Ms - res.Memory.P99Ms
	res.AddedMeanMs = res.Redis.MeanMs - res.Memory.MeanMs
	if res.Memory.Failed+res.Redis.Failed > 0 {
		return res, fmt.Errorf("benchcmd: state: %d memory and %d redis calls failed (limits reached or a hidden entity?)", res.Memory.Failed, res.Redis.Failed)
	}
	return res, nil
}

// demoRefs returns the demo catalog's components, APIs and systems in the
// default namespace, sorted as the demo lists them.
func demoRefs() ([]entityRef, error) {
	ents, err := demo.Entities()
	if err != nil {
		return nil, fmt.Errorf("benchcmd: demo catalog: %w", err)
	}
	var out []entityRef
	for _, e := range ents {
		r, ok := catalog.RefOf(e)
		if !ok {
			continue
		}
		k := strings.ToLower(r.Kind)
		if (k == "component" || k == "api" || k == "system") && r.Namespace == "default" {
			out = append(out, entityRef{Kind: k, Namespace: r.Namespace, Name: r.Name})
		}
	}
	return out, nil
}

// redisProc is a redis-server started for the comparison.
type redisProc struct {
	url     string
	version string
}

// startRedis starts redis-server (the Debian package, or $REDIS_SERVER) on
// a free loopback port without persistence, the way the tests' redistest
// does, and stops it when the run ends.
func (b *bench) startRedis(ctx context.Context) (*redisProc, error) {
	bin := os.Getenv("REDIS_SERVER")
	if bin == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return nil, fmt.Errorf("benchcmd: --state redis needs redis-server in PATH (Debian: apt-get install redis-server; `make redis-server`): %w", err)
		}
		bin = p
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.tmp, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("benchcmd: %w", err)
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
		"--loglevel", "warning", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("benchcmd: start redis-server: %w", err)
	}
	b.onExit(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("benchcmd: redis-server on %s did not answer PING within 10s; see %s", addr, filepath.Join(dir, "redis.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	version := "?"
	if info, err := rdb.Info(ctx, "server").Result(); err == nil {
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				version = v
			}
		}
	}
	return &redisProc{url: "redis://" + addr + "/0", version: version}, nil
}

// stateMarkdown is the results section of the comparison.
func stateMarkdown(s *stateResult) string {
	var w strings.Builder
	fmt.Fprintf(&w, "\n## state: redis against state: memory\n\n")
	fmt.Fprintf(&w, "Two backstage-mcp processes, same binary, same catalog (%s), same policy, the audit synced at an interval, and the same finite limits "+
		"(never reached, so every call charges its user × class, agent and global buckets); they differ only in `state`. "+
		"One redis-server %s on loopback. %s, one session per process, sequential calls, %d interleaved blocks of %d calls per mode "+
		"(the order alternates each block, both modes ask for the same entities), after 100 warm-up calls each. "+
		"With `state: redis` each call also reads and touches its session record in Redis, so the added figure is "+
		"what a call costs a deployment with replicas: limits and session in Redis.\n\n",
		s.Catalog, s.RedisVersion, s.Tool, s.Blocks, s.BlockCalls)
	fmt.Fprintf(&w, "| state | calls | failed | p50 ms | p99 ms | mean ms |\n|---|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&w, "| memory | %d | %d | %.3f | %.3f | %.3f |\n", s.Memory.Calls, s.Memory.Failed, s.Memory.P50Ms, s.Memory.P99Ms, s.Memory.MeanMs)
	fmt.Fprintf(&w, "| redis | %d | %d | %.3f | %.3f | %.3f |\n", s.Redis.Calls, s.Redis.Failed, s.Redis.P50Ms, s.Redis.P99Ms, s.Redis.MeanMs)
	fmt.Fprintf(&w, "| **added by redis** | | | **%+.3f** | **%+.3f** | **%+.3f** |\n", s.AddedP50Ms, s.AddedP99Ms, s.AddedMeanMs)
	return w.String()
}

// runStateOnly is --only limits: build, compare on the demo catalog, and
// write state-redis.md and state-redis.json (results.md is left alone).
func (b *bench) runStateOnly(ctx context.Context) error {
	if b.o.binary != "" {
		b.binary = b.o.binary
	} else if err := b.build(ctx); err != nil {
		return err
	}
	refs, err := demoRefs()
	if err != nil {
		return err
	}
	st, err := b.compareState(ctx, "", "", "user:default/amelia.hart", refs)
	if err != nil {
		return err
	}
	dir := b.o.out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(b.root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	out := struct {
		Started time.Time         `json:"started"`
		Command string            `json:"command"`
		Machine machine           `json:"machine"`
		Version map[string]string `json:"versions"`
		State   *stateResult      `json:"state"`
	}{b.res.Started, b.res.Command, b.res.Machine, b.res.Versions, st}
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state-redis.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	md := fmt.Sprintf("# backstage-mcp: state redis against memory\n\n`%s`, %s, %s.\n%s", b.res.Command,
		b.res.Started.Format("2006-01-02 15:04 UTC"), fmt.Sprintf("%d CPUs, %s, %d MiB, shared by the load generator, backstage-mcp and redis-server", b.res.Machine.CPUs, b.res.Machine.CPUModel, b.res.Machine.MemoryMiB), stateMarkdown(st))
	if err := os.WriteFile(filepath.Join(dir, "state-redis.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("benchcmd: %w", err)
	}
	fmt.Fprint(b.stdout, md)
	return nil
}
