package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// phaseResult is the outcome of one time-bounded load phase.
type phaseResult struct {
	Scenario    string  `json:"scenario"`
	Path        string  `json:"path"`
	Concurrency int     `json:"concurrency"`
	Calls       int     `json:"calls"`
	Failures    int     `json:"failures"`
	Seconds     float64 `json:"seconds"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MeanMs      float64 `json:"mean_ms"`
	CallsPerSec float64 `json:"calls_per_sec"`
	FirstError  string  `json:"first_error,omitempty"`
	// Asked is how many questions were taken, warm-up included.
	Asked int64 `json:"-"`
}

// runPhase runs callers[:conc] in parallel, each asking next(i) for the
// i-th question (i counts across workers, so every call gets a distinct
// index), for warm+dur. Calls that end during warm are not counted.
// Successful calls (no error, no tool error) are timed; failures counted.
func runPhase(ctx context.Context, callers []caller, conc int, next func(i int64) question, warm, dur time.Duration) phaseResult {
	var ctr atomic.Int64
	start := time.Now()
	measureFrom := start.Add(warm)
	end := measureFrom.Add(dur)
	type local struct {
		lat      []time.Duration
		failures int
		firstErr string
	}
	locals := make([]local, conc)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			l := &locals[w]
			l.lat = make([]time.Duration, 0, 4096)
			for {
				now := time.Now()
				if now.After(end) || ctx.Err() != nil {
					return
				}
				q := next(ctr.Add(1) - 1)
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t0 := time.Now()
				a, err := callers[w].call(cctx, q, false)
				t1 := time.Now()
				cancel()
				if t1.Before(measureFrom) || t1.After(end) {
					continue
				}
				if err != nil || a.ToolError {
					l.failures++
					if l.firstErr == "" {
						if err != nil {
							l.firstErr = err.Error()
						} else {
							l.firstErr = clipText(a.Text, 200)
						}
					}
					continue
				}
				l.lat = append(l.lat, t1.Sub(t0))
			}
		}(w)
	}
	wg.Wait()
	var all []time.Duration
	res := phaseResult{Concurrency: conc, Seconds: dur.Seconds()}
	for _, l := range locals {
		all = append(all, l.lat...)
		res.Failures += l.failures
		if res.FirstError == "" {
			res.FirstError = l.firstErr
		}
	}
	res.Calls = len(all)
	res.Asked = ctr.Load()
	res.P50Ms, res.P99Ms, res.MeanMs = latencyStats(all)
	res.CallsPerSec = float64(res.Calls) / dur.Seconds()
	return res
}

// latencyStats returns p50, p99 (nearest rank) and mean in milliseconds.
func latencyStats(d []time.Duration) (p50, p99, mean float64) {
	if len(d) == 0 {
		return 0, 0, 0 // no successful call: reported as "–"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	return ms(percentile(s, 50)), ms(percentile(s, 99)), ms(sum) / float64(len(s))
}

// percentile returns the nearest-rank p-th percentile of sorted s.
func percentile(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
