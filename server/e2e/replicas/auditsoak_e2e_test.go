//go:build e2e

package replicas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
)

// soakCall is one tools/call a soak worker sent, and what came back.
type soakCall struct {
	probe   string
	replica string
	code    int    // HTTP status; 0 when no answer came (the replica died)
	outcome string // "ok", "tool error", "http N", "no answer"
}

// soakRecord is the part of an audit record the soak reads.
type soakRecord struct {
	Type      string          `json:"type"`
	Tool      string          `json:"tool"`
	Decision  string          `json:"decision"`
	Reason    string          `json:"reason"`
	Limiter   string          `json:"limiter"`
	Count     int             `json:"count"`
	Arguments json.RawMessage `json:"arguments"`
	Sources   []struct {
		Reason string `json:"reason"`
		Count  int    `json:"count"`
	} `json:"sources"`
}

// TestAuditSoakRecordsEveryCall: two replicas share one Redis; eight
// agents call them without pause while Redis is stopped mid-run (and
// started again, empty) and then one replica is killed with SIGKILL.
// Every call that got an answer — a result, a tool error, a 503 while
// the stores were down — has exactly one call record naming it; calls
// refused before they reached a session (404 after Redis lost the
// sessions, 401) are counted by the aggregated auth_failure records,
// exactly; no record names a call that was not made; the killed
// replica's calls that got no answer are reported, and none of its
// answered calls lacks a record. Both chains verify.
func TestAuditSoakRecordsEveryCall(t *testing.T) {
	dir := t.TempDir()
	rs := redistest.Start(t)
	op := newIdP(t)
	const publicURL = "https://mcp.soak.example"
	// Unlimited buckets: every refusal here is a store failing closed.
	// The audit trail syncs every record (the default).
	extra := "rateLimits:\n  classes:\n    default: {unlimited: true}\n  agent: {unlimited: true}\n  global: {unlimited: true}\n"
	a := startReplica(t, dir, "soak-a", publicURL, op.srv.URL, rs.URL(), extra)
	b := startReplica(t, dir, "soak-b", publicURL, op.srv.URL, rs.URL(), extra)
	urls := map[string]string{"soak-a": "http://" + a.addr, "soak-b": "http://" + b.addr}
	audience := publicURL + "/mcp"

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	send := func(base, token, sid, body string) (int, string, string, error) {
		req, err := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
		if err != nil {
			return 0, "", "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("User-Agent", "soak/1")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", "", err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			// The status came: the answer was cut (the replica died
			// while writing it). The caller saw no result.
			return 0, "", "", err
		}
		return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(out), nil
	}

	var (
		mu        sync.Mutex
		calls     []soakCall
		refusedAt = map[int]int{} // initialize answers other than 200, by status
		unauthed  int             // answers to requests that never reached a session: 401, 404
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		tok := op.tokenFor(t, audience, fmt.Sprintf("00u-soak-%d", w), userEmail)
		replica := []string{"soak-a", "soak-b"}[w%2]
		wg.Go(func() {
			sid := ""
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				base := urls[replica]
				if sid == "" {
					code, got, _, err := send(base, tok, "", initMsg)
					switch {
					case err != nil:
						replica = "soak-a" // b is gone
						continue
					case code == http.StatusOK && got != "":
						sid = got
					default:
						mu.Lock()
						refusedAt[code]++
						if code == http.StatusUnauthorized || code == http.StatusNotFound {
							unauthed++
						}
						mu.Unlock()
						time.Sleep(20 * time.Millisecond)
						continue
					}
				}
				probe := fmt.Sprintf("soak-%d-%d", w, i)
				body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"catalog_search_entities","arguments":{"text":"` + probe + `","limit":1}}}`
				code, _, out, err := send(base, tok, sid, body)
				c := soakCall{probe: probe, replica: replica, code: code}
				switch {
				case err != nil:
					c.outcome = "no answer"
					replica = "soak-a"
				case code == http.StatusOK && strings.Contains(out, `"isError":true`):
					c.outcome = "tool error"
				case code == http.StatusOK:
					c.outcome = "ok"
				default:
					c.outcome = fmt.Sprintf("http %d", code)
				}
				mu.Lock()
				calls = append(calls, c)
				if code == http.StatusUnauthorized || code == http.StatusNotFound {
					unauthed++
				}
				mu.Unlock()
				if code == http.StatusNotFound {
					sid = "" // Redis came back empty: the session is gone
				}
			}
		})
	}
	phase := func(name string, d time.Duration) {
		time.Sleep(d)
		mu.Lock()
		t.Logf("%-22s %d calls so far", name, len(calls))
		mu.Unlock()
	}
	phase("normal", 2*time.Second)
	rs.Stop()
	phase("Redis stopped", 2*time.Second)
	rs.Restart()
	phase("Redis back (empty)", 2*time.Second)
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = b.cmd.Wait()
	phase("soak-b killed", 2*time.Second)
	close(stop)
	wg.Wait()
	a.stop() // SIGTERM: pending aggregated records are written

	// Read both trails.
	byProbe := map[string]int{}
	authEvents := 0
	initRefusals := 0
	for _, f := range []string{a.audit, b.audit} {
		for _, r := range readSoakRecords(t, f) {
			switch r.Type {
			case "call":
				var args struct{ Text string }
				_ = json.Unmarshal(r.Arguments, &args)
				if !strings.HasPrefix(args.Text, "soak-") {
					t.Errorf("a call record names no call of the soak: %+v", r)
					continue
				}
				byProbe[args.Text] += max(r.Count, 1)
			case "auth_failure":
				if len(r.Sources) == 0 {
					authEvents += max(r.Count, 1)
				}
				for _, s := range r.Sources {
					authEvents += max(s.Count, 1)
				}
			case "session":
				if r.Tool == "initialize" {
					initRefusals += max(r.Count, 1)
				}
			}
		}
	}

	outcomes := map[string]int{}
	made := map[string]bool{}
	noAnswer, noAnswerRecorded := 0, 0
	for _, c := range calls {
		outcomes[c.outcome]++
		made[c.probe] = true
		n := byProbe[c.probe]
		switch c.code {
		case 0:
			// In flight on the killed replica, or sent to it after: no
			// answer reached the agent. A record may or may not exist.
			noAnswer++
			if n > 0 {
				noAnswerRecorded++
			}
			if n > 1 {
				t.Errorf("call %s has %d records", c.probe, n)
			}
		case http.StatusUnauthorized, http.StatusNotFound:
			if n != 0 {
				t.Errorf("call %s answered %d has %d call records; it never reached a session", c.probe, c.code, n)
			}
		default:
			if n != 1 {
				t.Errorf("call %s on %s answered %s has %d call records, want 1", c.probe, c.replica, c.outcome, n)
			}
		}
	}
	for p := range byProbe {
		if !made[p] {
			t.Errorf("a record names call %s, which no agent made", p)
		}
	}
	initRefused := 0
	for code, n := range refusedAt {
		if code != http.StatusUnauthorized && code != http.StatusNotFound {
			initRefused += n
		}
	}
	if authEvents != unauthed {
		t.Errorf("%d requests refused before a session (401/404), auth_failure records count %d", unauthed, authEvents)
	}
	if initRefusals != initRefused {
		t.Errorf("%d initialize requests refused (%v), %d session records", initRefused, refusedAt, initRefusals)
	}
	keys := make([]string, 0, len(outcomes))
	for k := range outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sum []string
	for _, k := range keys {
		sum = append(sum, fmt.Sprintf("%s %d", k, outcomes[k]))
	}
	answered := len(calls) - noAnswer
	t.Logf("%d calls: %s; %d answered, each with exactly one record; %d got no answer from the killed replica (%d of them recorded before it died); "+
		"%d refused before a session = %d counted in auth_failure records; initialize refused %v = %d session records",
		len(calls), strings.Join(sum, ", "), answered, noAnswer, noAnswerRecorded, unauthed, authEvents, refusedAt, initRefusals)
	if outcomes["ok"] == 0 || answered-outcomes["ok"] == 0 {
		t.Errorf("the soak saw no refusals or no successes (%v): it proves nothing", outcomes)
	}
	for _, f := range []string{a.audit, b.audit} {
		out, err := exec.Command(binary, "audit", "verify", f).CombinedOutput()
		if err != nil {
			t.Errorf("audit verify %s: %v\n%s", f, err, out)
			continue
		}
		t.Logf("verify %s: %s", f[len(dir)+1:], strings.SplitN(string(out), "\n", 2)[0])
	}
}

// readSoakRecords reads the records of one trail; a torn last line (the
// killed replica's) is skipped.
func readSoakRecords(t *testing.T, path string) []soakRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []soakRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r soakRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue
		}
		out = append(out, r)
	}
	return out
}
