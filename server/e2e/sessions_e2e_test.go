//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// reconnectRounds is how many times each client reconnects: three times
// the default per-user session cap (32), all as one user.
const reconnectRounds = 100

// mcpRemoteRounds is fewer: each mcp-remote start costs about two
// seconds, and opens two sessions, so 40 starts still leave 80 sessions
// behind, 2.5 times the cap.
const mcpRemoteRounds = 40

// unlimitedRatesYAML lifts the per-user, per-agent and global call limits:
// this test is about session caps, and 100 reconnects in a minute would
// otherwise meet the default 120 calls/min per user.
const unlimitedRatesYAML = `rateLimits:
  classes:
    low: {unlimited: true}
    default: {unlimited: true}
    high: {unlimited: true}
  agent: {unlimited: true}
  global: {unlimited: true}
`

// reconnectReport is what reconnect.mjs prints.
type reconnectReport struct {
	Mode      string   `json:"mode"`
	Rounds    int      `json:"rounds"`
	Connected int      `json:"connected"`
	Answered  int      `json:"answered"`
	Sessions  []string `json:"sessions"`
	Failures  []string `json:"failures"`
	Ms        int64    `json:"ms"`
}

// TestSessionsReconnectWithoutDelete: real clients reconnect as IDEs do,
// each round opening a session, calling a tool and going away without
// ending the session (the TypeScript SDK's close() sends no DELETE;
// mcp-go's client sends its DELETE without the Authorization header, so
// it is refused with 401), 100 rounds each, as one signed-in user, against
// one server with the default session caps (32 per user). Every round
// must connect and get its answer: the cap evicts the user's least
// recently used session instead of locking the user out, and the evicted
// sessions answer 404.
func TestSessionsReconnectWithoutDelete(t *testing.T) {
	dir := ensureClients(t)
	addr := freeAddr(t)
	base := "http://" + addr
	op := oidcop.Start(t, oidcop.Options{Audience: base + "/mcp", Users: []oidcop.User{e2eUser}})
	cfg := writeClientConfig(t, clientConfig{Backstage: true, PublicURL: base, Issuer: op.Issuer, Extra: unlimitedRatesYAML, UnlimitedIngress: true})
	srv := startServer(t, addr, []string{"E2E_BACKSTAGE_TOKEN=" + bs.Token}, "--config", cfg)
	mcpURL := srv.Base + "/mcp"
	tok := op.UserToken(t, e2eUser.Username, "openid", tokenScope)

	var first []string // each client's first session
	nodeClient := func(t *testing.T, mode string, rounds int) reconnectReport {
		run := runNode(t, dir, []string{"MCP_BEARER_TOKEN=" + tok.AccessToken}, 5*time.Minute,
			"reconnect.mjs", mode, mcpURL, strconv.Itoa(rounds), "whoami")
		var r reconnectReport
		if err := json.Unmarshal(run.Stdout, &r); err != nil {
			t.Fatalf("reconnect.mjs exited %d without a report (%v):\n%s", run.Code, err, tailString(run.Stderr, 4000))
		}
		t.Logf("%s: %d rounds in %d ms: %d connected, %d answered, %d failed (lock-outs)",
			mode, r.Rounds, r.Ms, r.Connected, r.Answered, len(r.Failures))
		for _, f := range r.Failures[:min(len(r.Failures), 5)] {
			t.Errorf("  %s", f)
		}
		if r.Connected != rounds || r.Answered != rounds || run.Code != 0 {
			t.Fatalf("%d of %d rounds connected, %d answered (exit %d)", r.Connected, rounds, r.Answered, run.Code)
		}
		return r
	}
	t.Run("typescript sdk", func(t *testing.T) {
		r := nodeClient(t, "http", reconnectRounds)
		if r.Sessions[0] == "" {
			t.Fatal("the SDK client was given no session ID: this test would prove nothing")
		}
		first = append(first, r.Sessions[0])
	})

	t.Run("mcp-go client", func(t *testing.T) {
		start := time.Now()
		connected, answered, deleteRefused := 0, 0, 0
		var failures []string
		for i := range reconnectRounds {
			sid, ok, err := mcpgoRound(mcpURL, tok.AccessToken)
			if sid != "" {
				connected++
				if i == 0 {
					first = append(first, sid)
				}
			}
			if ok {
				answered++
			}
			if err != nil {
				failures = append(failures, "round "+strconv.Itoa(i)+": "+err.Error())
			}
			// Close sent DELETE without the token: the session stayed.
			if sid != "" && postStatus(t, mcpURL, tok.AccessToken, sid) == http.StatusOK {
				deleteRefused++
			}
		}
		t.Logf("mcp-go client: %d rounds in %d ms: %d connected, %d answered, %d failed (lock-outs); its DELETE left the session open %d times",
			reconnectRounds, time.Since(start).Milliseconds(), connected, answered, len(failures), deleteRefused)
		for _, f := range failures[:min(len(failures), 5)] {
			t.Errorf("  %s", f)
		}
		if connected != reconnectRounds || answered != reconnectRounds {
			t.Fatalf("%d of %d rounds connected, %d answered", connected, reconnectRounds, answered)
		}
	})

	t.Run("mcp-remote", func(t *testing.T) {
		before := scrapeMetrics(t, srv.Admin+"/metrics")[`backstage_mcp_sessions_evicted_total{cap="user"}`]
		nodeClient(t, "mcp-remote", mcpRemoteRounds)
		after := scrapeMetrics(t, srv.Admin+"/metrics")[`backstage_mcp_sessions_evicted_total{cap="user"}`]
		t.Logf("mcp-remote: %d starts evicted %v sessions (it opens two per start, ends none)", mcpRemoteRounds, after-before)
	})

	// The first sessions were evicted long ago: 404, the client's cue to
	// initialize again.
	for _, sid := range first {
		if code := postStatus(t, mcpURL, tok.AccessToken, sid); code != http.StatusNotFound {
			t.Errorf("evicted session %s… = %d, want 404", sid[:min(len(sid), 20)], code)
		}
	}
	m := scrapeMetrics(t, srv.Admin+"/metrics")
	t.Logf("server: backstage_mcp_sessions_evicted_total{cap=user} = %v, backstage_mcp_sessions_local = %v",
		m[`backstage_mcp_sessions_evicted_total{cap="user"}`], m["backstage_mcp_sessions_local"])
	if got := m["backstage_mcp_sessions_local"]; got > 32 {
		t.Errorf("mcp-go holds %v sessions, want at most the cap (32)", got)
	}
	if want := float64(2*reconnectRounds + mcpRemoteRounds - 32); m[`backstage_mcp_sessions_evicted_total{cap="user"}`] < want {
		t.Errorf("%v sessions evicted, want at least %v", m[`backstage_mcp_sessions_evicted_total{cap="user"}`], want)
	}
}

// mcpgoRound is one reconnect with mcp-go's client: connect (negotiating
// the last revision with sessions), call whoami, Close. It returns the
// session ID it was given and whether the call answered.
func mcpgoRound(url, token string) (sid string, answered bool, err error) {
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		return "", false, err
	}
	defer c.Close() // sends DELETE, without the Authorization header
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		return "", false, err
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "reconnect-e2e-mcpgo", Version: "1.0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		return "", false, err
	}
	sid = c.GetSessionId()
	call := mcp.CallToolRequest{}
	call.Params.Name = "whoami"
	res, err := c.CallTool(ctx, call)
	if err != nil {
		return sid, false, err
	}
	if res.IsError {
		return sid, false, errString("whoami answered with a tool error")
	}
	return sid, true, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// postStatus sends tools/list in session sid and returns the HTTP status.
func postStatus(t *testing.T, url, token, sid string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// scrapeMetrics reads the unlabelled and labelled sample values of /metrics.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
