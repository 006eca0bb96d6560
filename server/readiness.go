package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog/mirror"
)

// Readiness and liveness.
//
// /readyz answers 503 only for what this replica alone can fix by being
// taken out of rotation: its audit log cannot take a record, its catalog
// mirror has not completed its first sync, it is shutting down. Shared
// dependencies (Backstage, Redis, the identity provider, the mirror's age)
// fail every replica at once: taking them all out leaves the load balancer
// no endpoint and the callers a connection error instead of the tool error
// that says what is wrong. They are reported on the admin listener's
// /readyz and as backstage_mcp_ready_check, never in the status code.
//
// A background prober runs every check on its own (every
// readyProbeInterval, every readyRetryInterval while one fails): a failed
// audit write is re-tested (audit.Log.Probe) so a freed disk makes the
// replica ready again within seconds without any call reaching it.
//
// /healthz answers 503 when the process is wedged and only a restart
// helps: the audit writer stuck in one write or fsync beyond wedgeAfter, a
// failed fsync (the log cannot be trusted until it is reopened), or the
// prober not finishing a round within wedgeAfter.

// Scopes of a ready check.
const (
	// ScopeReplica checks are about this replica alone; a failing one
	// makes /readyz 503.
	ScopeReplica = "replica"
	// ScopeShared checks are dependencies every replica shares; they are
	// reported, never a reason for 503.
	ScopeShared = "shared"
)

const (
	// readyTimeout bounds one round of checks; checks run concurrently.
	readyTimeout = 3 * time.Second
	// readyProbeInterval is how often the prober runs every check while
	// all pass, readyRetryInterval while one fails.
	readyProbeInterval = 5 * time.Second
	readyRetryInterval = time.Second
	// defaultWedgeAfter is how long one audit write (or a prober round)
	// may take before /healthz reports the process wedged.
	defaultWedgeAfter = 30 * time.Second
)

// ReadyCheck is one dependency reported by /readyz. Check returns a short
// detail for operators (never a secret) and an error when the dependency
// keeps the server from answering calls.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) (detail string, err error)
	// Info, when set, adds machine-readable facts to the dependency's
	// entry (never a secret).
	Info func() map[string]any
	// Replica marks a check of this replica alone (ScopeReplica): when it
	// fails /readyz is 503. Otherwise the check is a shared dependency,
	// reported only.
	Replica bool
}

func (c ReadyCheck) scope() string {
	if c.Replica {
		return ScopeReplica
	}
	return ScopeShared
}

// readyStatus is one dependency in the /readyz body.
type readyStatus struct {
	Status string         `json:"status"`
	Scope  string         `json:"scope"`
	Detail string         `json:"detail,omitempty"`
	Info   map[string]any `json:"info,omitempty"`
	Ms     float64        `json:"ms"`
}

// readyBody is the /readyz answer: the status and, on the admin listener
// only, each check's state.
type readyBody struct {
	Status string                 `json:"status"`
	Checks map[string]readyStatus `json:"checks,omitempty"`
}

// readiness is the prober's state and the shutdown flag.
type readiness struct {
	// draining is set when shutdown starts.
	draining atomic.Bool
	// round is when the prober last finished a round (unix nanoseconds);
	// 0 until the prober runs.
	round atomic.Int64
	// wedgeAfter bounds one audit write and one prober round (liveness).
	wedgeAfter time.Duration

	mu     sync.Mutex
	failed map[string]bool // check name → failing at the last report
}

// readyChecks lists the checks: the audit log, shutdown and (mirror mode)
// the mirror's first sync for this replica; Backstage (with the server's
// own credential), the catalog's freshness, every trusted identity
// provider's signing keys and any extra checks (Redis) as shared ones.
func (s *Server) readyChecks() []ReadyCheck {
	checks := []ReadyCheck{{Name: "audit", Replica: true, Check: func(context.Context) (string, error) {
		if err := s.opts.Audit.Probe(); err != nil {
			return "failing: calls are refused until a record can be written (re-tested every second)", err
		}
		return "writable", nil
	}}, {Name: "shutdown", Replica: true, Check: func(context.Context) (string, error) {
		if s.ready.draining.Load() {
			return "shutting down: in-flight calls finish, new ones go elsewhere", errDraining
		}
		return "serving", nil
	}}}
	if s.opts.Ready != nil {
		checks = append(checks, ReadyCheck{Name: "backstage", Check: func(ctx context.Context) (string, error) {
			if err := s.opts.Ready(ctx); err != nil {
				return "unreachable or refusing the server's credential: catalog calls fail", err
			}
			return "reachable", nil
		}})
	}
	if m := s.opts.Mirror; m != nil {
		checks = append(checks, ReadyCheck{Name: "mirror", Replica: true, Check: func(context.Context) (string, error) {
			if st := m.Status(); !st.Synced {
				return "first sync not completed: this replica has no catalog yet", mirror.ErrNotReady
			}
			return "loaded", nil
		}})
	}
	checks = append(checks, s.catalogCheck())
	if s.opts.Auth != nil {
		checks = append(checks, ReadyCheck{Name: "identity", Check: func(ctx context.Context) (string, error) {
			var parts []string
			var firstErr error
			for _, st := range s.opts.Auth.Ready(ctx) {
				if st.Err != nil {
					parts = append(parts, st.Issuer+": no signing keys")
					if firstErr == nil {
						firstErr = st.Err
					}
					continue
				}
				parts = append(parts, fmt.Sprintf("%s: %d keys", st.Issuer, st.Keys))
			}
			return strings.Join(parts, "; "), firstErr
		}})
	}
	return append(checks, s.opts.ReadyChecks...)
}

// errDraining is the shutdown check's error.
var errDraining = errors.New("server: shutting down")

// catalogCheck reports where catalog reads are answered. In mirror mode it
// fails when the mirror has not completed its first sync or is stale
// (older than its maximum staleness; the calls then fail closed too), and
// gives the mirror's size, last sync time, age and sync durations. It is
// a shared check: a stale mirror means Backstage has not answered every
// replica's syncs.
func (s *Server) catalogCheck() ReadyCheck {
	m := s.opts.Mirror
	if m == nil && s.opts.Ready == nil {
		// No Backstage behind the catalog: the embedded demo catalog,
		// read in process.
		return ReadyCheck{Name: "catalog",
			Check: func(context.Context) (string, error) { return "in process: the embedded catalog, no Backstage", nil },
			Info:  func() map[string]any { return map[string]any{"mode": "in-process"} }}
	}
	if m == nil {
		return ReadyCheck{Name: "catalog",
			Check: func(context.Context) (string, error) { return "passthrough: every call reads Backstage", nil },
			Info:  func() map[string]any { return map[string]any{"mode": CatalogPassthrough} }}
	}
	return ReadyCheck{Name: "catalog", Check: func(context.Context) (string, error) {
		st := m.Status()
		switch {
		case !st.Synced && !st.SyncingSince.IsZero():
			return fmt.Sprintf("mirror: first sync running for %s; catalog calls fail until it completes",
				st.SyncingFor.Round(time.Second)), mirror.ErrNotReady
		case !st.Synced:
			return "mirror: first sync not completed; catalog calls fail", mirror.ErrNotReady
		case st.Stale:
			return fmt.Sprintf("mirror: %d entities, stale: data %s old (last completed sync started then), beyond maxStaleness %s; catalog calls fail",
				st.Entities, st.Age.Round(time.Second), st.MaxStaleness), mirror.ErrNotReady
		case st.LastError != "":
			return fmt.Sprintf("mirror: %d entities, data %s old; the last sync failed, answering until the data is %s old",
				st.Entities, st.Age.Round(time.Second), st.MaxStaleness), nil
		}
		return fmt.Sprintf("mirror: %d entities, data %s old (last sync took %s)", st.Entities, st.Age.Round(time.Second),
			st.SyncDuration.Round(time.Millisecond)), nil
	}, Info: func() map[string]any { return mirrorInfo(m.Status()) }}
}

// readyz is /readyz on the admin listener: the status and code of the
// agents' listener, with every check (shared ones too) and its detail.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	code, body := s.readyReport(r.Context(), true)
	writeJSON(w, code, body)
}

// readyzStatus is /readyz on the agents' listener (the one the load
// balancer probes): only this replica's checks run, all of them local and
// quick, and the answer is the status alone.
func (s *Server) readyzStatus(w http.ResponseWriter, r *http.Request) {
	code, body := s.readyReport(r.Context(), false)
	writeJSON(w, code, readyBody{Status: body.Status})
}

// readyReport runs the replica's checks, and with all the shared ones too,
// concurrently within readyTimeout. The code is 503 when a replica check
// fails; shared checks only add to the body and the metrics.
func (s *Server) readyReport(ctx context.Context, all bool) (int, readyBody) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var checks []ReadyCheck
	for _, c := range s.readyChecks() {
		if all || c.Replica {
			checks = append(checks, c)
		}
	}
	results := make([]readyStatus, len(checks))
	errs := make([]error, len(checks))
	done := make(chan int, len(checks))
	for i, c := range checks {
		go func() {
			start := time.Now()
			detail, err := c.Check(ctx)
			results[i] = readyStatus{Status: "ok", Detail: detail, Ms: float64(time.Since(start).Microseconds()) / 1000}
			if c.Info != nil {
				results[i].Info = c.Info()
			}
			errs[i] = err
			done <- i
		}()
	}
	body := readyBody{Status: "ok", Checks: make(map[string]readyStatus, len(checks))}
	finished := make([]bool, len(checks))
wait:
	for range checks {
		select {
		case i := <-done:
			finished[i] = true
		case <-ctx.Done():
			break wait
		}
	}
	for i, c := range checks {
		st := readyStatus{Status: "fail", Detail: "no answer within " + readyTimeout.String(), Ms: float64(readyTimeout.Milliseconds())}
		err := context.DeadlineExceeded
		if finished[i] {
			st, err = results[i], errs[i]
			if err != nil {
				st.Status = "fail"
			}
		}
		st.Scope = c.scope()
		if st.Status != "ok" && c.Replica {
			body.Status = "unavailable"
		}
		body.Checks[c.Name] = st
		s.noteCheck(ctx, c, err)
	}
	code := http.StatusOK
	if body.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	return code, body
}

// noteCheck sets the check's metric and logs when it starts or stops
// failing (once per change, not once per probe).
func (s *Server) noteCheck(ctx context.Context, c ReadyCheck, err error) {
	s.metrics.readyCheck(c.Name, c.scope(), err == nil)
	s.ready.mu.Lock()
	if s.ready.failed == nil {
		s.ready.failed = map[string]bool{}
	}
	was, seen := s.ready.failed[c.Name]
	s.ready.failed[c.Name] = err != nil
	s.ready.mu.Unlock()
	switch {
	case err != nil && !was:
		s.log.WarnContext(ctx, "dependency failing", "check", c.Name, "scope", c.scope(), "err", err)
	case err == nil && was && seen:
		s.log.InfoContext(ctx, "dependency recovered", "check", c.Name, "scope", c.scope())
	}
}

// probeReadiness runs every check until ctx ends: every readyProbeInterval,
// every readyRetryInterval while one fails, so a failed check re-probes on
// its own (a freed audit disk is noticed within a second or two).
func (s *Server) probeReadiness(ctx context.Context) {
	for {
		_, body := s.readyReport(ctx, true)
		s.ready.round.Store(time.Now().UnixNano())
		wait := readyProbeInterval
		for _, st := range body.Checks {
			if st.Status != "ok" {
				wait = readyRetryInterval
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// wedged says why the process cannot recover without a restart, or "".
func (s *Server) wedged() string {
	bound := s.ready.wedgeAfter
	if bound <= 0 {
		bound = defaultWedgeAfter
	}
	if d := s.opts.Audit.FlushingFor(); d > bound {
		return fmt.Sprintf("audit writer stuck in one write or fsync for %s (bound %s)", d.Round(time.Second), bound)
	}
	if s.opts.Audit.Sticky() {
		return "audit: an fsync failed; records acknowledged before it may be lost and the log takes none until the process reopens it"
	}
	if t := s.ready.round.Load(); t != 0 {
		if d := time.Since(time.Unix(0, t)); d > bound+readyTimeout+readyProbeInterval {
			return fmt.Sprintf("readiness prober has not finished a round for %s", d.Round(time.Second))
		}
	}
	return ""
}

// healthz is /healthz on the admin listener: 503 with the reason when the
// process is wedged (see wedged), 200 otherwise.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if why := s.wedged(); why != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "wedged", "detail": why})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// healthzStatus is /healthz on the agents' listener: the same code, the
// status alone.
func (s *Server) healthzStatus(w http.ResponseWriter, _ *http.Request) {
	if s.wedged() != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "wedged"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
