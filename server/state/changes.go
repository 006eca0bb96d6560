package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/redis/go-redis/v9"
)

// RedisChanges is the catalog mirror's change log in Redis
// (catalog.ChangeLog): one stream, capped at a number of entries and
// trimmed by age, so that the feed outlives restarts and every replica
// reads the same one. Each replica's mirror finds the same changes; a
// change is kept once, by its key (entity uid and etags before and
// after), remembered for a day (dedupWindow): replicas find a change
// within a sync interval of each other, and the keys stay bounded by a
// day's changes.
//
// The stream holds, for each change, the entity as it was before, so
// that whether a caller could see it, and whether the change shows in
// its view, is decided when the caller asks. It is stored redacted (the
// scrub function, the server's redactor): Redis holds no secret from the
// catalog. A change to a secret alone then shows to nobody, as it does
// in memory (every caller's view has the same redaction marker).
type RedisChanges struct {
	rdb       redis.UniversalClient
	stream    string
	start     string
	seen      string
	max       int
	retention time.Duration
	now       func() time.Time
	scrub     func([]byte) ([]byte, error)
}

// NewRedisChanges returns the change log under prefix, keeping at most
// max changes, none older than retention (by now, time.Now when nil),
// each entity before a change passed through scrub (required: the
// redactor) before it is stored.
func NewRedisChanges(rdb redis.UniversalClient, prefix string, max int, retention time.Duration, now func() time.Time,
	scrub func([]byte) ([]byte, error)) *RedisChanges {
	if now == nil {
		now = time.Now
	}
	// One hash tag: every key of the log lives in one slot.
	p := prefix + "{changes}:"
	return &RedisChanges{rdb: rdb, stream: p + "stream", start: p + "start", seen: p + "seen:", max: max, retention: retention, now: now, scrub: scrub}
}

// appendScript adds each change whose key it has not seen within the
// retention window, then trims the stream by count and by age.
// KEYS[1] stream; ARGV: max, min id, ttl seconds, seen prefix, then
// key, op, ref, at, before for each change.
var appendScript = redis.NewScript(`
local added = 0
for i = 5, #ARGV, 5 do
  if redis.call('SET', ARGV[4] .. ARGV[i], '1', 'NX', 'EX', ARGV[3]) then
    redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'op', ARGV[i+1], 'ref', ARGV[i+2], 'at', ARGV[i+3], 'before', ARGV[i+4])
    added = added + 1
  end
end
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
return added
`)

// dedupWindow is how long a change's key is remembered.
const dedupWindow = 24 * time.Hour

// appendBatch bounds the changes one script call carries.
const appendBatch = 100

// Begin records the start of the first sync any replica made, unless an
// earlier one is kept; when one is, it marks this mirror's start in the
// log (catalog.ChangeRestart): changes made before t that no running
// server saw are not in it, and an answer covering t says so.
func (c *RedisChanges) Begin(ctx context.Context, t time.Time) error {
	ms := strconv.FormatInt(t.UnixMilli(), 10)
	first, err := c.rdb.SetNX(ctx, c.start, ms, 0).Result()
	if err != nil {
		return fmt.Errorf("%w: change log: %w", ErrUnavailable, err)
	}
	if first {
		return nil
	}
	return c.Append(ctx, []catalog.Change{{Op: catalog.ChangeRestart, Ref: "-", At: t}})
}

// Append records changes, each once.
func (c *RedisChanges) Append(ctx context.Context, changes []catalog.Change) error {
	ttl := strconv.FormatInt(int64(min(c.retention, dedupWindow)/time.Second)+1, 10)
	minID := strconv.FormatInt(c.now().Add(-c.retention).UnixMilli(), 10)
	for i := 0; i < len(changes); i += appendBatch {
		batch := changes[i:min(i+appendBatch, len(changes))]
		argv := make([]any, 0, 4+5*len(batch))
		argv = append(argv, c.max, minID, ttl, c.seen)
		for _, ch := range batch {
			key := ch.Key
			if key == "" {
				key = ch.Op + ":" + ch.Ref + ":" + strconv.FormatInt(ch.At.UnixNano(), 10)
			}
			var before []byte
			if len(ch.Before) > 0 {
				if c.scrub == nil {
					return errors.New("state: change log: no redactor for the entities kept")
				}
				b, err := c.scrub(ch.Before)
				if err != nil {
					// Fail closed: nothing unredacted is stored.
					return fmt.Errorf("state: change log: redact: %w", err)
				}
				before = b
			}
			argv = append(argv, key, ch.Op, ch.Ref, strconv.FormatInt(ch.At.UnixNano(), 10), string(before))
		}
		if err := appendScript.Run(ctx, c.rdb, []string{c.stream}, argv...).Err(); err != nil {
			return fmt.Errorf("%w: change log: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// rangePage is how many entries one read takes.
const rangePage = 100

// Range yields the changes since a time, newest first. An entry's id is
// Redis's clock when it was added, after the sync that found it began:
// reading stops at the first entry added before since.
func (c *RedisChanges) Range(ctx context.Context, since time.Time, yield func(catalog.Change) bool) error {
	end := "+"
	cut := c.now().Add(-c.retention)
	floor := "-"
	if ms := max(since.UnixMilli(), cut.UnixMilli()); ms > 0 {
		floor = strconv.FormatInt(ms, 10)
	}
	for {
		msgs, err := c.rdb.XRevRangeN(ctx, c.stream, end, floor, rangePage).Result()
		if err != nil {
			return fmt.Errorf("%w: change log: %w", ErrUnavailable, err)
		}
		for _, m := range msgs {
			ch, err := decodeChange(m.Values)
			if err != nil {
				return err
			}
			if ch.At.Before(since) || ch.At.Before(cut) {
				continue
			}
			if !yield(ch) {
				return nil
			}
		}
		if len(msgs) < rangePage {
			return nil
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
}

func decodeChange(v map[string]any) (catalog.Change, error) {
	s := func(k string) string { x, _ := v[k].(string); return x }
	at, err := strconv.ParseInt(s("at"), 10, 64)
	if err != nil || s("op") == "" || s("ref") == "" {
		return catalog.Change{}, errors.New("state: change log: a malformed entry")
	}
	ch := catalog.Change{Op: s("op"), Ref: s("ref"), At: time.Unix(0, at).UTC()}
	if b := s("before"); b != "" {
		ch.Before = []byte(b)
	}
	return ch, nil
}

// Horizon reports the start of the first sync kept; the log is durable.
func (c *RedisChanges) Horizon(ctx context.Context) (catalog.ChangeHorizon, error) {
	h := catalog.ChangeHorizon{Retention: c.retention, MaxChanges: c.max, Durable: true}
	v, err := c.rdb.Get(ctx, c.start).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return h, nil
	case err != nil:
		return h, fmt.Errorf("%w: change log: %w", ErrUnavailable, err)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return h, errors.New("state: change log: a malformed start")
	}
	h.Start = time.UnixMilli(ms).UTC()
	return h, nil
}
