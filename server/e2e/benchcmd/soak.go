package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// soakResult is the outcome of the soak.
type soakResult struct {
	Sessions       int       `json:"sessions"`
	Seconds        float64   `json:"seconds"`
	Calls          int64     `json:"calls"`
	Failed         int64     `json:"failed"`
	FirstError     string    `json:"first_error,omitempty"`
	CallsPerSec    float64   `json:"calls_per_sec"`
	P50Ms          float64   `json:"p50_ms"`
	P99Ms          float64   `json:"p99_ms"`
	AuditCalls     int64     `json:"audit_call_records"`
	AuditVerify    string    `json:"audit_verify"`
	AuditVerifyOK  bool      `json:"audit_verify_ok"`
	RSSKiB         []int64   `json:"rss_kib_per_second"`
	WarmRSSKiB     int64     `json:"rss_kib_after_warmup"`
	EndRSSKiB      int64     `json:"rss_kib_at_end"`
	PeakRSSKiB     int64     `json:"peak_rss_kib"`
	Mix            []string  `json:"mix"`
	SessionsFailed int       `json:"sessions_failed_to_connect"`
	Started        time.Time `json:"started"`
}

// soak runs many concurrent sessions of mixed tool calls against a fresh
// backstage-mcp, then checks the audit trail against the calls made.
func (b *bench) soak(ctx context.Context, bs *backstage, user string, qs questionSet) error {
	ours, err := b.startOurs(ctx, bs, user, "soak", oursVariants[0])
	if err != nil {
		return err
	}
	r := soakResult{Sessions: b.o.soakSessions, Started: time.Now().UTC(),
		Mix: []string{"40% catalog_get_entity (half distinct refs, half hot set)", "20% catalog_search_entities", "15% catalog_get_relations", "15% catalog_find_owner", "10% catalog_get_api_definition"}}
	hc := &http.Client{Transport: newTransport()}
	callers := make([]*mcpCaller, b.o.soakSessions)
	var cwg sync.WaitGroup
	var dialFail atomic.Int64
	sem := make(chan struct{}, 16)
	for i := range callers {
		cwg.Add(1)
		go func(i int) {
			defer cwg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := dialMCP(ctx, ours.url+"/mcp", hc, nil, true)
			if err != nil {
				dialFail.Add(1)
				return
			}
			callers[i] = c
		}(i)
	}
	cwg.Wait()
	r.SessionsFailed = int(dialFail.Load())
	b.log.Info("soak: sessions connected", "sessions", b.o.soakSessions-r.SessionsFailed, "duration", b.o.soakDuration)

	var calls, failed, ctr atomic.Int64
	var firstErr atomic.Value
	end := time.Now().Add(b.o.soakDuration)
	lats := make([][]time.Duration, len(callers))
	var wg sync.WaitGroup
	for w, c := range callers {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func(w int, c *mcpCaller) {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				i := ctr.Add(1)
				name, args := soakCall(i, qs)
				req := mcp.CallToolRequest{}
				req.Params.Name = name
				req.Params.Arguments = args
				cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				t0 := time.Now()
				res, err := c.c.CallTool(cctx, req)
				d := time.Since(t0)
				cancel()
				calls.Add(1)
				if err != nil || res.IsError {
					failed.Add(1)
					msg := ""
					if err != nil {
						msg = err.Error()
					} else {
						for _, ct := range res.Content {
							if t, ok := ct.(mcp.TextContent); ok {
								msg = t.Text
							}
						}
					}
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s %v: %s", name, args, clipText(msg, 300)))
					continue
				}
				lats[w] = append(lats[w], d)
			}
		}(w, c)
	}
	// RSS every second.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	start := time.Now()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			if kb, err := procStatusKiB(ours.pid, "VmRSS"); err == nil {
				r.RSSKiB = append(r.RSSKiB, kb)
			}
		}
	}
	tick.Stop()
	r.Seconds = time.Since(start).Seconds()
	r.PeakRSSKiB, _ = procStatusKiB(ours.pid, "VmHWM")
	for _, c := range callers {
		if c != nil {
			c.close()
		}
	}
	ours.stop() // flushes and closes the audit file
	r.Calls, r.Failed = calls.Load(), failed.Load()
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	r.P50Ms, _, r.P99Ms, _ = latencyStats(all)
	r.CallsPerSec = float64(r.Calls) / b.o.soakDuration.Seconds()
	if n := len(r.RSSKiB); n > 0 {
		warm := min(10, n-1) // after 10 s
		r.WarmRSSKiB = r.RSSKiB[warm]
		r.EndRSSKiB = r.RSSKiB[n-1]
	}
	if r.AuditCalls, err = countAuditCalls(ours.audit); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, b.binary, "audit", "verify", ours.audit).CombinedOutput()
	r.AuditVerify = clipText(string(out), 500)
	r.AuditVerifyOK = err == nil
	b.res.Soak = &r
	b.log.Info("soak done", "calls", r.Calls, "failed", r.Failed, "audit_calls", r.AuditCalls, "verify_ok", r.AuditVerifyOK,
		"rss_warm_kib", r.WarmRSSKiB, "rss_end_kib", r.EndRSSKiB)
	return nil
}

// soakCall returns the i-th call of the mix.
func soakCall(i int64, qs questionSet) (string, map[string]any) {
	pickRef := func(l []entityRef, k int64) string { return l[k%int64(len(l))].String() }
	switch m := i % 20; {
	case m < 4:
		return "catalog_get_entity", map[string]any{"ref": pickRef(qs.distinct, i*7919)}
	case m < 8:
		return "catalog_get_entity", map[string]any{"ref": pickRef(qs.hot, i)}
	case m < 12:
		s := qs.searches[i%int64(len(qs.searches))]
		return "catalog_search_entities", map[string]any{"kind": s.Of, "owner": s.Team, "limit": 20}
	case m < 15:
		return "catalog_get_relations", map[string]any{"ref": pickRef(qs.components, i*31), "depth": 2}
	case m < 18:
		return "catalog_find_owner", map[string]any{"ref": pickRef(qs.components, i*17)}
	default:
		return "catalog_get_api_definition", map[string]any{"ref": pickRef(qs.apis, i*13)}
	}
}

// countAuditCalls counts the records of type "call" in an audit file.
func countAuditCalls(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("benchcmd: open audit: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var n int64
	for sc.Scan() {
		var rec struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return 0, fmt.Errorf("benchcmd: audit line: %w", err)
		}
		if rec.Type == "call" {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("benchcmd: read audit: %w", err)
	}
	return n, nil
}
