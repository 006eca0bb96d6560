package state

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/redis/go-redis/v9"
)

// scrub stands for the redactor: it replaces a known secret.
func scrub(b []byte) ([]byte, error) {
	return []byte(strings.ReplaceAll(string(b), "hunter2", "[REDACTED:test]")), nil
}

func rangeAll(t *testing.T, l catalog.ChangeLog, since time.Time) []string {
	t.Helper()
	var out []string
	if err := l.Range(context.Background(), since, func(c catalog.Change) bool {
		out = append(out, fmt.Sprintf("%s %s %s", c.Op, c.Ref, c.Before))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRedisChanges: on a real redis-server the log keeps each change once
// (two replicas append the same), stores the entity before redacted, reads newest first from a time, keeps
// the first start, outlives a new client (a restart), is capped by count,
// and fails with ErrUnavailable while Redis is down.
func TestRedisChanges(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	now := time.Now()
	open := func(max int) *RedisChanges {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		return NewRedisChanges(rdb, "t:", max, 30*24*time.Hour, func() time.Time { return now }, scrub)
	}
	a, b := open(5), open(5)
	if h, err := a.Horizon(ctx); err != nil || !h.Start.IsZero() || !h.Durable {
		t.Fatalf("empty horizon %+v %v", h, err)
	}
	t0 := now.Add(-time.Hour).Truncate(time.Millisecond)
	if err := a.Begin(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if err := b.Begin(ctx, now); err != nil {
		t.Fatal(err)
	}
	sync1 := []catalog.Change{
		{Op: catalog.ChangeChanged, Ref: "component:default/b", At: now.Add(-time.Minute), Before: []byte(`{"kind":"Component","password":"hunter2"}`), Key: "uid-b:1>2"},
		{Op: catalog.ChangeAdded, Ref: "component:default/a", At: now.Add(-time.Minute), Key: "uid-a:>1"},
	}
	for _, l := range []*RedisChanges{a, b} { // two replicas find the same changes
		if err := l.Append(ctx, sync1); err != nil {
			t.Fatal(err)
		}
	}
	sync2 := []catalog.Change{{Op: catalog.ChangeRemoved, Ref: "component:default/a", At: now, Before: []byte(`{}`), Key: "uid-a:1>"}}
	if err := a.Append(ctx, sync2); err != nil {
		t.Fatal(err)
	}
	// One sync's changes, appended in reverse ref order (as the mirror
	// does), read newest first in ref order.
	// The entity before is stored redacted.
	// b began while a's start was kept: its start is marked (changes
	// before it that no running server saw are not in the log).
	want := `removed component:default/a {}|added component:default/a |changed component:default/b {"kind":"Component","password":"[REDACTED:test]"}|restart - `
	if got := strings.Join(rangeAll(t, b, time.Time{}), "|"); got != want {
		t.Errorf("changes = %s, want %s", got, want)
	}
	if got := rangeAll(t, b, now.Add(-30*time.Second)); len(got) != 2 {
		t.Errorf("since 30s ago: %v", got)
	}
	// A restart: a new client on the same Redis reads the same log.
	c := open(5)
	if h, err := c.Horizon(ctx); err != nil || !h.Start.Equal(t0) || !h.Durable || h.MaxChanges != 5 {
		t.Errorf("horizon after restart %+v %v, want start %s", h, err, t0)
	}
	if got := rangeAll(t, c, time.Time{}); len(got) != 4 {
		t.Errorf("after restart: %v", got)
	}
	// Capped by count: the oldest go first.
	var many []catalog.Change
	for i := range 8 {
		many = append(many, catalog.Change{Op: catalog.ChangeAdded, Ref: fmt.Sprintf("component:default/n%d", i), At: now, Key: fmt.Sprintf("n%d", i)})
	}
	if err := c.Append(ctx, many); err != nil {
		t.Fatal(err)
	}
	got := rangeAll(t, c, time.Time{})
	if len(got) != 5 || !strings.HasPrefix(got[0], "added component:default/n7") {
		t.Errorf("capped log: %v", got)
	}
	srv.Stop()
	if err := c.Range(ctx, time.Time{}, func(catalog.Change) bool { return true }); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("Range with Redis down: %v", err)
	}
	if _, err := c.Horizon(ctx); err == nil {
		t.Error("Horizon with Redis down: no error")
	}
}
