package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// phaseResult is the outcome of one load phase.
type phaseResult struct {
	// Scale is the number of generated entities of the catalog measured.
	Scale       int     `json:"scale"`
	Scenario    string  `json:"scenario"`
	Path        string  `json:"path"`
	Concurrency int     `json:"concurrency"`
	Calls       int     `json:"calls"`
	Failures    int     `json:"failures"`
	Seconds     float64 `json:"seconds"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MeanMs      float64 `json:"mean_ms"`
	CallsPerSec float64 `json:"calls_per_sec"`
	// Capped is true when the phase hit its time cap before it had
	// counted its minimum number of calls.
	Capped     bool   `json:"capped,omitempty"`
	FirstError string `json:"first_error,omitempty"`
	// Asked is how many questions were taken, warm-up included.
	Asked int64 `json:"-"`
}

// phaseLimits bound one load phase.
type phaseLimits struct {
	// Warm is the shortest unmeasured warm-up. The warm-up also lasts
	// until every worker has finished one call, so that slow calls do not
	// start the window in a synchronised burst.
	Warm time.Duration
	// Dur is the shortest measuring window.
	Dur time.Duration
	// MinCalls is the fewest calls that must end inside the window: a
	// phase whose calls are slow runs longer than Dur until they have
	// ended.
	MinCalls int
	// Max caps warm-up plus window (a hung upstream must not hang the run).
	Max time.Duration
}

// phaseRun is one measuring window of a phase; a phase run in several
// rounds (--rounds) merges its windows with mergeRuns.
type phaseRun struct {
	lat      []time.Duration // successful calls timed
	inside   int             // successful calls that ended inside the window
	seconds  float64         // window length
	failures int
	capped   bool
	firstErr string
	asked    int64 // questions taken, warm-up included
}

// callRecord is one call as a worker saw it.
type callRecord struct {
	t0, t1 time.Time
	ok     bool
}

// callTimeout bounds one call: far above any call the bench expects, so
// that slow calls are counted rather than cut off.
const callTimeout = 2 * time.Minute

// runPhase runs callers[:conc] in parallel, each asking next(i) for the
// i-th question (i counts across workers, so every call gets a distinct
// index).
//
// The measuring window opens when the warm-up is over (lim.Warm has passed
// and every worker has finished a call) and closes at the first call end
// after which both lim.Dur has passed and lim.MinCalls calls have ended
// inside the window. No call starts after that, and the calls still running
// are awaited: every call that ends after the window opened is timed, so
// slow calls are counted rather than dropped. Throughput is the successful
// calls that ended inside the window divided by its length. A failure is a
// transport error or a tool error; failures are counted, not timed.
func runPhase(ctx context.Context, callers []caller, conc int, next func(i int64) question, lim phaseLimits) phaseRun {
	var (
		ctr       atomic.Int64
		firstDone atomic.Int64
		firstEnd  atomic.Int64 // latest end of a worker's first call, UnixNano
		openAt    atomic.Int64 // window opening, UnixNano; 0 while warming up
		closeAt   atomic.Int64 // window closing, UnixNano; 0 while open
		inWindow  atomic.Int64 // calls (ok or not) that ended in the window
		capped    atomic.Bool
	)
	start := time.Now()
	warmEnd := start.Add(lim.Warm)
	hardEnd := start.Add(lim.Max)
	records := make([][]callRecord, conc)
	firstErr := make([]string, conc)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			recs := make([]callRecord, 0, 1024)
			first := true
			for closeAt.Load() == 0 && ctx.Err() == nil {
				q := next(ctr.Add(1) - 1)
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				t0 := time.Now()
				a, err := callers[w].call(cctx, q, false)
				t1 := time.Now()
				cancel()
				ok := err == nil && !a.ToolError
				recs = append(recs, callRecord{t0: t0, t1: t1, ok: ok})
				if !ok && firstErr[w] == "" {
					if err != nil {
						firstErr[w] = err.Error()
					} else {
						firstErr[w] = clipText(a.Text, 200)
					}
				}
				if first {
					first = false
					// The window opens after the latest first call, which is
					// not always the last one counted: a worker may be
					// descheduled between its call's end and the count.
					for e := firstEnd.Load(); t1.UnixNano() > e && !firstEnd.CompareAndSwap(e, t1.UnixNano()); e = firstEnd.Load() {
					}
					if firstDone.Add(1) == int64(conc) {
						openAt.CompareAndSwap(0, max(firstEnd.Load(), warmEnd.UnixNano()))
					}
				}
				if o := openAt.Load(); o != 0 && t1.UnixNano() > o {
					n := inWindow.Add(1)
					if t1.Sub(time.Unix(0, o)) >= lim.Dur && n >= int64(lim.MinCalls) {
						closeAt.CompareAndSwap(0, t1.UnixNano())
					}
				}
				if t1.After(hardEnd) && closeAt.Load() == 0 {
					openAt.CompareAndSwap(0, warmEnd.UnixNano())
					capped.Store(true)
					closeAt.CompareAndSwap(0, t1.UnixNano())
				}
			}
			records[w] = recs
		}(w)
	}
	wg.Wait()
	run := summarise(records, time.Unix(0, openAt.Load()), time.Unix(0, closeAt.Load()))
	run.capped = capped.Load()
	run.asked = ctr.Load()
	for _, e := range firstErr {
		if e != "" {
			run.firstErr = e
			break
		}
	}
	return run
}

// summarise computes a phase's figures from its call records and its
// window (open, closed]: every call that ended after open is timed
// (or counted as a failure); throughput counts the successful ones that
// ended inside the window.
func summarise(records [][]callRecord, open, closed time.Time) phaseRun {
	var run phaseRun
	for _, recs := range records {
		for _, r := range recs {
			if !r.t1.After(open) {
				continue // warm-up, including the call that opened the window
			}
			if !r.ok {
				run.failures++
				continue
			}
			run.lat = append(run.lat, r.t1.Sub(r.t0))
			if !r.t1.After(closed) {
				run.inside++
			}
		}
	}
	run.seconds = closed.Sub(open).Seconds()
	return run
}

// mergeRuns computes a phase's figures from its windows: latencies over
// all their timed calls, throughput as the calls that ended inside the
// windows over their summed length.
func mergeRuns(conc int, runs []phaseRun) phaseResult {
	res := phaseResult{Concurrency: conc}
	var lat []time.Duration
	var inside int
	for _, r := range runs {
		lat = append(lat, r.lat...)
		inside += r.inside
		res.Seconds += r.seconds
		res.Failures += r.failures
		res.Capped = res.Capped || r.capped
		res.Asked += r.asked
		if res.FirstError == "" {
			res.FirstError = r.firstErr
		}
	}
	res.Calls = len(lat)
	if res.Seconds > 0 {
		res.CallsPerSec = float64(inside) / res.Seconds
	}
	res.P50Ms, res.P90Ms, res.P99Ms, res.MeanMs = latencyStats(lat)
	return res
}

// latencyStats returns p50, p90, p99 (nearest rank) and mean in
// milliseconds.
func latencyStats(d []time.Duration) (p50, p90, p99, mean float64) {
	if len(d) == 0 {
		return 0, 0, 0, 0 // no successful call: reported as "–"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	return ms(percentile(s, 50)), ms(percentile(s, 90)), ms(percentile(s, 99)), ms(sum) / float64(len(s))
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
