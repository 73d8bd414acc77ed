package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard-io/switchyard/dlq"
)

// The dead-letter side of the store: it implements dlq.Store.
var _ dlq.Store = (*Store)(nil)

func toEntries(msgs []redis.XMessage) []dlq.Entry {
	out := make([]dlq.Entry, 0, len(msgs))
	for _, m := range msgs {
		e := dlq.Entry{ID: m.ID}
		if v, ok := m.Values["e"].(string); ok {
			e.Event = []byte(v)
		}
		if v, ok := m.Values["d"].(string); ok {
			e.Letter = []byte(v)
		}
		out = append(out, e)
	}
	return out
}

// ListDLQ returns up to count dead letters of trigger from id start
// (inclusive; "-" for the oldest), oldest first.
func (s *Store) ListDLQ(ctx context.Context, trigger, start string, count int) ([]dlq.Entry, error) {
	msgs, err := s.rdb.XRangeN(ctx, s.keys.Queue(trigger).DLQ, start, "+", int64(count)).Result()
	if err != nil {
		return nil, fmt.Errorf("list dead letters of %s: %w", trigger, err)
	}
	return toEntries(msgs), nil
}

// GetDLQ returns one dead letter or ErrNotFound.
func (s *Store) GetDLQ(ctx context.Context, trigger, id string) (dlq.Entry, error) {
	if !dlq.ValidEntryID(id) {
		return dlq.Entry{}, fmt.Errorf("dead letter %s/%s: %w", trigger, id, ErrNotFound)
	}
	msgs, err := s.rdb.XRangeN(ctx, s.keys.Queue(trigger).DLQ, id, id, 1).Result()
	if err != nil {
		return dlq.Entry{}, err
	}
	if len(msgs) == 0 {
		return dlq.Entry{}, fmt.Errorf("dead letter %s/%s: %w", trigger, id, ErrNotFound)
	}
	return toEntries(msgs)[0], nil
}

// LastDLQID returns the newest entry id of the trigger's DLQ ("" if empty).
func (s *Store) LastDLQID(ctx context.Context, trigger string) (string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.keys.Queue(trigger).DLQ, "+", "-", 1).Result()
	if err != nil || len(msgs) == 0 {
		return "", err
	}
	return msgs[0].ID, nil
}

// Replay moves dead letters back into the same trigger's queue, each move
// atomic. Returns how many were queued and how many ids were not found.
func (s *Store) Replay(ctx context.Context, trigger string, ids []string, now time.Time) (replayed, missing int64, err error) {
	args := make([]any, 0, 1+2*len(ids))
	args = append(args, nowMS(now))
	for _, id := range ids {
		if !dlq.ValidEntryID(id) {
			missing++
			continue
		}
		args = append(args, id, dlq.ReplayedID(trigger, id))
	}
	if len(args) == 1 {
		return 0, missing, nil
	}
	v, err := s.run(ctx, replayScript, s.keys.Queue(trigger).all(), args...).Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("replay %s: %w", trigger, err)
	}
	var gone int64
	if err := replyInts(v, &replayed, &gone); err != nil {
		return 0, 0, fmt.Errorf("replay %s: %w", trigger, err)
	}
	return replayed, missing + gone, nil
}

// ReplayTo moves dead letters of trigger from into trigger to's queue. The
// two triggers' keys live in different hash slots, so the move is two steps:
// queue into to (idempotent per entry), then delete from from. Interrupted
// between the two, running it again queues nothing twice.
func (s *Store) ReplayTo(ctx context.Context, from, to string, ids []string, now time.Time) (replayed, missing int64, err error) {
	return s.ReplayToLanes(ctx, from, to, ids, now, nil)
}

// LaneFunc returns the lane (see LaneName) an event (its bytes) takes in an
// ordered trigger's queue, and whether its dead letter is to block the lane
// (on_dead block).
type LaneFunc func(event []byte) (lane string, block bool)

// ReplayToLanes is ReplayTo into an ordered trigger: with lane not nil, each
// event goes to the end of the lane lane returns for it (the lane the dead
// letter had in from, if any, means nothing in to).
func (s *Store) ReplayToLanes(ctx context.Context, from, to string, ids []string, now time.Time, lane LaneFunc) (replayed, missing int64, err error) {
	var found []dlq.Entry
	for _, id := range ids {
		e, err := s.GetDLQ(ctx, from, id)
		if errors.Is(err, ErrNotFound) {
			missing++
			continue
		}
		if err != nil {
			return replayed, missing, err
		}
		found = append(found, e)
	}
	if len(found) == 0 {
		return 0, missing, nil
	}
	args := make([]any, 0, 1+5*len(found))
	args = append(args, nowMS(now))
	for _, e := range found {
		l, mode := "", "c"
		if lane != nil {
			var block bool
			l, block = lane(e.Event)
			if block {
				mode = "b"
			}
		}
		args = append(args, dlq.ReplayedID(from, e.ID), e.Event, e.Letter, l, mode)
	}
	n, err := s.run(ctx, requeueScript, s.keys.Queue(to).all(), args...).Int64()
	if err != nil {
		return 0, missing, fmt.Errorf("replay %s into %s: %w", from, to, err)
	}
	del := make([]string, len(found))
	for i, e := range found {
		del[i] = e.ID
	}
	if err := s.rdb.XDel(ctx, s.keys.Queue(from).DLQ, del...).Err(); err != nil {
		return n, missing, fmt.Errorf("replay %s into %s: remove replayed entries: %w", from, to, err)
	}
	return int64(len(found)), missing, nil
}

// PurgeDLQ deletes the given dead letters; returns how many existed.
func (s *Store) PurgeDLQ(ctx context.Context, trigger string, ids []string) (int64, error) {
	var valid []string
	for _, id := range ids {
		if dlq.ValidEntryID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return 0, nil
	}
	return s.rdb.XDel(ctx, s.keys.Queue(trigger).DLQ, valid...).Result()
}

// PurgeDLQBefore deletes dead letters that died before t, a bounded number
// per Redis call (see TrimDLQ).
func (s *Store) PurgeDLQBefore(ctx context.Context, trigger string, t time.Time) (int64, error) {
	return s.trimDLQ(ctx, trigger, t, false)
}

// PurgeDLQAll deletes every dead letter of trigger (see purgeAllScript).
func (s *Store) PurgeDLQAll(ctx context.Context, trigger string) (int64, error) {
	return s.run(ctx, s.oom(purgeAllScript), []string{s.keys.Queue(trigger).DLQ}).Int64()
}

// DLQCounts returns the trigger's dead letters held and its counters of
// dead letters added and evicted.
func (s *Store) DLQCounts(ctx context.Context, trigger string) (dlq.Counts, error) {
	qs, err := s.Stats(ctx, trigger)
	if err != nil {
		return dlq.Counts{}, err
	}
	added, _ := strconv.ParseInt(qs.Counters["dead"], 10, 64)
	evicted, _ := strconv.ParseInt(qs.Counters["dlq_evicted"], 10, 64)
	return dlq.Counts{Entries: qs.DeadLetters, Added: added, Evicted: evicted}, nil
}

// RetainDLQs applies retention to many dead-letter queues in rounds: each
// round is one pipeline holding one bounded step of every queue with more
// to do, trimScript (entries older than Before) until a step evicts
// nothing, then capScript (entries beyond MaxEntries) until a step evicts
// less than a chunk. A queue takes at most maxChunksPerCall steps of each
// kind; the sweep calls again a minute later. So many queues cost a round
// trip per round rather than one per queue, and no single script holds
// Redis long.
func (s *Store) RetainDLQs(ctx context.Context, rs []dlq.Retention) ([]dlq.Evicted, error) {
	out := make([]dlq.Evicted, len(rs))
	type state struct {
		capping bool
		steps   int
		minID   string
	}
	st := make([]state, len(rs))
	pending := make([]int, 0, len(rs))
	for i, r := range rs {
		out[i].Trigger = r.Trigger
		switch {
		case !r.Before.IsZero():
			st[i].minID = strconv.FormatInt(r.Before.UnixMilli(), 10)
		case r.MaxEntries > 0:
			st[i].capping = true
		default:
			continue
		}
		pending = append(pending, i)
	}
	for len(pending) > 0 {
		cmds := make([]*redis.Cmd, len(pending))
		_, err := s.pipelined(ctx, func(p redis.Pipeliner) {
			for k, i := range pending {
				keys := s.keys.Queue(rs[i].Trigger).all()
				if st[i].capping {
					cmds[k] = s.oom(capScript).EvalSha(ctx, p, keys, rs[i].MaxEntries)
				} else {
					cmds[k] = s.oom(trimScript).EvalSha(ctx, p, keys, st[i].minID, dlqEvictChunk, 1)
				}
			}
		})
		if ctx.Err() != nil {
			return out, fmt.Errorf("retain dead letters: %w", errors.Join(ctx.Err(), err))
		}
		next := pending[:0]
		for k, i := range pending {
			n, err := cmds[k].Int64()
			if err != nil {
				what := "trim"
				if st[i].capping {
					what = "cap"
				}
				out[i].Err = fmt.Errorf("%s dead letters of %s: %w", what, rs[i].Trigger, err)
				continue
			}
			st[i].steps++
			if st[i].capping {
				out[i].Capped += n
				if n >= dlqEvictChunk && st[i].steps < maxChunksPerCall {
					next = append(next, i)
				}
				continue
			}
			out[i].Aged += n
			if n > 0 && st[i].steps < maxChunksPerCall {
				next = append(next, i)
			} else if rs[i].MaxEntries > 0 {
				st[i] = state{capping: true}
				next = append(next, i)
			}
		}
		pending = next
	}
	return out, nil
}
