package state

import (
	"sync"
	"testing"
	"time"
)

// failoverCall is one call of a failover test's load.
type failoverCall struct {
	start, end time.Time
	err        error
}

// failoverLoad runs workers that call call(worker, i) in a loop, every
// 5 ms, and records each call, until stop.
type failoverLoad struct {
	mu    sync.Mutex
	calls []failoverCall
	done  chan struct{}
	wg    sync.WaitGroup
}

func startFailoverLoad(workers int, call func(w, i int) error) *failoverLoad {
	l := &failoverLoad{done: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.done:
					return
				default:
				}
				start := time.Now()
				err := call(w, i)
				l.mu.Lock()
				l.calls = append(l.calls, failoverCall{start, time.Now(), err})
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return l
}

// stop ends the load and waits for its workers.
func (l *failoverLoad) stop() {
	close(l.done)
	l.wg.Wait()
}

// recovered is the end of the first call begun after t0 that succeeded
// (zero if none yet).
func (l *failoverLoad) recovered(t0 time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, c := range l.calls {
		if c.err == nil && c.start.After(t0) && (first.IsZero() || c.end.Before(first)) {
			first = c.end
		}
	}
	return first
}

// errorsSince counts the errors of calls begun after t0, by message.
func (l *failoverLoad) errorsSince(t0 time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	kinds := map[string]int{}
	for _, c := range l.calls {
		if c.start.After(t0) && c.err != nil {
			kinds[c.err.Error()]++
		}
	}
	return kinds
}

// failoverTally is a stopped load's calls sorted by phase.
type failoverTally struct {
	before, during, after int
	afterErrs             []string
}

// tally sorts the calls: those ended before the fault (each must have
// succeeded), those begun after steady (their errors listed in
// afterErrs), and the rest, during the fault, whose errors judge sees.
func (l *failoverLoad) tally(t *testing.T, fault, steady time.Time, judge func(error)) failoverTally {
	t.Helper()
	var f failoverTally
	for _, c := range l.calls {
		switch {
		case c.end.Before(fault):
			f.before++
			if c.err != nil {
				t.Errorf("a call before the fault failed: %v", c.err)
			}
		case c.start.After(steady):
			f.after++
			if c.err != nil {
				f.afterErrs = append(f.afterErrs, c.err.Error())
			}
		default:
			f.during++
			if c.err != nil {
				judge(c.err)
			}
		}
	}
	return f
}
