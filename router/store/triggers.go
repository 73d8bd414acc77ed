package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

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
	// Change is the version the write made (the current one when nothing
	// changed) and the registry of instances at that moment: the instances to
	// wait for before the change is live everywhere.
	Change Change
}

// Change is a version of the triggers and the instances registered when it
// was made (see Router's trigger changes).
type Change struct {
	Version Version
	Members Members
}

// changeLua is the end of every script that changes a trigger: increment the
// revision and publish the change notice in the same step (so subscribers
// hear the revisions in order), and return the version and the registry.
// KEYS[2] revision, [4] members, [5] served; channel and trigger name given.
const changeLua = membersLua + `
local function changed(epoch, channel, name)
  local rev = redis.call('INCR', KEYS[2])
  redis.call('PUBLISH', channel, 'c ' .. epoch .. ' ' .. rev .. ' ' .. name)
  return members(KEYS[4], KEYS[5], {1, epoch, rev})
end
`

// putScript writes a trigger only if its stored bytes are still ARGV[2]
// ("" meaning absent): a compare-and-set per trigger, so concurrent writes of
// different triggers never conflict. It refuses to write when the store has
// no epoch (or no revision: see Keys.Epoch): the store lost its data and the
// instances have not restored the triggers yet (a write now would found an
// epoch without them).
// KEYS: triggers, revision, epoch, members, served.
// ARGV: name, expected bytes, new bytes, config channel.
// Returns {1, epoch, rev, registry…} when written, {0} on a race, {-1}
// without an epoch.
var putScript = redis.NewScript(changeLua + `
local epoch = redis.call('GET', KEYS[3])
if not epoch or redis.call('EXISTS', KEYS[2]) == 0 then return {-1} end
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return {0} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return changed(epoch, ARGV[4], ARGV[1])
`)

// deleteScript removes a trigger. KEYS as putScript. ARGV: name, config
// channel. Returns as putScript, {0} meaning not found.
var deleteScript = redis.NewScript(changeLua + `
local epoch = redis.call('GET', KEYS[3])
if not epoch or redis.call('EXISTS', KEYS[2]) == 0 then return {-1} end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return {0} end
return changed(epoch, ARGV[2], ARGV[1])
`)

func (s *Store) changeKeys() []string {
	return []string{s.keys.Triggers(), s.keys.Revision(), s.keys.Epoch(), s.keys.Members(), s.keys.Served()}
}

// parseChange reads a changeLua reply; code is its first element.
func parseChange(v []any) (code int64, c Change, err error) {
	if len(v) == 0 {
		return 0, Change{}, fmt.Errorf("trigger change: %w: empty", errReplyShape)
	}
	if code = toInt64(v[0]); code != 1 {
		return code, Change{}, nil
	}
	if len(v) < 3 {
		return 0, Change{}, fmt.Errorf("trigger change: %w: %d elements", errReplyShape, len(v))
	}
	c.Version = Version{Epoch: toString(v[1]), Rev: toInt64(v[2])}
	c.Members, err = parseMembers(v[3:])
	return code, c, err
}

// PutTrigger stores t (already validated, defaults applied), setting its
// generation and times, and announces the change to every instance. With
// expectedGen > 0 the write applies only if the stored generation matches.
// ErrNoEpoch means the store lost its data and the triggers are not restored
// yet: retry shortly.
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
		res, err := PlanPut(old, t, mode, expectedGen, time.Now())
		if err != nil {
			return PutResult{}, err
		}
		if !res.Changed {
			// Nothing to write; the caller may still wait for the
			// current version, which holds this trigger as it is.
			v, m, err := s.SyncPoint(ctx)
			if err != nil {
				return PutResult{}, err
			}
			if v.Epoch == "" {
				return PutResult{}, ErrNoEpoch
			}
			res.Change = Change{Version: v, Members: m}
			return res, nil
		}
		b, err := proto.Marshal(res.Trigger)
		if err != nil {
			return PutResult{}, err
		}
		v, err := s.run(ctx, putScript, s.changeKeys(), t.GetName(), raw, b, s.keys.ConfigChannel()).Slice()
		if err != nil {
			return PutResult{}, err
		}
		code, c, err := parseChange(v)
		switch {
		case err != nil:
			return PutResult{}, err
		case code == -1:
			return PutResult{}, ErrNoEpoch
		case code == 1:
			res.Change = c
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
	return decodeTriggers(names, vals)
}

func decodeTriggers(names []string, vals []any) ([]*switchyardv1.Trigger, error) {
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

// ListTriggers returns every stored trigger sorted by name, and the version
// they were read at (Epoch "" when the store has none).
func (s *Store) ListTriggers(ctx context.Context) ([]*switchyardv1.Trigger, Version, error) {
	var all *redis.MapStringStringCmd
	var ver *redis.SliceCmd
	_, err := s.multi(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, s.keys.Triggers())
		ver = p.MGet(ctx, s.keys.Epoch(), s.keys.Revision())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, Version{}, err
	}
	out := make([]*switchyardv1.Trigger, 0, len(all.Val()))
	for name, raw := range all.Val() {
		t := &switchyardv1.Trigger{}
		if err := proto.Unmarshal([]byte(raw), t); err != nil {
			return nil, Version{}, fmt.Errorf("stored trigger %q is corrupt: %w", name, err)
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, versionOf(ver.Val()), nil
}

// GetTriggersAt returns the stored triggers of the given names (nil where
// none is stored) and the version they were read at.
func (s *Store) GetTriggersAt(ctx context.Context, names []string) ([]*switchyardv1.Trigger, Version, error) {
	var vals, ver *redis.SliceCmd
	_, err := s.multi(ctx, func(p redis.Pipeliner) error {
		vals = p.HMGet(ctx, s.keys.Triggers(), names...)
		ver = p.MGet(ctx, s.keys.Epoch(), s.keys.Revision())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, Version{}, err
	}
	out, err := decodeTriggers(names, vals.Val())
	return out, versionOf(ver.Val()), err
}

// CurrentVersion returns the version of the triggers (Epoch "" when the store
// has none: it lost its data, or no instance started on it yet).
func (s *Store) CurrentVersion(ctx context.Context) (Version, error) {
	v, err := s.rdb.MGet(ctx, s.keys.Epoch(), s.keys.Revision()).Result()
	if err != nil {
		return Version{}, err
	}
	return versionOf(v), nil
}

// versionOf reads MGET epoch revision. An epoch without its revision
// counts as none (see Keys.Epoch).
func versionOf(v []any) Version {
	if len(v) != 2 || v[0] == nil || v[1] == nil {
		return Version{}
	}
	return Version{Epoch: toString(v[0]), Rev: toInt64(v[1])}
}

// restoreScript founds a new epoch when the store has none (or has lost the
// revision, without which revisions of the epoch would be counted again
// from 0 and no longer tell older from newer), writing the
// given triggers where none of that name is stored (every instance that
// noticed the loss may call it at once: the first one founds the epoch and
// the others find it). KEYS: epoch, triggers, revision. ARGV: new epoch,
// config channel, then name and bytes of each trigger. Returns {1, epoch,
// triggers written} when it founded the epoch, {0, epoch} otherwise.
var restoreScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and redis.call('EXISTS', KEYS[3]) == 1 then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[1])
local n = 0
for i = 3, #ARGV, 2 do n = n + redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i+1]) end
local rev = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], 'c ' .. ARGV[1] .. ' ' .. rev .. ' ')
return {1, ARGV[1], n}
`)

// NewEpoch returns a fresh random epoch id.
func NewEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Restore founds a new epoch if the store has none, with triggers (the
// caller's last view of them, generations and times kept) written where
// the store holds no trigger of that name. The store has no epoch on its
// first start, and after it lost its data (Redis restarted without
// persistence): the epoch key is the marker that tells the two apart from
// an operator deleting triggers. founded reports whether this call founded
// it, written how many triggers it wrote.
func (s *Store) Restore(ctx context.Context, triggers []*switchyardv1.Trigger) (epoch string, founded bool, written int64, err error) {
	args := make([]any, 0, 2+2*len(triggers))
	args = append(args, NewEpoch(), s.keys.ConfigChannel())
	for _, t := range triggers {
		b, err := proto.Marshal(t)
		if err != nil {
			return "", false, 0, err
		}
		args = append(args, t.GetName(), b)
	}
	v, err := s.run(ctx, restoreScript, []string{s.keys.Epoch(), s.keys.Triggers(), s.keys.Revision()}, args...).Slice()
	if err != nil {
		return "", false, 0, fmt.Errorf("restore triggers: %w", err)
	}
	if len(v) < 2 {
		return "", false, 0, fmt.Errorf("restore triggers: %w: %d elements", errReplyShape, len(v))
	}
	if toInt64(v[0]) == 1 && len(v) == 3 {
		return toString(v[1]), true, toInt64(v[2]), nil
	}
	return toString(v[1]), false, 0, nil
}

// DeleteTrigger removes a trigger. Unless purge is set its queue stays, and
// resumes if a trigger of that name is created again; kept reports how many
// events it holds. ErrNoEpoch as PutTrigger.
func (s *Store) DeleteTrigger(ctx context.Context, name string, purge bool) (kept int64, c Change, err error) {
	v, err := s.run(ctx, deleteScript, s.changeKeys(), name, s.keys.ConfigChannel()).Slice()
	if err != nil {
		return 0, Change{}, err
	}
	code, c, err := parseChange(v)
	switch {
	case err != nil:
		return 0, Change{}, err
	case code == -1:
		return 0, Change{}, ErrNoEpoch
	case code == 0:
		return 0, Change{}, fmt.Errorf("trigger %q: %w", name, ErrNotFound)
	}
	q := s.keys.Queue(name)
	if purge {
		return 0, c, s.rdb.Del(ctx, append(append(q.all(), q.Dedup, q.After), q.laneKeys()...)...).Err()
	}
	kept, err = s.rdb.HLen(ctx, q.Events).Result()
	return kept, c, err
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
