package catalog

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Change is one change to the catalog that a mirror saw: an entity added,
// changed or removed, when the sync that found it began.
type Change struct {
	// Op is ChangeAdded, ChangeChanged or ChangeRemoved.
	Op string
	// Ref is the entity's ref, lower case (kind:namespace/name).
	Ref string
	// At is the start of the sync that found the change.
	At time.Time
	// Before is the entity as it was before a change or removal (nil
	// for an addition), so that whether the caller could see it, and
	// whether the change shows in what it can see, can be decided.
	Before json.RawMessage
	// Key names the change itself (the entity's uid with its etags
	// before and after), the same on every replica that sees it: a
	// shared ChangeLog keeps one record per key.
	Key string
}

// The operations of a Change.
const (
	ChangeAdded   = "added"
	ChangeChanged = "changed"
	ChangeRemoved = "removed"
	// ChangeRestart is no change but a mark in a log that outlives
	// restarts: a mirror began watching at At with no copy of its own to
	// compare (a server started while the log already held a start), so
	// changes made before At that no running server saw are not in the
	// log. Ref is "-".
	ChangeRestart = "restart"
)

// ChangeLog keeps the changes a catalog mirror finds: in this process
// (MemoryChangeLog) or in a store replicas share, which outlives
// restarts. It is bounded by a number of changes and a retention window.
type ChangeLog interface {
	// Begin notes that a mirror watches the catalog from t on (the
	// start of its first sync); the log covers changes from the
	// earliest such t it keeps.
	Begin(ctx context.Context, t time.Time) error
	// Append records the changes one sync found.
	Append(ctx context.Context, changes []Change) error
	// Range calls yield with the changes found by syncs that began at
	// or after since, newest first, until yield returns false.
	Range(ctx context.Context, since time.Time, yield func(Change) bool) error
	// Horizon says what the log covers.
	Horizon(ctx context.Context) (ChangeHorizon, error)
}

// ChangeHorizon is what a ChangeLog covers: changes from Start on (zero:
// no mirror has synced yet), within Retention and MaxChanges; Durable
// reports that the log outlives a restart of the server.
type ChangeHorizon struct {
	Start      time.Time
	Retention  time.Duration
	MaxChanges int
	Durable    bool
}

// MemoryChangeLog is a ChangeLog in this process: a restart forgets it.
type MemoryChangeLog struct {
	max       int
	retention time.Duration
	now       func() time.Time

	mu    sync.Mutex
	start time.Time
	// changes are oldest first.
	changes []Change
}

// NewMemoryChangeLog keeps at most max changes, none older than
// retention (by now, time.Now when nil).
func NewMemoryChangeLog(max int, retention time.Duration, now func() time.Time) *MemoryChangeLog {
	if now == nil {
		now = time.Now
	}
	return &MemoryChangeLog{max: max, retention: retention, now: now}
}

// Begin notes the start of the first sync.
func (l *MemoryChangeLog) Begin(_ context.Context, t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() {
		l.start = t
	}
	return nil
}

// Append records changes, dropping the oldest beyond the bounds.
func (l *MemoryChangeLog) Append(_ context.Context, changes []Change) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, changes...)
	drop := max(0, len(l.changes)-l.max)
	cut := l.now().Add(-l.retention)
	for drop < len(l.changes) && l.changes[drop].At.Before(cut) {
		drop++
	}
	if drop > 0 {
		l.changes = append([]Change(nil), l.changes[drop:]...)
	}
	return nil
}

// Range yields the changes since a time, newest first.
func (l *MemoryChangeLog) Range(_ context.Context, since time.Time, yield func(Change) bool) error {
	l.mu.Lock()
	var out []Change
	cut := l.now().Add(-l.retention)
	for i := len(l.changes) - 1; i >= 0 && !l.changes[i].At.Before(since) && !l.changes[i].At.Before(cut); i-- {
		out = append(out, l.changes[i])
	}
	l.mu.Unlock()
	for _, c := range out {
		if !yield(c) {
			return nil
		}
	}
	return nil
}

// Horizon reports the start of the first sync; the log is not durable.
func (l *MemoryChangeLog) Horizon(context.Context) (ChangeHorizon, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ChangeHorizon{Start: l.start, Retention: l.retention, MaxChanges: l.max}, nil
}
