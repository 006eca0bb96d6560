//go:build e2e

package replicas

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
)

var binary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "backstage-mcp-replicas-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binary = filepath.Join(tmp, "backstage-mcp")
	build := exec.Command("go", "build", "-o", binary, "github.com/backstage-mcp/backstage-mcp/cmd/backstage-mcp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build backstage-mcp:", err)
		return 1
	}
	return m.Run()
}

const (
	scope  = "backstage-mcp:catalog"
	policy = `version: 1
scopes:
  "backstage-mcp:catalog": ["catalog:read"]
roles:
  - name: everyone
    bind: { authenticated: true }
    tools: ["catalog:read"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default, platform] }
`
	userEmail = "amelia.hart@acme-retail.example"
)

// idp is an OpenID provider on loopback: discovery and JWKS, and tokens
// minted by the test with its key.
type idp struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	// down makes discovery and JWKS answer 503 (an outage).
	down atomic.Bool
}

func newIdP(t *testing.T) *idp {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.srv.URL, "authorization_endpoint": p.srv.URL + "/authorize", "token_endpoint": p.srv.URL + "/token",
			"jwks_uri": p.srv.URL + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: string(jose.RS256), Use: "sig"}}})
	})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// token is an access token of the demo user amelia.hart under subject sub.
func (p *idp) token(t *testing.T, audience, sub string) string {
	return p.tokenFor(t, audience, sub, userEmail)
}

// tokenFor is an access token of the demo user with email under subject sub.
func (p *idp) tokenFor(t *testing.T, audience, sub, email string) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	jti := make([]byte, 8)
	_, _ = rand.Read(jti)
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": p.srv.URL, "sub": sub, "aud": []string{audience}, "exp": now.Add(time.Hour).Unix(),
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "azp": "ide-agent",
		"scope": scope, "email": email, "jti": hex.EncodeToString(jti),
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

// replica is one backstage-mcp process.
type replica struct {
	// addr is the agents' listener, admin the operators' (readiness
	// details, metrics).
	name, addr, admin, audit string
	cmd                      *exec.Cmd
	log                      string
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startReplica runs the binary with state: redis (or memory when
// redisURL is empty) behind publicURL.
func startReplica(t *testing.T, dir, name, publicURL, issuer, redisURL, extra string) *replica {
	return startReplicaOn(t, dir, name, freeAddr(t), publicURL, issuer, redisURL, extra)
}

// startReplicaAt is startReplica serving its own public URL at addr.
func startReplicaAt(t *testing.T, dir, name, addr, issuer, redisURL, extra string) *replica {
	return startReplicaOn(t, dir, name, addr, "http://"+addr, issuer, redisURL, extra)
}

func startReplicaOn(t *testing.T, dir, name, addr, publicURL, issuer, redisURL, extra string) *replica {
	r := &replica{name: name, addr: addr, audit: filepath.Join(dir, name, "audit.log"), log: filepath.Join(dir, name+".log")}
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	// The cursor key is required with state: redis and the same on
	// every replica.
	fmt.Fprintf(&b, "server:\n  publicURL: %s\n  trustedProxies: [127.0.0.1]\n  sessions: {maxPerUser: 20000, max: 20000}\n  cursorKey: e2e-replicas-cursor-key-0123456789abcdef\n"+
		"  ingressRate: {requests: 1000000, per: 1s, burst: 1000000}\n  ingressKiBRate: {requests: 1000000, per: 1s, burst: 1000000}\n", publicURL)
	fmt.Fprintf(&b, "auth:\n  issuers:\n    - url: %s\n", issuer)
	fmt.Fprintf(&b, "policy:\n  file: %s\n", policyPath)
	fmt.Fprintf(&b, "audit:\n  path: %s\n  replica: %s\n", r.audit, name)
	if redisURL != "" {
		fmt.Fprintf(&b, "state: redis\nredis:\n  url: %s\n", redisURL)
	}
	b.WriteString(extra)
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	r.admin = freeAddr(t)
	r.cmd = exec.Command(binary, "serve", "--demo", "--config", cfg, "--http", r.addr, "--admin-http", r.admin)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop(); logf.Close() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return r
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(r.log)
			t.Fatalf("replica %s did not start:\n%s", name, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process gracefully (SIGTERM: pending audit records are
// flushed and server_stop is written).
func (r *replica) stop() {
	if r.cmd == nil || r.cmd.Process == nil || r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
}

// rss is the resident set of the process in KiB.
func (r *replica) rss(t *testing.T) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// roundRobin is a reverse proxy that sends each request to the next
// replica in turn.
func roundRobin(t *testing.T, backends []string) *httptest.Server {
	var n atomic.Uint64
	targets := make([]*url.URL, len(backends))
	for i, b := range backends {
		targets[i], _ = url.Parse("http://" + b)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(targets[n.Add(1)%uint64(len(targets))])
			pr.SetXForwarded()
		},
		FlushInterval: -1,
	}
	srv := httptest.NewUnstartedServer(rp)
	return srv
}

type answer struct {
	code int
	sid  string
	body string
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// post sends one JSON-RPC message to base/mcp.
func post(t *testing.T, base, token, sid, body string) answer {
	return do(t, http.MethodPost, base, token, sid, body)
}

func do(t *testing.T, method, base, token, sid, body string) answer {
	return doFrom(t, "", method, base, token, sid, body)
}

// doFrom is do for a client at address from behind the load balancer
// (the replicas trust X-Forwarded-For from loopback).
func doFrom(t *testing.T, from, method, base, token, sid, body string) answer {
	req, err := http.NewRequest(method, base+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return answer{code: resp.StatusCode, sid: resp.Header.Get("Mcp-Session-Id"), body: string(b)}
}

const (
	initMsg = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`
	callMsg = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":"component:default/checkout-service"}}}`
	listMsg = `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}`
)

// callOutcome classifies a tools/call answer.
func callOutcome(a answer) string {
	switch {
	case a.code != 200:
		return fmt.Sprintf("http %d", a.code)
	case strings.Contains(a.body, `"isError":true`) && strings.Contains(a.body, "rate limited"):
		return "limited"
	case strings.Contains(a.body, `"isError":true`) && strings.Contains(a.body, "rate limiter is unavailable"):
		return "limiter down"
	case strings.Contains(a.body, `"isError":true`):
		return "error: " + a.body
	case strings.Contains(a.body, "checkout-service"):
		return "ok"
	}
	return "unexpected: " + a.body
}

func openSession(t *testing.T, base, token string) string {
	t.Helper()
	a := post(t, base, token, "", initMsg)
	if a.code != 200 || a.sid == "" {
		t.Fatalf("initialize at %s = %d: %s", base, a.code, a.body)
	}
	return a.sid
}

// TestTwoReplicasOneRedis is issue 13's proof with real parts.
func TestTwoReplicasOneRedis(t *testing.T) {
	dir := t.TempDir()
	rs := redistest.Start(t)
	op := newIdP(t)
	proxy := roundRobin(t, nil)
	publicURL := "http://" + proxy.Listener.Addr().String()
	const burst = 40
	limits := fmt.Sprintf("rateLimits:\n  classes:\n    default: {requests: 1, per: 1h, burst: %d}\n", burst)
	a := startReplica(t, dir, "replica-a", publicURL, op.srv.URL, rs.URL(), limits)
	b := startReplica(t, dir, "replica-b", publicURL, op.srv.URL, rs.URL(), limits)
	rp := roundRobin(t, []string{a.addr, b.addr})
	rp.Listener.Close()
	rp.Listener = proxy.Listener
	rp.Start()
	t.Cleanup(rp.Close)
	base := rp.URL
	aURL, bURL := "http://"+a.addr, "http://"+b.addr
	adminURL := map[string]string{aURL: "http://" + a.admin, bURL: "http://" + b.admin}
	audience := publicURL + "/mcp"

	t.Run("budget holds across replicas", func(t *testing.T) {
		// ben.okafor: a person of his own, so the later steps keep amelia's budget.
		tok := op.tokenFor(t, audience, "00u-budget", "ben.okafor@acme-retail.example")
		sid := openSession(t, base, tok) // one token of the budget
		counts := map[string]int{}
		for range 3 * burst {
			counts[callOutcome(post(t, base, tok, sid, callMsg))]++
		}
		want := burst - 1
		if counts["ok"]+counts["limited"] != 3*burst || abs(counts["ok"]-want)*10 > want {
			t.Fatalf("outcomes %v over two replicas: want about %d allowed (one replica's budget, within 10%%)", counts, want)
		}
		t.Logf("%d calls through the round-robin proxy: %v (budget %d, one spent on initialize)", 3*burst, counts, burst)
	})

	t.Run("resolved users are shared through Redis", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
		defer rdb.Close()
		ctx := context.Background()
		keys := func() []string {
			t.Helper()
			k, err := rdb.Keys(ctx, "backstage-mcp:resolver:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		before := len(keys())
		tok := op.token(t, audience, "00u-resolver")
		sid := openSession(t, aURL, tok)
		if got := callOutcome(post(t, bURL, tok, sid, callMsg)); got != "ok" {
			t.Fatalf("replica b: %s", got)
		}
		after := keys()
		if len(after) != before+1 {
			t.Fatalf("resolver keys %d -> %d after one new subject on two replicas, want one more", before, len(after))
		}
		for _, k := range after {
			// auth.cacheTTL defaults to 5m.
			if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 4*time.Minute || ttl > 5*time.Minute {
				t.Fatalf("PTTL(%s) = %s, %v; want at most auth.cacheTTL (5m)", k, ttl, err)
			}
		}
	})

	t.Run("session hops replicas and DELETE ends it everywhere", func(t *testing.T) {
		tok := op.token(t, audience, "00u-sessions")
		sid := openSession(t, aURL, tok)
		if got := callOutcome(post(t, bURL, tok, sid, callMsg)); got != "ok" {
			t.Fatalf("replica b in a session opened on a: %s", got)
		}
		if got := post(t, aURL, tok, sid, listMsg); got.code != 200 {
			t.Fatalf("back on a: %d %s", got.code, got.body)
		}
		if got := do(t, http.MethodDelete, aURL, tok, sid, ""); got.code != 200 {
			t.Fatalf("DELETE on a: %d %s", got.code, got.body)
		}
		for _, u := range []string{bURL, aURL} {
			if got := post(t, u, tok, sid, listMsg); got.code != 404 {
				t.Fatalf("%s after DELETE on a: %d, want 404", u, got.code)
			}
		}
		// Another person cannot use the session either.
		sid2 := openSession(t, base, tok)
		if got := post(t, bURL, op.token(t, audience, "00u-sessions-2"), sid2, listMsg); got.code != 404 {
			t.Fatalf("another subject in the session: %d, want 404", got.code)
		}
	})

	t.Run("Redis down fails closed, then recovers", func(t *testing.T) {
		tok := op.token(t, audience, "00u-redis")
		sid := openSession(t, base, tok)
		rs.Stop()
		for _, u := range []string{aURL, bURL} {
			got := post(t, u, tok, sid, callMsg)
			if got.code != 503 && callOutcome(got) != "limiter down" {
				t.Fatalf("%s with Redis down: %d %s; want 503 or the limiter's tool error", u, got.code, got.body)
			}
			if got := post(t, u, tok, "", initMsg); got.code != 503 || got.sid != "" {
				t.Fatalf("%s initialize with Redis down: %d sid %q, want 503", u, got.code, got.sid)
			}
			// Redis is shared by every replica: the admin listener reports
			// it, the agents' /readyz stays 200 (a 503 would take the
			// whole fleet out of rotation at once).
			r, err := http.Get(adminURL[u] + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || !strings.Contains(string(body), "Redis unreachable") {
				t.Fatalf("%s admin /readyz with Redis down: %d %s", u, r.StatusCode, body)
			}
			r, err = http.Get(u + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
				t.Fatalf("%s agents' /readyz with Redis down: %d %s, want 200 and the status alone", u, r.StatusCode, body)
			}
		}
		rs.Restart() // empty: sessions are gone, budgets start full
		deadline := time.Now().Add(10 * time.Second)
		for {
			a := post(t, base, tok, "", initMsg)
			if a.code == 200 && a.sid != "" && callOutcome(post(t, base, tok, a.sid, callMsg)) == "ok" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no recovery 10s after Redis restarted: %d %s", a.code, a.body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, u := range []string{aURL, bURL} {
			r, err := http.Get(u + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != 200 {
				t.Fatalf("%s /readyz after recovery: %d", u, r.StatusCode)
			}
		}
	})

	t.Run("flood of token-less requests", func(t *testing.T) {
		const n = 10000
		before := fileSize(a.audit) + fileSize(b.audit)
		tok := op.token(t, audience, "00u-flood")
		// The user sits at another address than the flood (which comes
		// from loopback through the proxy).
		const userAddr = "198.51.100.7"
		init := doFrom(t, userAddr, http.MethodPost, aURL, tok, "", initMsg)
		if init.code != 200 || init.sid == "" {
			t.Fatalf("initialize: %d %s", init.code, init.body)
		}
		sid := init.sid
		var codes sync.Map
		var wg sync.WaitGroup
		work := make(chan struct{})
		var lat []time.Duration
		var latMu sync.Mutex
		stopProbe := make(chan struct{})
		probeDone := make(chan struct{})
		go func() { // a real user keeps being served during the flood
			defer close(probeDone)
			for {
				select {
				case <-stopProbe:
					return
				case <-time.After(50 * time.Millisecond):
				}
				start := time.Now()
				got := doFrom(t, userAddr, http.MethodPost, aURL, tok, sid, listMsg)
				latMu.Lock()
				lat = append(lat, time.Since(start))
				latMu.Unlock()
				if got.code != 200 {
					t.Errorf("user during the flood: %d %s", got.code, got.body)
					return
				}
			}
		}()
		start := time.Now()
		for range 32 {
			wg.Go(func() {
				for range work {
					req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(initMsg))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					resp, err := httpClient.Do(req)
					if err != nil {
						t.Error(err)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					v, _ := codes.LoadOrStore(resp.StatusCode, new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
				}
			})
		}
		for range n {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		elapsed := time.Since(start)
		close(stopProbe)
		<-probeDone
		summary := map[int]int64{}
		codes.Range(func(k, v any) bool { summary[k.(int)] = v.(*atomic.Int64).Load(); return true })
		if summary[401]+summary[429] != n {
			t.Fatalf("answers %v, want %d of 401 or 429", summary, n)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) == 0 || lat[len(lat)-1] > 2*time.Second {
			t.Fatalf("user latency during the flood: %v", lat)
		}
		// Stop both replicas: pending aggregates are written with server_stop.
		a.stop()
		b.stop()
		grown := fileSize(a.audit) + fileSize(b.audit) - before
		recs, counted := authFailures(t, a.audit, b.audit)
		t.Logf("%d token-less requests in %s through the proxy: %v; user tools/list during it p50 %s max %s (%d probes); audit grew %d bytes with %d auth_failure records counting %d failures",
			n, elapsed.Round(time.Millisecond), summary, lat[len(lat)/2], lat[len(lat)-1], len(lat), grown, recs, counted)
		if counted < n || recs > 40 || grown > 64<<10 {
			t.Fatalf("audit: %d records counting %d failures, %d bytes; want every failure counted in a bounded number of records", recs, counted, grown)
		}
		// Both chains verify, one per replica, with a combined summary.
		out, err := exec.Command(binary, "audit", "verify", a.audit, b.audit).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK    2 replicas") {
			t.Fatalf("audit verify over both replicas: %v\n%s", err, out)
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// authFailures counts auth_failure records and the failures they stand for.
func authFailures(t *testing.T, files ...string) (records, failures int) {
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r struct {
				Type  string `json:"type"`
				Count int    `json:"count"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			if r.Type == "auth_failure" {
				records++
				failures += max(r.Count, 1)
			}
		}
	}
	return records, failures
}
