package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds what only pull triggers need: handing an attempt back
// without counting it, extending leases, and the registry of connected
// consumers. Claims, acknowledgements, retries and dead letters are the
// queue's own scripts (scripts.go): a pull consumer's credits are claim
// slots, and its answers are recorded exactly as a function's.

// Consumers is a pull trigger's registry of connected consumers: a ZSET of
// consumer id → when its entry expires (unix ms). Each consumer renews its
// entry while its stream is open; an instance that dies leaves entries that
// expire by themselves, and the key itself expires once no consumer renews
// it (so it needs no purge).
func (k Keys) Consumers(trigger string) string { return k.p + ":{t:" + trigger + "}:consumers" }

// releaseScript hands attempts back without counting them: ARGV[2k],
// ARGV[2k+1] = id, attempt. An attempt still current and leased loses its
// lease, the event's attempt number goes back to the one before (so the next
// claim gives the same number again) and the event goes back to the head of
// the ready list, in the order given. An attempt no longer current (its lease
// was lost and the event handed out again or rescheduled) is left alone.
// Returns the number released.
var releaseScript = redis.NewScript(`
local back = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[3], id) == ARGV[i+1] and redis.call('ZREM', KEYS[5], id) == 1 then
    local prev = tonumber(ARGV[i+1]) - 1
    if prev > 0 then redis.call('HSET', KEYS[3], id, prev) else redis.call('HDEL', KEYS[3], id) end
    back[#back+1] = id
  end
end
for j = #back, 1, -1 do redis.call('LPUSH', KEYS[1], back[j]) end
if #back > 0 then redis.call('HINCRBY', KEYS[7], 'released', #back) end
return #back
`)

// extendScript moves the lease deadline of attempts still current and leased:
// ARGV[2k], ARGV[2k+1], ARGV[2k+2] = id, attempt, new deadline (unix ms).
// Returns one 1 (extended) or 0 (lease lost) per attempt, in order.
var extendScript = redis.NewScript(`
local out = {}
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[3], id) == ARGV[i+1] and redis.call('ZSCORE', KEYS[5], id) then
    redis.call('ZADD', KEYS[5], 'XX', ARGV[i+2], id)
    out[#out+1] = 1
  else
    out[#out+1] = 0
  end
end
return out
`)

// Release hands attempts back without counting them (see releaseScript).
// It runs in a transaction: go-redis never resends one after a lost reply,
// and a resent release could hand back the next consumer's attempt of the
// same number.
func (s *Store) Release(ctx context.Context, trigger string, refs []AttemptRef) (int64, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	v, err := s.runOnce(ctx, releaseScript, s.keys.Queue(trigger).all(), ackArgs(refs)...).Int64()
	if err != nil {
		return 0, fmt.Errorf("release %s: %w", trigger, err)
	}
	return v, nil
}

// Extension is one lease to extend.
type Extension struct {
	AttemptRef
	// Until is the lease's new deadline.
	Until time.Time
}

// ExtendLeases moves the deadlines of leases still held by the attempts
// given; ok[i] reports whether exts[i]'s lease was extended (false: the
// attempt lost its lease).
func (s *Store) ExtendLeases(ctx context.Context, trigger string, exts []Extension) (ok []bool, err error) {
	if len(exts) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+3*len(exts))
	args = append(args, 0)
	for _, e := range exts {
		args = append(args, e.ID, e.Attempt, nowMS(e.Until))
	}
	v, err := s.run(ctx, extendScript, s.keys.Queue(trigger).all(), args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("extend leases %s: %w", trigger, err)
	}
	if len(v) != len(exts) {
		return nil, fmt.Errorf("extend leases %s: %w: %d elements for %d leases", trigger, errReplyShape, len(v), len(exts))
	}
	ok = make([]bool, len(v))
	for i, x := range v {
		ok[i] = toInt64(x) == 1
	}
	return ok, nil
}

// consumerKeyTTL keeps a consumer registry for this long past its latest
// renewal, so an abandoned one disappears.
const consumerKeyTTL = time.Minute

// RenewConsumers records that the consumers ids of trigger are connected
// until until, and forgets the entries expired at now, in one pipeline.
func (s *Store) RenewConsumers(ctx context.Context, trigger string, ids []string, now, until time.Time) error {
	key := s.keys.Consumers(trigger)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if len(ids) > 0 {
			zs := make([]redis.Z, len(ids))
			for i, id := range ids {
				zs[i] = redis.Z{Score: float64(nowMS(until)), Member: id}
			}
			p.ZAdd(ctx, key, zs...)
		}
		p.ZRemRangeByScore(ctx, key, "-inf", fmt.Sprint(nowMS(now)))
		p.PExpire(ctx, key, until.Sub(now)+consumerKeyTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("renew consumers %s: %w", trigger, err)
	}
	return nil
}

// RemoveConsumer forgets a consumer that disconnected.
func (s *Store) RemoveConsumer(ctx context.Context, trigger, id string) error {
	return s.rdb.ZRem(ctx, s.keys.Consumers(trigger), id).Err()
}

// CountConsumers counts the consumers of trigger whose entry has not
// expired at now.
func (s *Store) CountConsumers(ctx context.Context, trigger string, now time.Time) (int64, error) {
	n, err := s.rdb.ZCount(ctx, s.keys.Consumers(trigger), fmt.Sprint(nowMS(now)+1), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("count consumers %s: %w", trigger, err)
	}
	return n, nil
}

// runOnce runs a script in a MULTI/EXEC (never resent by go-redis), loading
// it first when the server lost its script cache.
func (s *Store) runOnce(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	var c *redis.Cmd
	exec := func() {
		_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			c = sc.EvalSha(ctx, p, keys, args...)
			return nil
		})
	}
	exec()
	if isNoScript(c.Err()) {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			c.SetErr(err)
			return c
		}
		exec()
	}
	return c
}
