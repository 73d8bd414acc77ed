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
}

// AppendLog appends batches of records in one MULTI/EXEC transaction: every
// record is stored or none is. It returns once Redis has them.
func (s *Store) AppendLog(ctx context.Context, batches ...[]LogRecord) error {
	key := s.keys.Log()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range batches {
			for _, r := range b {
				p.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"e", r.Event, "t", strings.Join(r.Triggers, ",")}})
			}
		}
		return nil
	})
	return err
}

// EnsureLogGroup creates the fan-out consumer group (and the log) if missing.
func (s *Store) EnsureLogGroup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.keys.Log(), LogGroup, "0").Err()
	if err != nil && strings.Contains(err.Error(), "BUSYGROUP") {
		return nil
	}
	return err
}

// ReadLog reads up to count new records for consumer, waiting up to block.
func (s *Store) ReadLog(ctx context.Context, consumer string, count int, block time.Duration) ([]LogRecord, error) {
	res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: LogGroup, Consumer: consumer, Streams: []string{s.keys.Log(), ">"}, Count: int64(count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		if strings.Contains(err.Error(), "NOGROUP") {
			if gerr := s.EnsureLogGroup(ctx); gerr != nil {
				return nil, errors.Join(err, gerr)
			}
			return nil, nil
		}
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
	msgs, _, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: s.keys.Log(), Group: LogGroup, Consumer: consumer, MinIdle: minIdle, Start: "0-0", Count: int64(count),
	}).Result()
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
		out = append(out, r)
	}
	return out
}

// AckLog marks records fanned out and deletes them from the log.
func (s *Store) AckLog(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	key := s.keys.Log()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, key, LogGroup, ids...)
		p.XDel(ctx, key, ids...)
		return nil
	})
	return err
}

// LogLength is the number of records not yet fanned out.
func (s *Store) LogLength(ctx context.Context) (int64, error) {
	return s.rdb.XLen(ctx, s.keys.Log()).Result()
}
