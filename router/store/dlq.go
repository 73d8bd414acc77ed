package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DLQEntry is one dead letter as stored.
type DLQEntry struct {
	// ID is the stream entry id ("<unix ms>-<seq>"): its time is the dead time.
	ID string
	// Event is the original event (io.cloudevents.v1.CloudEvent bytes).
	Event []byte
	// Letter is its story (switchyard.v1.DeadLetter without the event).
	Letter []byte
}

func toEntries(msgs []redis.XMessage) []DLQEntry {
	out := make([]DLQEntry, 0, len(msgs))
	for _, m := range msgs {
		e := DLQEntry{ID: m.ID}
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

// NextID returns the smallest stream id after id (for exclusive paging).
func NextID(id string) string {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return id
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return id
	}
	return ms + "-" + strconv.FormatUint(n+1, 10)
}

// ValidEntryID reports whether id has the form of a stream id.
func ValidEntryID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, e1 := strconv.ParseUint(ms, 10, 64)
	_, e2 := strconv.ParseUint(seq, 10, 64)
	return e1 == nil && e2 == nil
}

// ListDLQ returns up to count dead letters of trigger from id start
// (inclusive; "-" for the oldest), oldest first.
func (s *Store) ListDLQ(ctx context.Context, trigger, start string, count int) ([]DLQEntry, error) {
	msgs, err := s.rdb.XRangeN(ctx, s.keys.Queue(trigger).DLQ, start, "+", int64(count)).Result()
	if err != nil {
		return nil, fmt.Errorf("list dead letters of %s: %w", trigger, err)
	}
	return toEntries(msgs), nil
}

// GetDLQ returns one dead letter or ErrNotFound.
func (s *Store) GetDLQ(ctx context.Context, trigger, id string) (DLQEntry, error) {
	if !ValidEntryID(id) {
		return DLQEntry{}, fmt.Errorf("dead letter %s/%s: %w", trigger, id, ErrNotFound)
	}
	msgs, err := s.rdb.XRangeN(ctx, s.keys.Queue(trigger).DLQ, id, id, 1).Result()
	if err != nil {
		return DLQEntry{}, err
	}
	if len(msgs) == 0 {
		return DLQEntry{}, fmt.Errorf("dead letter %s/%s: %w", trigger, id, ErrNotFound)
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

// ReplayedID is the queue id a replayed dead letter gets: derived from the
// entry id, so replaying the same entry twice queues it once.
func ReplayedID(trigger, entryID string) string { return "r" + entryID + "@" + trigger }

// Replay moves dead letters back into the same trigger's queue, each move
// atomic. Returns how many were queued and how many ids were not found.
func (s *Store) Replay(ctx context.Context, trigger string, ids []string, now time.Time) (replayed, missing int64, err error) {
	args := make([]any, 0, 1+2*len(ids))
	args = append(args, nowMS(now))
	for _, id := range ids {
		if !ValidEntryID(id) {
			missing++
			continue
		}
		args = append(args, id, ReplayedID(trigger, id))
	}
	if len(args) == 1 {
		return 0, missing, nil
	}
	v, err := s.run(ctx, replayScript, s.keys.Queue(trigger).all(), args...).Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("replay %s: %w", trigger, err)
	}
	return toInt64(v[0]), missing + toInt64(v[1]), nil
}

// ReplayTo moves dead letters of trigger from into trigger to's queue. The
// two triggers' keys live in different hash slots, so the move is two steps:
// queue into to (idempotent per entry), then delete from from. Interrupted
// between the two, running it again queues nothing twice.
func (s *Store) ReplayTo(ctx context.Context, from, to string, ids []string, now time.Time) (replayed, missing int64, err error) {
	var found []DLQEntry
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
	args := make([]any, 0, 1+3*len(found))
	args = append(args, nowMS(now))
	for _, e := range found {
		args = append(args, ReplayedID(from, e.ID), e.Event, e.Letter)
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
		if ValidEntryID(id) {
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
