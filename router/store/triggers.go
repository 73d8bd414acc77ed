package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// PutMode says what PutTrigger may do.
type PutMode int

// Put modes.
const (
	PutApply  PutMode = iota // create or replace
	PutCreate                // create only (ErrExists otherwise)
	PutUpdate                // replace only (ErrNotFound otherwise)
)

// PutResult describes a stored trigger.
type PutResult struct {
	Trigger *switchyardv1.Trigger
	Created bool
	Changed bool
}

// putScript writes a trigger only if its stored bytes are still ARGV[2]
// ("" meaning absent): a compare-and-set per trigger, so concurrent writes of
// different triggers never conflict. KEYS: triggers hash, revision.
// ARGV: name, expected bytes, new bytes. Returns 1 when written, 0 on a race.
var putScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 1
`)

// PutTrigger stores t (already validated, defaults applied), setting its
// generation and times, and announces the change to every instance. With
// expectedGen > 0 the write applies only if the stored generation matches.
func (s *Store) PutTrigger(ctx context.Context, t *switchyardv1.Trigger, mode PutMode, expectedGen int64) (PutResult, error) {
	key := s.keys.Triggers()
	for range 50 {
		raw, err := s.rdb.HGet(ctx, key, t.GetName()).Bytes()
		var old *switchyardv1.Trigger
		switch {
		case errors.Is(err, redis.Nil):
			raw = nil
		case err != nil:
			return PutResult{}, err
		default:
			old = &switchyardv1.Trigger{}
			if err := proto.Unmarshal(raw, old); err != nil {
				return PutResult{}, fmt.Errorf("stored trigger %q is corrupt: %w", t.GetName(), err)
			}
		}
		switch {
		case mode == PutCreate && old != nil:
			return PutResult{}, fmt.Errorf("trigger %q: %w", t.GetName(), ErrExists)
		case mode == PutUpdate && old == nil:
			return PutResult{}, fmt.Errorf("trigger %q: %w", t.GetName(), ErrNotFound)
		case expectedGen > 0 && (old == nil || old.GetGeneration() != expectedGen):
			return PutResult{}, fmt.Errorf("trigger %q: expected generation %d: %w", t.GetName(), expectedGen, ErrConflict)
		}
		nt := proto.Clone(t).(*switchyardv1.Trigger)
		now := timestamppb.New(time.Now().UTC())
		res := PutResult{Trigger: nt, Changed: true}
		if old != nil {
			nt.Generation, nt.CreateTime, nt.UpdateTime = old.GetGeneration(), old.GetCreateTime(), old.GetUpdateTime()
			if proto.Equal(old, nt) {
				return PutResult{Trigger: old}, nil
			}
			nt.Generation = old.GetGeneration() + 1
			nt.UpdateTime = now
		} else {
			nt.Generation, nt.CreateTime, nt.UpdateTime = 1, now, now
			res.Created = true
		}
		b, err := proto.Marshal(nt)
		if err != nil {
			return PutResult{}, err
		}
		ok, err := s.run(ctx, putScript, []string{key, s.keys.Revision()}, t.GetName(), raw, b).Int()
		if err != nil {
			return PutResult{}, err
		}
		if ok == 1 {
			s.rdb.Publish(ctx, s.keys.ConfigChannel(), t.GetName())
			return res, nil
		}
	}
	return PutResult{}, fmt.Errorf("trigger %q: too much concurrent change, try again", t.GetName())
}

// GetTrigger returns the stored trigger or ErrNotFound.
func (s *Store) GetTrigger(ctx context.Context, name string) (*switchyardv1.Trigger, error) {
	raw, err := s.rdb.HGet(ctx, s.keys.Triggers(), name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("trigger %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	t := &switchyardv1.Trigger{}
	if err := proto.Unmarshal(raw, t); err != nil {
		return nil, fmt.Errorf("stored trigger %q is corrupt: %w", name, err)
	}
	return t, nil
}

// GetTriggers returns the stored triggers of the given names, nil where none
// is stored.
func (s *Store) GetTriggers(ctx context.Context, names []string) ([]*switchyardv1.Trigger, error) {
	if len(names) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.keys.Triggers(), names...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]*switchyardv1.Trigger, len(vals))
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		t := &switchyardv1.Trigger{}
		if err := proto.Unmarshal([]byte(raw), t); err != nil {
			return nil, fmt.Errorf("stored trigger %q is corrupt: %w", names[i], err)
		}
		out[i] = t
	}
	return out, nil
}

// ListTriggers returns every stored trigger sorted by name, and the revision
// they were read at.
func (s *Store) ListTriggers(ctx context.Context) ([]*switchyardv1.Trigger, int64, error) {
	var all *redis.MapStringStringCmd
	var rev *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, s.keys.Triggers())
		rev = p.Get(ctx, s.keys.Revision())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, err
	}
	out := make([]*switchyardv1.Trigger, 0, len(all.Val()))
	for name, raw := range all.Val() {
		t := &switchyardv1.Trigger{}
		if err := proto.Unmarshal([]byte(raw), t); err != nil {
			return nil, 0, fmt.Errorf("stored trigger %q is corrupt: %w", name, err)
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	r, _ := rev.Int64()
	return out, r, nil
}

// Revision returns the trigger revision: it changes on every trigger change.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	r, err := s.rdb.Get(ctx, s.keys.Revision()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return r, err
}

// DeleteTrigger removes a trigger. Unless purge is set its queue stays, and
// resumes if a trigger of that name is created again; kept reports how many
// events it holds.
func (s *Store) DeleteTrigger(ctx context.Context, name string, purge bool) (kept int64, err error) {
	n, err := s.rdb.HDel(ctx, s.keys.Triggers(), name).Result()
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("trigger %q: %w", name, ErrNotFound)
	}
	s.rdb.Incr(ctx, s.keys.Revision())
	s.rdb.Publish(ctx, s.keys.ConfigChannel(), name)
	q := s.keys.Queue(name)
	if purge {
		return 0, s.rdb.Del(ctx, q.all()...).Err()
	}
	return s.rdb.HLen(ctx, q.Events).Result()
}

// TriggersExist reports, for each name, whether a trigger of that name is stored.
func (s *Store) TriggersExist(ctx context.Context, names []string) ([]bool, error) {
	vals, err := s.rdb.HMGet(ctx, s.keys.Triggers(), names...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(vals))
	for i, v := range vals {
		out[i] = v != nil
	}
	return out, nil
}
