//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
)

// TestAttackSuite is the hostile client's view of the real binary (a real
// Backstage, a real OpenID provider, two signed-in users), one subtest per
// attack of issue "Hostile clients change nothing for others", each
// printing its figure:
//   - metrics: nothing a caller can read on the agents' listener moves
//     with other users' calls or with hidden data;
//   - malformed initialize flood: no session, bounded audit, RSS flat;
//   - ingress flood: a neighbour's get p50 beside six senders of the most
//     expensive messages to redact;
//   - streams: GET streams one session keeps open.
func TestAttackSuite(t *testing.T) {
	addr := freeAddr(t)
	base := "http://" + addr
	noah := oidcop.User{ID: "id-noah", Username: "noah", Password: "noah-password-1",
		FirstName: "Noah", LastName: "Fischer", Email: "noah.fischer@acme-retail.example", EmailVerified: true, Groups: []string{"sre"}}
	op := oidcop.Start(t, oidcop.Options{Audience: base + "/mcp", Users: []oidcop.User{e2eUser, noah}})
	cfg := writeClientConfig(t, clientConfig{Backstage: true, PublicURL: base, Issuer: op.Issuer, Extra: unlimitedRatesYAML})
	// The figures are the production build's: the server under attack is
	// built without the race detector (every other e2e test runs it).
	srv := startServerBinary(t, goBuild(t, "./cmd/backstage-mcp"), addr, []string{"E2E_BACKSTAGE_TOKEN=" + bs.Token}, "--config", cfg)
	attacker := op.UserToken(t, e2eUser.Username, "openid", tokenScope).AccessToken
	neighbour := op.UserToken(t, noah.Username, "openid", tokenScope).AccessToken
	hc := &http.Client{Timeout: 30 * time.Second}
	post := func(tok, sid, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, resp.Header.Get("Mcp-Session-Id")
	}
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"attack","version":"1"}}}`

	t.Run("metrics", func(t *testing.T) {
		for _, p := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap"} {
			resp, err := hc.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("agents' listener %s = %d, want 404", p, resp.StatusCode)
			}
		}
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(b)) != `{"status":"ok"}` {
			t.Errorf("agents' /readyz = %s, want the status alone", b)
		}
		// The only counters a caller could diff are gone from its side:
		// a classifier of hidden against missing entities from the
		// agents' listener has nothing but the tool answers, which are
		// equal (TestMetricsSameForHiddenAndMissing checks the admin
		// side series by series).
		t.Logf("agents' listener: /metrics, pprof 404; /readyz %s; oracle accuracy from metrics: no metrics to read (chance)", strings.TrimSpace(string(b)))
	})

	auditPath := filepath.Join(filepath.Dir(cfg), "audit.log")
	t.Run("malformed initialize flood", func(t *testing.T) {
		before, heapBefore := rssKiB(t, srv.Pid), heapInuse(t, srv.Admin)
		recsBefore := countLines(t, auditPath)
		const n = 20000
		var sessions, refused, limited atomic.Int64
		var wg sync.WaitGroup
		work := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				for range work {
					code, sid := post(attacker, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":"x"}`)
					switch {
					case sid != "":
						sessions.Add(1)
					case code == http.StatusTooManyRequests:
						limited.Add(1)
					case code == http.StatusBadRequest:
						refused.Add(1)
					}
				}
			})
		}
		start := time.Now()
		for range n {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		elapsed := time.Since(start)
		after, heapAfter := rssKiB(t, srv.Pid), heapInuse(t, srv.Admin)
		recs := countLines(t, auditPath) - recsBefore
		t.Logf("%d malformed initializes in %s: %d sessions, %d refused with -32602, %d charged out (429); %d audit records; RSS %d → %d KiB, heap in use %d → %d KiB",
			n, elapsed.Round(time.Millisecond), sessions.Load(), refused.Load(), limited.Load(), recs, before, after, heapBefore>>10, heapAfter>>10)
		// One aggregated record per interval (10 s) for each kind of
		// refusal, plus the first of each at once.
		if maxRecs := 2 * (2 + int(elapsed/(10*time.Second))); recs > maxRecs {
			t.Errorf("%d audit records for the flood, want at most %d (aggregated per interval)", recs, maxRecs)
		}
		if sessions.Load() != 0 {
			t.Errorf("%d sessions from malformed initializes, want 0", sessions.Load())
		}
		if after > before+32<<10 {
			t.Errorf("RSS grew from %d to %d KiB over %d malformed initializes", before, after, n)
		}
	})

	t.Run("ingress flood beside a neighbour", func(t *testing.T) {
		c := servertest.ConnectHTTP(t, base+"/mcp", neighbour)
		get := func() time.Duration {
			start := time.Now()
			res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
			if res.IsError {
				t.Fatalf("neighbour's get: %s", servertest.Text(res))
			}
			return time.Since(start)
		}
		p50 := func(k int) time.Duration {
			var ds []time.Duration
			for range k {
				ds = append(ds, get())
				time.Sleep(20 * time.Millisecond)
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			return ds[len(ds)/2]
		}
		quiet := p50(40)
		_, sid := post(attacker, "", initBody)
		// The attacker is its own process, on a CPU of its own where the
		// machine has two or more. Its CPU is taken from the machine
		// whether it floods or not, so the figure that is the server's
		// cost of the flood compares the neighbour beside the flood with
		// the neighbour beside the same process only spinning on that CPU
		// (-spin); the raw ratio against the idle machine is printed too.
		floodBin := goBuild(t, "./server/e2e/flood")
		pinned := "unpinned"
		var prefix []string
		if tp, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
			cpu := strconv.Itoa(runtime.NumCPU() - 1)
			prefix, pinned = []string{tp, "-c", cpu}, "pinned to CPU "+cpu
		}
		attack := func(extra ...string) (time.Duration, string) {
			args := append(append(slices.Clone(prefix), floodBin, "-url", base+"/mcp", "-session", sid, "-senders", "6", "-for", "4s"), extra...)
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), "FLOOD_TOKEN="+attacker)
			var out, errOut strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			d := p50(40)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("flood %v: %v\n%s", extra, err, errOut.String())
			}
			return d, out.String()
		}
		spinning, _ := attack("-spin")
		loud, out := attack()
		var counts map[string]int
		if err := json.Unmarshal([]byte(out), &counts); err != nil {
			t.Fatalf("flood output %q: %v", out, err)
		}
		codes := map[int]int{}
		for k, v := range counts {
			n, _ := strconv.Atoi(k)
			codes[n] = v
		}
		t.Logf("neighbour's get p50: %s idle, %s beside the attacker's process spinning, %s beside its 6 senders of ~900 KB adversarial pings; attacker %s (%v)", quiet, spinning, loud, pinned, codes)
		// The ratio is a figure, not an assertion (a timed test flakes on
		// a shared machine). What is asserted is what keeps it small: the
		// flood is refused before it is read or redacted.
		t.Logf("neighbour's p50 ratio under the flood: %.2f× against the same CPU taken by a spinning process (the server's cost), %.2f× against the idle machine", float64(loud)/float64(spinning), float64(loud)/float64(quiet))
		if codes[http.StatusTooManyRequests] < 10*codes[http.StatusOK] {
			t.Errorf("flood answers %v: want almost all refused (429) before redaction", codes)
		}
	})

	t.Run("streams per session", func(t *testing.T) {
		// The neighbour's token: the flood before this subtest has spent
		// the attacker's message budget, and its initialize would be
		// refused (429) for a few seconds.
		code, sid := post(neighbour, "", initBody)
		if code != http.StatusOK || sid == "" {
			t.Fatalf("initialize = %d, session %q", code, sid)
		}
		const n = 300
		var open atomic.Int64
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		defer func() { cancel(); wg.Wait() }()
		for range n {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/mcp", nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Authorization", "Bearer "+neighbour)
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				continue
			}
			open.Add(1)
			wg.Go(func() {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				open.Add(-1)
			})
		}
		deadline := time.Now().Add(10 * time.Second)
		for open.Load() > 1 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%d GET streams opened on one session: %d still open", n, open.Load())
		if open.Load() != 1 {
			t.Errorf("%d streams open on one session, want 1", open.Load())
		}
	})
}

// heapInuse reads go_memstats_heap_inuse_bytes from the admin listener
// after the server's own GC settles (two scrapes a moment apart).
func heapInuse(t *testing.T, admin string) int64 {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	t.Fatal("no go_memstats_heap_inuse_bytes on the admin listener")
	return 0
}

// countLines counts the lines of a file (the audit records).
func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// rssKiB is the resident set of pid, from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
