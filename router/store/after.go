package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Delayed events (a publisher's deliverafter) reuse the retry schedule: an
// event queued with a due time goes into the trigger's delayed ZSET instead
// of its ready list, scored with that time, and the claim script moves it to
// the head of the ready list once due, as it does a scheduled retry. So a
// delayed event waits in Redis, counts as held (max_queue, UNDELIVERED), and
// is woken for by the NextDue every claim and peek already return.
//
// QueueKeys.After indexes the same ids with the same scores, for one
// purpose: telling the events that wait for their publisher's time from
// scheduled retries in the stats (ZCOUNT after (now, +inf)). It is pruned of
// past times by each delayed write and expires a minute after its latest due
// time, so it never outlives what it counts; the delayed ZSET stays the
// authority.

// afterIndexLua defines after_index(key, now, pairs, last): it adds pairs
// (due, id, due, id…) to the after index key, drops the times already past
// and keeps the key until a minute after last, the latest due time added.
// enqueueAfterLua calls it once per batch; an ordered trigger's delayed
// event, once it heads its lane (lane_push, lanes.go), alone.
const afterIndexLua = `
local function after_index(key, now, pairs, last)
  for i = 1, #pairs, 4000 do
    redis.call('ZADD', key, unpack(pairs, i, math.min(i + 3999, #pairs)))
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local ttl = redis.call('PTTL', key)
  if ttl >= 0 and now + ttl < last + 60000 or ttl == -1 then
    redis.call('PEXPIREAT', key, last + 60000)
  end
end
`

// enqueueAfterLua queues events for a later first attempt: ARGV[1] room (as
// enqueueLua), ARGV[2] now (unix ms), then triples (id, body, due unix ms).
// An id already queued is skipped. KEYS are the nine queue keys and
// KEYS[10] the after index. Returns {added, held}, added -1 when refused
// for room.
const enqueueAfterLua = afterIndexLua + `
local room = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if room > 0 then
  local held = redis.call('HLEN', KEYS[2])
  if held > room then return {-1, held} end
end
local n, last, idx = 0, 0, {}
for i = 3, #ARGV, 3 do
  local id, due = ARGV[i], tonumber(ARGV[i+2])
  if redis.call('HSETNX', KEYS[2], id, ARGV[i+1]) == 1 then
    redis.call('ZADD', KEYS[6], due, id)
    idx[#idx+1] = due
    idx[#idx+1] = id
    if due > last then last = due end
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[7], 'enqueued', n)
  after_index(KEYS[10], now, idx, last)
end
return {n, redis.call('HLEN', KEYS[2])}
`

// enqueueAfterScript is enqueueAfterLua for the fan-out and for direct
// publishes (run in their MULTI). It stores new events, so Redis refuses it
// when out of memory.
var enqueueAfterScript = redis.NewScript(enqueueAfterLua)

// enqueueAfterRoomScript is enqueueAfterLua declared allow-oom, for the
// fan-out when Redis is out of memory (see Store.EnqueueWhenFull).
var enqueueAfterRoomScript = newOOMScript(enqueueAfterLua)

func init() {
	allScripts = append(allScripts, enqueueAfterScript)
	oomScripts = append(oomScripts, enqueueAfterRoomScript)
}

// splitDue separates items to deliver now from those with a due time after
// now (an item due at or before now is delivered now).
func splitDue(items []Item, now time.Time) (ready, later []Item) {
	for i, it := range items {
		if it.Due.After(now) {
			if later == nil {
				ready = append(make([]Item, 0, len(items)), items[:i]...)
			}
			later = append(later, it)
		} else if later != nil {
			ready = append(ready, it)
		}
	}
	if later == nil {
		return items, nil
	}
	return ready, later
}

// afterArgs are enqueueAfterLua's arguments for items.
func afterArgs(room int64, now time.Time, items []Item) []any {
	args := make([]any, 0, 2+3*len(items))
	args = append(args, room, now.UnixMilli())
	for _, it := range items {
		args = append(args, it.ID, it.Event, it.Due.UnixMilli())
	}
	return args
}

// afterKeys are enqueueAfterLua's keys for trigger.
func (s *Store) afterKeys(trigger string) []string {
	q := s.keys.Queue(trigger)
	return append(q.all(), q.After)
}

// afterScriptFor returns the delayed variant of an enqueue script.
func (s *Store) afterScriptFor(sc *redis.Script) *redis.Script {
	if sc == enqueueScript {
		return enqueueAfterScript
	}
	return s.oom(enqueueAfterRoomScript)
}

// enqueueCmds queues trigger's items on p: the ones due now with sc, the
// delayed ones with its delayed variant. The last command's reply holds the
// queue's size after both.
func (s *Store) enqueueCmds(ctx context.Context, p redis.Pipeliner, sc *redis.Script, room int64, trigger string, items []Item) []*redis.Cmd {
	now := time.Now()
	ready, later := splitDue(items, now)
	var cmds []*redis.Cmd
	if len(ready) > 0 || len(later) == 0 {
		args := make([]any, 0, 1+2*len(ready))
		args = append(args, room)
		for _, it := range ready {
			args = append(args, it.ID, it.Event)
		}
		cmds = append(cmds, sc.EvalSha(ctx, p, s.keys.Queue(trigger).all(), args...))
	}
	if len(later) > 0 {
		cmds = append(cmds, s.afterScriptFor(sc).EvalSha(ctx, p, s.afterKeys(trigger), afterArgs(room, now, later)...))
	}
	return cmds
}

// Waiting counts the events of trigger waiting for the time their publisher
// asked (a read only: it runs when Redis refuses writes).
func (s *Store) Waiting(ctx context.Context, trigger string, now time.Time) (int64, error) {
	n, err := s.rdb.ZCount(ctx, s.keys.Queue(trigger).After, fmt.Sprintf("(%d", now.UnixMilli()), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("stats %s: %w", trigger, err)
	}
	return n, nil
}

// anyDue reports whether an item of a batch asks for a later first attempt.
func anyDue(items []Item) bool {
	now := time.Now()
	for _, it := range items {
		if it.Due.After(now) {
			return true
		}
	}
	return false
}
