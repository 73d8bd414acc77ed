package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// LogGroup is the consumer group that fans the ingest log out to trigger queues.
const LogGroup = "fanout"

// LogRecord is one accepted event on its way to the trigger queues.
type LogRecord struct {
	// ID is the log entry id, set when read back.
	ID string
	// Event is the event (io.cloudevents.v1.CloudEvent bytes).
	Event []byte
	// Triggers names the triggers it was matched to when accepted.
	Triggers []string
	// Due delays its first attempt until then (see Item.Due); zero for
	// none. Stored as the entry's field "d" (unix ms) when set.
	Due time.Time
}

// xaddValues are the log entry's fields for r.
func (r LogRecord) xaddValues() []any {
	if r.Due.IsZero() {
		return []any{"e", r.Event, "t", strings.Join(r.Triggers, ",")}
	}
	return []any{"e", r.Event, "t", strings.Join(r.Triggers, ","), "d", r.Due.UnixMilli()}
}

// AppendLog appends batches of records in one MULTI/EXEC transaction: every
// record is stored or none is. It returns once Redis has them (and, with a
// Durability asking for replicas, once they have them too: a
// *ReplicationError says they did not confirm in time, the records stored).
func (s *Store) AppendLog(ctx context.Context, batches ...[]LogRecord) error {
	key := s.keys.Log()
	counts := map[string]int64{}
	return full(s.acceptTx(ctx, key, func(p redis.Pipeliner) {
		clear(counts)
		for _, b := range batches {
			for _, r := range b {
				p.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: r.xaddValues()})
				for _, t := range r.Triggers {
					counts[t]++
				}
			}
		}
		for t, n := range counts {
			p.HIncrBy(ctx, s.keys.Admitted(), t, n)
		}
	}))
}

// Admitted returns, per trigger, the events accepted but not yet fanned out.
func (s *Store) Admitted(ctx context.Context) (map[string]int64, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.Admitted()).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = toInt64(v)
	}
	return out, nil
}

// EnsureLogGroup creates the fan-out consumer group (and the log) if missing.
// The group starts at the log's beginning: records appended while it was
// missing (Redis came back without its data and a publisher wrote first)
// are fanned out like any other.
func (s *Store) EnsureLogGroup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.keys.Log(), LogGroup, "0").Err()
	if err != nil && (strings.Contains(err.Error(), "BUSYGROUP") || IsFull(err) && s.logGroupExists(ctx)) {
		return nil
	}
	return full(err)
}

// IsNoGroup reports whether err says the log or its consumer group is gone.
func IsNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

// withGroup runs fn and, when the server answers NOGROUP (the log or its
// group is gone: Redis lost its data, or someone deleted them), recreates
// the group and runs fn once more.
func (s *Store) withGroup(ctx context.Context, fn func() error) error {
	err := fn()
	if !IsNoGroup(err) {
		return err
	}
	if gerr := s.EnsureLogGroup(ctx); gerr != nil {
		return errors.Join(err, gerr)
	}
	return fn()
}

// ReadLog reads up to count new records for consumer, waiting up to block.
func (s *Store) ReadLog(ctx context.Context, consumer string, count int, block time.Duration) ([]LogRecord, error) {
	var res []redis.XStream
	err := s.withGroup(ctx, func() (err error) {
		res, err = s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: LogGroup, Consumer: consumer, Streams: []string{s.keys.Log(), ">"}, Count: int64(count), Block: block,
		}).Result()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []LogRecord
	for _, st := range res {
		out = append(out, toRecords(st.Messages)...)
	}
	return out, nil
}

// ClaimStaleLog takes over records another consumer read more than minIdle
// ago without finishing (it crashed). Returns up to count records.
func (s *Store) ClaimStaleLog(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]LogRecord, error) {
	var msgs []redis.XMessage
	err := s.withGroup(ctx, func() (err error) {
		msgs, _, err = s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: s.keys.Log(), Group: LogGroup, Consumer: consumer, MinIdle: minIdle, Start: "0-0", Count: int64(count),
		}).Result()
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	return toRecords(msgs), nil
}

func toRecords(msgs []redis.XMessage) []LogRecord {
	out := make([]LogRecord, 0, len(msgs))
	for _, m := range msgs {
		r := LogRecord{ID: m.ID}
		if v, ok := m.Values["e"].(string); ok {
			r.Event = []byte(v)
		}
		if v, ok := m.Values["t"].(string); ok && v != "" {
			r.Triggers = strings.Split(v, ",")
		}
		if v, ok := m.Values["d"].(string); ok {
			r.Due = msTime(v)
		}
		out = append(out, r)
	}
	return out
}

// AckLog marks records fanned out and deletes them from the log, and takes
// them off the admitted counts, in one script (atomic; it runs when Redis is
// out of memory, since it only frees memory).
func (s *Store) AckLog(ctx context.Context, recs []LogRecord) error {
	if len(recs) == 0 {
		return nil
	}
	ids := make([]string, len(recs))
	counts := map[string]int64{}
	for i, r := range recs {
		ids[i] = r.ID
		for _, t := range r.Triggers {
			counts[t]++
		}
	}
	return s.ackLog(ctx, ids, counts)
}

// LogLength is the number of records not yet fanned out.
func (s *Store) LogLength(ctx context.Context) (int64, error) {
	return s.rdb.XLen(ctx, s.keys.Log()).Result()
}
