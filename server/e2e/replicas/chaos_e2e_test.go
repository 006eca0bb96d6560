//go:build e2e

package replicas

import (
	"bufio"
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
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
	"github.com/backstage-mcp/backstage-mcp/server/internal/testtools"
	"github.com/go-jose/go-jose/v4"
)

// TestChaos is issue 28's fleet under faults: three replicas of the real
// binary behind a round-robin balancer that, like Kubernetes with the
// chart's probe, sends calls only to replicas whose /readyz answered 200
// (out after two failed polls in a row); Redis as a primary, a replica
// and three sentinels (real redis-server, down after 1 s), which the
// replicas follow through redis.sentinel; a real Backstage behind a proxy
// that can delay it; load from six agents of three users (sessions,
// cursors across replicas, entity reads). Faults come one at a time: the
// Redis primary killed (Sentinel promotes the replica; the old primary
// comes back as a replica), a planned switchover (SENTINEL FAILOVER),
// Redis stopped and restarted empty (primary and replica), Redis wiped
// (FLUSHALL on the current primary), a replica killed (SIGKILL) and
// restarted, Backstage slowed by 3 s, the identity provider down, a
// replica's audit disk (a tmpfs: the test runs as root in CI) filled and
// freed. It asserts that every answered call, and every tools/call
// refused with 503 while the session store is unavailable, has exactly
// one audit record across the replicas' files; that no cursor is refused;
// that at least one replica is ready at every poll, and none leaves
// rotation while a shared dependency (Redis, Backstage, the identity
// provider) fails; it logs the recovery time of each fault (for the
// Sentinel faults from the fault itself, with the time until the
// sentinels name the new primary) and the calls answered and refused per
// replica.
func TestChaos(t *testing.T) {
	dir := t.TempDir()
	ss := redistest.StartSentinelSet(t, "chaos", 3)
	op := newIdP(t)
	bs := harness.Start(t, 0)
	slow := newDelayProxy(t, bs.BaseURL)
	tokenFile := filepath.Join(dir, "backstage.token")
	if err := os.WriteFile(tokenFile, []byte(bs.Token), 0o600); err != nil {
		t.Fatal(err)
	}

	// replica-c's audit directory is a small tmpfs that the test fills.
	diskDir := filepath.Join(dir, "replica-c")
	diskOK := mountTmpfs(t, diskDir, "16m")

	lb := newReadyBalancer(t)
	publicURL := lb.url
	unlimited := "rateLimits:\n  classes:\n    default: {requests: 1000000, per: 1s, burst: 1000000}\n" +
		"  agent: {requests: 1000000, per: 1s, burst: 1000000}\n  global: {requests: 1000000, per: 1s, burst: 1000000}\n"
	extra := fmt.Sprintf("backstage:\n  baseUrl: %s\n  tokenFile: %s\n  timeout: 10s\n%s", slow.srv.URL, tokenFile, unlimited)
	redisYAML := fmt.Sprintf("redis:\n  sentinel:\n    masterName: %s\n    addrs: [%s]\n", ss.MasterName, strings.Join(ss.SentinelAddrs(), ", "))
	names := []string{"replica-a", "replica-b", "replica-c"}
	reps := make([]*chaosReplica, len(names))
	for i, n := range names {
		reps[i] = startChaosReplica(t, dir, n, publicURL, op.srv.URL, redisYAML, extra)
		lb.add(n, reps[i].addr)
	}
	lb.start()
	audience := publicURL + "/mcp"

	// Readiness poller: the balancer's view, and the "at least one ready"
	// assertion.
	st := newChaosStats()
	pollCtx, stopPoll := context.WithCancel(context.Background())
	var noneReady atomic.Int64
	var polls atomic.Int64
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		// Like the chart's readiness probe: 2 s timeout, out of rotation
		// after 2 failures in a row, back after one success.
		hc := &http.Client{Timeout: 2 * time.Second}
		fails := make([]int, len(reps))
		for pollCtx.Err() == nil {
			ready := 0
			for i, r := range reps {
				if r.ready(hc) {
					fails[i] = 0
				} else {
					fails[i]++
				}
				ok := fails[i] < 2
				lb.setReady(names[i], ok)
				if ok {
					ready++
				} else {
					st.unready(names[i])
				}
			}
			polls.Add(1)
			if ready == 0 {
				noneReady.Add(1)
			}
			select {
			case <-pollCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	// Load: six agents of three users.
	type agentSpec struct{ user, email, agent string }
	var agents []agentSpec
	for _, u := range []string{"amelia.hart", "ben.okafor", "chloe.nguyen"} {
		for _, a := range []string{"ide-agent", "ci-bot"} {
			agents = append(agents, agentSpec{u, u + "@acme-retail.example", a})
		}
	}
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var loadWG sync.WaitGroup
	for _, a := range agents {
		tok := op.agentToken(t, audience, "00u-chaos-"+a.user, a.email, a.agent)
		loadWG.Go(func() { runAgent(loadCtx, lb.url, tok, st) })
	}

	// probe answers whether every replica (directly, not through the
	// balancer) answers a tools/call with data and is ready.
	probeTok := op.agentToken(t, "http://"+lb.addr+"/mcp", "00u-chaos-probe", "diego.ramirez@acme-retail.example", "probe")
	probeAll := func() bool {
		hc := &http.Client{Timeout: 2 * time.Second}
		for _, r := range reps {
			if !r.ready(hc) {
				return false
			}
			a, err := send(context.Background(), "http://"+r.addr, probeTok, "", initMsg, "")
			if err != nil || a.code != 200 || a.sid == "" {
				return false
			}
			c, err := send(context.Background(), "http://"+r.addr, probeTok, a.sid, callMsg, "")
			if err != nil || callOutcome(c.answer) != "ok" {
				return false
			}
		}
		return true
	}
	waitRecovered := func(name string, restored time.Time) time.Duration {
		t.Helper()
		for !probeAll() {
			if time.Since(restored) > 60*time.Second {
				t.Fatalf("%s: the fleet did not recover within 60s", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(restored)
	}

	// redisNow returns the Redis server the sentinels name primary, and
	// the other one.
	redisNow := func() (primary, replica *redistest.Server) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, r, err := ss.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p, r
	}
	// sentinelsReady waits until a failover can promote the replica (its
	// link up as the sentinels see it), before a failover phase begins.
	sentinelsReady := func() {
		t.Helper()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		if err := ss.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("sentinels ready for a failover after %s", time.Since(start).Round(10*time.Millisecond))
	}
	// watchPromotion times, from now, how long the sentinels take to name
	// another primary than old (0: not within 30 s).
	var promotion chan time.Duration
	watchPromotion := func(old string) {
		from := time.Now()
		promotion = make(chan time.Duration, 1)
		go func(done chan<- time.Duration) {
			for time.Since(from) < 30*time.Second {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				a, err := ss.MasterAddr(ctx)
				cancel()
				if err == nil && a != old {
					done <- time.Since(from)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			done <- 0
		}(promotion)
	}
	var killed *redistest.Server

	type phase struct {
		name string
		// prepare runs before the phase begins (not timed).
		prepare func()
		inject  func()
		hold    time.Duration
		heal    func()
		// failover: Sentinel ends the fault by itself. Recovery is timed
		// from inject until the sentinels name a new primary and every
		// replica answers; heal runs after that.
		failover bool
		// shared: a dependency every replica shares failed; no replica
		// may leave rotation for it (that would empty the balancer).
		shared bool
		// during checks the fleet while the fault holds.
		during func()
		// allowed are the refusals callers may see (prefixes); none
		// other is expected.
		allowed []string
	}
	redisRefusals := []string{"http 503", "initialize: http 503", "tool error: the rate limiter is unavailable", "http 404"}
	var stopped [2]*redistest.Server
	phases := []phase{
		{name: "Redis primary killed, Sentinel fails over", prepare: sentinelsReady, failover: true, shared: true,
			inject: func() {
				killed, _ = redisNow()
				watchPromotion(killed.Addr())
				killed.Stop()
			},
			heal: func() {
				// The old primary comes back as a replica of the new one
				// (as a pod that asks Sentinel before it starts).
				p, _ := redisNow()
				killed.SetReplicaOf(p)
				killed.Restart()
			},
			allowed: redisRefusals},
		{name: "Redis switchover (SENTINEL FAILOVER)", prepare: sentinelsReady, failover: true, shared: true,
			inject: func() {
				p, _ := redisNow()
				watchPromotion(p.Addr())
				if r, err := ss.Sentinels[0].Do("SENTINEL", "FAILOVER", ss.MasterName); err != nil || r != "+OK" {
					t.Fatalf("SENTINEL FAILOVER: %q %v", r, err)
				}
			},
			heal: func() {}, allowed: redisRefusals},
		{name: "Redis stopped, restarted empty", shared: true, inject: func() {
			// Primary and replica: with the replica up, Sentinel would
			// promote it (the fault above).
			p, r := redisNow()
			stopped = [2]*redistest.Server{p, r}
			p.Stop()
			r.Stop()
		}, hold: 4 * time.Second, heal: func() {
			p, r := stopped[0], stopped[1]
			p.SetReplicaOf(nil)
			p.Restart()
			r.SetReplicaOf(p)
			r.Restart()
		}, allowed: redisRefusals},
		{name: "Redis wiped (FLUSHALL)", shared: true, inject: func() {
			p, _ := redisNow()
			if _, err := p.Do("FLUSHALL"); err != nil {
				t.Fatal(err)
			}
		}, hold: 2 * time.Second, heal: func() {}, allowed: []string{"http 404"}},
		{name: "replica-b killed (SIGKILL), restarted", inject: func() { reps[1].kill() }, hold: 3 * time.Second,
			heal: func() { reps[1].restart(t) }, allowed: []string{"http 502", "initialize: http 502", "connection error"}},
		{name: "Backstage slowed by 3s", shared: true, inject: func() { slow.delay.Store(int64(3 * time.Second)) }, hold: 6 * time.Second,
			heal:   func() { slow.delay.Store(0) },
			during: func() { expectReady(t, reps, "Backstage slowed by 3s", names...) }},
		{name: "identity provider down", shared: true, inject: func() { op.down.Store(true) }, hold: 4 * time.Second,
			heal:   func() { op.down.Store(false) },
			during: func() { expectReady(t, reps, "identity provider down", names...) }},
	}
	if diskOK {
		var filler string
		phases = append(phases, phase{name: "replica-c audit disk full, freed",
			inject: func() { filler = fillDisk(t, diskDir) }, hold: 5 * time.Second,
			during: func() {
				// Only replica-c is out of rotation; the others stay.
				expectReady(t, reps, "audit disk full", "replica-a", "replica-b")
				if reps[2].ready(&http.Client{Timeout: 2 * time.Second}) {
					t.Errorf("replica-c ready with its audit disk full")
				}
			},
			heal: func() {
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
			},
			allowed: []string{"tool error: the audit trail is unavailable", "initialize: http 500", "initialize: http 503"}})
	}

	time.Sleep(3 * time.Second) // baseline
	if !probeAll() {
		t.Fatalf("the fleet is not serving before any fault; logs in %s", dir)
	}
	type result struct {
		name     string
		recovery time.Duration
		promoted time.Duration
		counts   map[string][2]int
		unready  map[string]int
	}
	var results []result
	for _, p := range phases {
		if p.prepare != nil {
			p.prepare()
		}
		st.phase(p.name)
		var rec, promoted time.Duration
		if p.failover {
			injected := time.Now()
			p.inject()
			if promoted = <-promotion; promoted == 0 {
				t.Fatalf("%s: the sentinels named no new primary within 30s", p.name)
			}
			rec = waitRecovered(p.name, injected)
			p.heal()
		} else {
			p.inject()
			time.Sleep(p.hold / 2)
			if p.during != nil {
				p.during()
			}
			time.Sleep(p.hold - p.hold/2)
			healed := time.Now()
			p.heal()
			rec = waitRecovered(p.name, healed)
		}
		if strings.Contains(p.name, "disk") && rec > 5*time.Second {
			t.Errorf("%s: ready again %s after the disk was freed, want within 5s (the prober re-tests every second)", p.name, rec)
		}
		time.Sleep(time.Second) // calls after recovery count to the phase
		results = append(results, result{p.name, rec, promoted, st.snapshot(p.name), st.unreadyIn(p.name)})
		if u := st.unreadyIn(p.name); p.shared && len(u) > 0 {
			t.Errorf("%s: a shared dependency failed, yet replicas left rotation (failed polls per replica: %v)", p.name, u)
		}
		for kind, n := range st.refusals(p.name) {
			ok := false
			for _, a := range p.allowed {
				ok = ok || strings.HasPrefix(kind, a)
			}
			if !ok {
				t.Errorf("%s: %d calls refused with %q, which the failure-mode table does not list", p.name, n, kind)
			}
		}
	}
	st.phase("after")
	time.Sleep(2 * time.Second)
	stopLoad()
	loadWG.Wait()
	stopPoll()
	<-pollDone
	for _, r := range reps {
		r.stop()
	}

	for _, r := range results {
		var parts []string
		for _, n := range append(names, "balancer") {
			c := r.counts[n]
			if c[0]+c[1] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d/%d", n, c[0], c[1]))
			}
			if u := r.unready[n]; u > 0 {
				parts = append(parts, fmt.Sprintf("(%s unready in %d polls)", n, u))
			}
		}
		promo := ""
		if r.promoted > 0 {
			promo = fmt.Sprintf(" (new primary named after %s)", r.promoted.Round(10*time.Millisecond))
		}
		t.Logf("%-42s recovered in %6s%s; calls with data/refused: %s", r.name, r.recovery.Round(10*time.Millisecond), promo, strings.Join(parts, ", "))
		if k := st.refusals(r.name); len(k) > 0 {
			t.Logf("%-42s refusals: %v", "", k)
		}
	}
	if !diskOK {
		t.Logf("audit disk fault not run: mounting a tmpfs needs root (CI runs as root and requires it)")
	}
	tot := st.totals()
	st.mu.Lock()
	wipeCursors := st.cursorsIn["Redis wiped (FLUSHALL)"]
	st.mu.Unlock()
	t.Logf("in all: %d calls answered (%d with data), %d refused, %d cursor follow-ups (%d on another replica than their first page, %d during the Redis wipe phase, %d refused as foreign), %d readiness polls, %d with no replica ready",
		tot.answered, tot.data, tot.refused, tot.cursors, tot.crossCursors, wipeCursors, tot.badCursors, polls.Load(), noneReady.Load())
	if tot.crossCursors == 0 || wipeCursors == 0 {
		t.Errorf("cursors were not followed across replicas (%d) or after the wipe (%d)", tot.crossCursors, wipeCursors)
	}

	if n := noneReady.Load(); n > 0 {
		t.Errorf("%d of %d polls found no replica ready", n, polls.Load())
	}
	if tot.badCursors > 0 {
		t.Errorf("%d cursor follow-ups refused as not this caller's: cursors must work across replicas and after a Redis wipe", tot.badCursors)
	}
	if tot.cursors == 0 || tot.data == 0 {
		t.Errorf("load did not exercise cursors (%d) or get data (%d)", tot.cursors, tot.data)
	}

	// Every answered call has exactly one record, across all replicas.
	var files []string
	for _, r := range reps {
		files = append(files, r.auditFiles(t)...)
	}
	seen := traceparentCounts(t, files)
	missing, dup := 0, 0
	for tp := range st.answeredTraces() {
		switch seen[tp] {
		case 1:
		case 0:
			missing++
		default:
			dup++
		}
	}
	t.Logf("audit: %d files, %d answered calls checked: %d without a record, %d with more than one", len(files), len(st.answeredTraces()), missing, dup)
	if missing > 0 || dup > 0 {
		t.Errorf("answered calls without exactly one audit record: %d missing, %d duplicated", missing, dup)
	}
	refusedRecs := refusalRecords(t, files)
	t.Logf("audit records of refusals (type/decision/reason: requests counted): %v", refusedRecs)
	// A tools/call refused with 503 (the session store unavailable) has
	// one call record too, with the caller's traceparent.
	st.mu.Lock()
	refused := st.refused503
	st.mu.Unlock()
	missing, dup = 0, 0
	for tp := range refused {
		switch seen[tp] {
		case 1:
		case 0:
			missing++
		default:
			dup++
		}
	}
	t.Logf("audit: %d tools/calls refused with 503 checked: %d without a record, %d with more than one", len(refused), missing, dup)
	if missing > 0 || dup > 0 {
		t.Errorf("tools/calls refused with 503 without exactly one audit record: %d missing, %d duplicated", missing, dup)
	}
	if len(refused) > 0 && refusedRecs["call/refused/session store unavailable"] < len(refused) {
		t.Errorf("%d tools/calls got 503 with Redis down, and %d records say so", len(refused), refusedRecs["call/refused/session store unavailable"])
	}
	args := append([]string{"audit", "verify"}, files...)
	if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Errorf("audit verify over the replicas: %v\n%s", err, out)
	}
}

// expectReady fails the test unless every named replica is ready.
func expectReady(t *testing.T, reps []*chaosReplica, during string, names ...string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, r := range reps {
		for _, n := range names {
			if r.name == n && !r.ready(hc) {
				t.Errorf("%s: %s not ready", during, n)
			}
		}
	}
}

// agentToken is an access token of the user with email, issued to agent.
func (p *idp) agentToken(t *testing.T, audience, sub, email, agent string) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": p.srv.URL, "sub": sub, "aud": []string{audience}, "exp": now.Add(time.Hour).Unix(),
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "azp": agent,
		"scope": scope, "email": email, "jti": randHex(8),
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// delayProxy is a reverse proxy in front of Backstage that holds each
// request for delay first.
type delayProxy struct {
	srv   *httptest.Server
	delay atomic.Int64 // nanoseconds
}

func newDelayProxy(t *testing.T, target string) *delayProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(p.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// readyBalancer sends each request to the next ready replica in turn
// (all of them when none is ready) and names the replica that answered
// in X-Chaos-Replica.
type readyBalancer struct {
	addr, url string
	ln        net.Listener
	srv       *http.Server
	mu        sync.Mutex
	names     []string
	targets   map[string]*url.URL
	ready     map[string]bool
	n         atomic.Uint64
}

func newReadyBalancer(t *testing.T) *readyBalancer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &readyBalancer{ln: ln, addr: ln.Addr().String(), url: "http://" + ln.Addr().String(),
		targets: map[string]*url.URL{}, ready: map[string]bool{}}
	t.Cleanup(func() {
		if b.srv != nil {
			_ = b.srv.Close()
		}
		_ = ln.Close()
	})
	return b
}

func (b *readyBalancer) add(name, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.names = append(b.names, name)
	b.targets[name], _ = url.Parse("http://" + addr)
	b.ready[name] = true
}

func (b *readyBalancer) setReady(name string, ok bool) {
	b.mu.Lock()
	b.ready[name] = ok
	b.mu.Unlock()
}

func (b *readyBalancer) pick() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var cands []string
	for _, n := range b.names {
		if b.ready[n] {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		cands = b.names
	}
	return cands[b.n.Add(1)%uint64(len(cands))]
}

type replicaKey struct{}

func (b *readyBalancer) start() {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			name, _ := pr.In.Context().Value(replicaKey{}).(string)
			b.mu.Lock()
			target := b.targets[name]
			b.mu.Unlock()
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			name, _ := resp.Request.Context().Value(replicaKey{}).(string)
			resp.Header.Set("X-Chaos-Replica", name)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, _ error) {
			name, _ := r.Context().Value(replicaKey{}).(string)
			w.Header().Set("X-Chaos-Replica", name)
			w.WriteHeader(http.StatusBadGateway)
		},
		FlushInterval: -1,
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), replicaKey{}, b.pick())))
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(b.ln) }()
}

// chaosReplica is one backstage-mcp process that can be killed and
// started again on the same address, config and audit file.
type chaosReplica struct {
	name, addr, admin, auditPath, cfg, logPath string
	mu                                         sync.Mutex
	cmd                                        *exec.Cmd
	logf                                       *os.File
}

func startChaosReplica(t *testing.T, dir, name, publicURL, issuer, redisYAML, extra string) *chaosReplica {
	r := &chaosReplica{name: name, addr: freeAddr(t), admin: freeAddr(t),
		auditPath: filepath.Join(dir, name, "audit.log"), cfg: filepath.Join(dir, name+".yaml"), logPath: filepath.Join(dir, name+".log")}
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  publicURL: %s\n  trustedProxies: [127.0.0.1]\n  sessions: {maxPerUser: 20000, max: 20000}\n  cursorKey: e2e-chaos-cursor-key-0123456789abcdef0123\n"+
		"  ingressRate: {requests: 1000000, per: 1s, burst: 1000000}\n  ingressKiBRate: {requests: 1000000, per: 1s, burst: 1000000}\n", publicURL)
	fmt.Fprintf(&b, "auth:\n  issuers:\n    - url: %s\n", issuer)
	fmt.Fprintf(&b, "policy:\n  file: %s\n", policyPath)
	fmt.Fprintf(&b, "audit:\n  path: %s\n  replica: %s\n", r.auditPath, name)
	b.WriteString("state: redis\n" + redisYAML)
	b.WriteString(extra)
	if err := os.WriteFile(r.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	r.logf = f
	t.Cleanup(func() { r.stop(); _ = f.Close() })
	r.launch(t)
	return r
}

// launch starts the process and waits for its listener.
func (r *chaosReplica) launch(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--config", r.cfg, "--http", r.addr, "--admin-http", r.admin)
	cmd.Stdout, cmd.Stderr = r.logf, r.logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(r.logPath)
			t.Fatalf("replica %s did not start:\n%s", r.name, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL: no drain, no server_stop record.
func (r *chaosReplica) kill() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

func (r *chaosReplica) restart(t *testing.T) {
	r.kill()
	r.launch(t)
}

// stop ends the process gracefully (SIGTERM).
func (r *chaosReplica) stop() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// ready reports whether the agents' /readyz answers 200.
func (r *chaosReplica) ready(hc *http.Client) bool {
	resp, err := hc.Get("http://" + r.addr + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// auditFiles are the replica's audit files (rotated ones included).
func (r *chaosReplica) auditFiles(t *testing.T) []string {
	m, err := audit.Files(r.auditPath)
	if err != nil || len(m) == 0 {
		t.Fatalf("audit files of %s: %v %v", r.name, m, err)
	}
	return m
}

// mountTmpfs mounts a tmpfs of size at dir (root only). Without the
// privilege it reports false, or fails when the test tools are required
// (CI runs as root).
func mountTmpfs(t *testing.T, dir, size string) bool {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		if testtools.Required() {
			t.Fatalf("mount a tmpfs for the audit disk fault (the e2e suite runs as root in CI): %v %s", err, out)
		}
		t.Logf("no tmpfs for the audit disk fault (%v %s); that fault is skipped", err, bytes.TrimSpace(out))
		return false
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return true
}

// fillDisk writes a file in dir until the file system is full.
func fillDisk(t *testing.T, dir string) string {
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for _, n := range []int{64 << 10, 4 << 10, 256, 1} { // the last bytes too
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	return name
}

// send posts one JSON-RPC message to base/mcp with a traceparent (when
// set) and returns the answer and the replica that gave it.
func send(ctx context.Context, base, token, sid, body, traceparent string) (chaosAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/mcp", strings.NewReader(body))
	if err != nil {
		return chaosAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := chaosClient.Do(req)
	if err != nil {
		return chaosAnswer{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return chaosAnswer{answer: answer{code: resp.StatusCode, sid: resp.Header.Get("Mcp-Session-Id"), body: string(b)},
		replica: resp.Header.Get("X-Chaos-Replica")}, nil
}

var chaosClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

type chaosAnswer struct {
	answer
	replica string
}

// rpcResult is the JSON-RPC result of a tools/call answer (plain JSON or
// one SSE event).
type rpcResult struct {
	Result *struct {
		IsError           bool `json:"isError"`
		StructuredContent struct {
			NextCursor string `json:"nextCursor"`
		} `json:"structuredContent"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"result"`
}

func parseResult(body string) (rpcResult, bool) {
	data := body
	if !strings.HasPrefix(strings.TrimSpace(body), "{") {
		data = ""
		sc := bufio.NewScanner(strings.NewReader(body))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data = d
				break
			}
		}
	}
	var r rpcResult
	if err := json.Unmarshal([]byte(data), &r); err != nil || r.Result == nil {
		return r, false
	}
	return r, true
}

// chaosStats counts outcomes per phase and replica, and keeps the
// traceparents of answered calls.
type chaosStats struct {
	mu         sync.Mutex
	cur        string
	counts     map[string]map[string][2]int // phase → replica → answered (with data), refused
	answered   map[string]bool              // traceparents of answered calls
	refused503 map[string]bool              // traceparents of tools/calls in a session answered 503
	notReady   map[string]map[string]int    // phase → replica → polls not ready
	kinds      map[string]map[string]int    // phase → what refused calls saw → count
	tot        struct{ answered, data, refused, cursors, badCursors, crossCursors int }
	cursorsIn  map[string]int // phase → cursor follow-ups answered
}

func newChaosStats() *chaosStats {
	return &chaosStats{cur: "baseline", counts: map[string]map[string][2]int{}, answered: map[string]bool{}, refused503: map[string]bool{},
		notReady: map[string]map[string]int{}, kinds: map[string]map[string]int{}, cursorsIn: map[string]int{}}
}

func (s *chaosStats) refusals(phase string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.kinds[phase] {
		out[k] = v
	}
	return out
}

func (s *chaosStats) unready(replica string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notReady[s.cur] == nil {
		s.notReady[s.cur] = map[string]int{}
	}
	s.notReady[s.cur][replica]++
}

func (s *chaosStats) unreadyIn(phase string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.notReady[phase] {
		out[k] = v
	}
	return out
}

func (s *chaosStats) phase(name string) {
	s.mu.Lock()
	s.cur = name
	s.mu.Unlock()
}

func (s *chaosStats) note(replica string, data bool, refusal string) {
	if replica == "" {
		replica = "balancer"
	}
	refused := refusal != ""
	s.mu.Lock()
	defer s.mu.Unlock()
	if refused {
		if s.kinds[s.cur] == nil {
			s.kinds[s.cur] = map[string]int{}
		}
		s.kinds[s.cur][refusal]++
	}
	m := s.counts[s.cur]
	if m == nil {
		m = map[string][2]int{}
		s.counts[s.cur] = m
	}
	c := m[replica]
	if data {
		c[0]++
	}
	if refused {
		c[1]++
		s.tot.refused++
	}
	m[replica] = c
}

func (s *chaosStats) snapshot(phase string) map[string][2]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][2]int{}
	for k, v := range s.counts[phase] {
		out[k] = v
	}
	return out
}

func (s *chaosStats) answeredTraces() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answered
}

func (s *chaosStats) totals() struct{ answered, data, refused, cursors, badCursors, crossCursors int } {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tot
}

// runAgent drives one agent until ctx ends: a session (initialized again
// when it is gone), then a search, its next page by cursor and an entity
// read, in turn, each with its own traceparent.
func runAgent(ctx context.Context, base, token string, st *chaosStats) {
	const search = `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"catalog_search_entities","arguments":{"kind":"component","limit":2}}}`
	sid, cursor, cursorFrom := "", "", ""
	for step := 0; ctx.Err() == nil; step++ {
		time.Sleep(60 * time.Millisecond)
		if sid == "" {
			a, err := send(ctx, base, token, "", initMsg, "")
			switch {
			case err != nil:
				if ctx.Err() == nil {
					st.note("", false, "connection error")
				}
			case a.code == 200 && a.sid != "":
				sid = a.sid
			default:
				st.note(a.replica, false, fmt.Sprintf("initialize: http %d", a.code))
			}
			continue
		}
		msg, isCursor := callMsg, false
		switch {
		case cursor != "":
			args, _ := json.Marshal(map[string]any{"cursor": cursor})
			msg = `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"catalog_search_entities","arguments":` + string(args) + `}}`
			isCursor, cursor = true, ""
		case step%3 == 0:
			msg = search
		}
		tp := "00-" + randHex(16) + "-" + randHex(8) + "-01"
		a, err := send(ctx, base, token, sid, msg, tp)
		if err != nil {
			if ctx.Err() == nil {
				st.note("", false, "connection error")
			}
			continue
		}
		if a.code == http.StatusNotFound {
			sid = "" // the session is gone (Redis wiped): initialize again
			st.note(a.replica, false, "http 404")
			continue
		}
		r, ok := parseResult(a.body)
		if a.code != 200 || !ok {
			if a.code == http.StatusServiceUnavailable {
				st.mu.Lock()
				st.refused503[tp] = true
				st.mu.Unlock()
			}
			st.note(a.replica, false, fmt.Sprintf("http %d", a.code))
			continue
		}
		text := ""
		for _, c := range r.Result.Content {
			text += c.Text
		}
		withheld := r.Result.IsError && strings.Contains(text, "audit trail is unavailable")
		st.mu.Lock()
		if !withheld {
			// Answered: the record was written before the answer.
			st.answered[tp] = true
			st.tot.answered++
		}
		if isCursor {
			st.tot.cursors++
			st.cursorsIn[st.cur]++
			if a.replica != cursorFrom {
				st.tot.crossCursors++
			}
			if strings.Contains(text, "not a cursor returned by") {
				st.tot.badCursors++
			}
		}
		if !r.Result.IsError {
			st.tot.data++
		}
		st.mu.Unlock()
		refusal := ""
		if r.Result.IsError {
			refusal = "tool error: " + text
			if len(refusal) > 80 {
				refusal = refusal[:80]
			}
		}
		st.note(a.replica, !r.Result.IsError, refusal)
		if !r.Result.IsError && msg == search {
			cursor, cursorFrom = r.Result.StructuredContent.NextCursor, a.replica
		}
	}
}

// traceparentCounts counts the call records per caller traceparent in
// files.
func traceparentCounts(t *testing.T, files []string) map[string]int {
	out := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r struct {
				Type string `json:"type"`
				TP   string `json:"callerTraceparent"`
			}
			if json.Unmarshal(sc.Bytes(), &r) != nil { // a torn line after a kill
				continue
			}
			if r.Type == "call" && r.TP != "" {
				out[r.TP]++
			}
		}
	}
	return out
}

// refusalRecords counts the requests that records other than allowed
// calls stand for, by type, decision and reason.
func refusalRecords(t *testing.T, files []string) map[string]int {
	out := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r struct {
				Type, Decision, Reason string
				Count                  int
			}
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.Decision == "" || r.Decision == "allow" {
				continue
			}
			out[r.Type+"/"+r.Decision+"/"+r.Reason] += max(r.Count, 1)
		}
	}
	return out
}
