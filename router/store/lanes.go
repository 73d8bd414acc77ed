package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Lanes: ordered delivery per key (a trigger's delivery.ordering).
//
// An ordered trigger's events are queued in lanes, one per ordering key. The
// rule "one event of a lane at a time, in acceptance order" is kept by the
// store, not by any process: of each lane only its first event is ever
// active (in the ready list, in flight, or scheduled for a retry); the
// others wait in the lane until the ones before them are acknowledged or
// dead-lettered. The claim, retry, lease-expiry and release scripts are
// therefore those of every trigger, unchanged: they only ever see lane
// heads. What changes is where an event goes when it is queued (laneAdd),
// and what happens when one leaves the queue (laneLeave: the next of its
// lane becomes active), both in the same script as the change itself, so
// the rule holds across instances, crashes and lost replies.
//
// Keys (in the trigger's hash slot, derived in Lua from KEYS[1], the ready
// list, so that the nine queue keys every script takes stay as they are):
//
//	<q>lq      ZSET, every score 0, ordered by member: "<lane>\0<seq>\0<id>"
//	           for each event of a lane the queue holds (seq: 16 digits,
//	           a per-trigger counter taken when the event enters the lane),
//	           followed by "\0<due unix ms>" for an event whose publisher
//	           asked for later delivery (deliverafter)
//	<q>lane    HASH event id → "<mode><member>", mode 'c' (on_dead
//	           continue) or 'b' (block), fixed when the event was queued
//	<q>lanes   HASH lane → number of its events the queue holds
//	<q>blocked HASH lane → "<dlq entry id> <seq>" of the dead letter that
//	           blocks it (on_dead block)
//
// A lane name never contains a NUL byte (see LaneName), so the members of
// one lane are exactly those between "<lane>\0" and "<lane>\1"; nor does an
// event id, so what follows the id is its due time.
//
// A delayed event (deliverafter) enters its lane in acceptance order like
// any other; when it becomes its lane's head before its due time it goes
// into the delayed ZSET (and the after index) instead of the ready list,
// and the claim script makes it ready once due, as it does a retry. Until
// then it holds its lane, as a retry's backoff does: the order of a key's
// events comes before the time any one of them asked for.
//
// A dead letter of a lane keeps its lane entry (field "l" of the stream
// entry); replaying it puts the event back into its lane: at its old place
// when its death blocks the lane (which unblocks it), else at the lane's
// end.

// laneLua defines the lane helpers. A queue script run on a trigger that
// has no lanes pays the definitions and, when events leave the queue, one
// EXISTS (lanes_on); the key names are built only when needed (lane_keys).
const laneLua = afterIndexLua + `
local LZ0, LZ1, LQ, LOF, LCNT, LBLK, LAFT
local function lane_keys()
  if LOF then return end
  local b = string.sub(KEYS[1], 1, -6)
  LQ, LOF, LCNT, LBLK, LAFT = b .. 'lq', b .. 'lane', b .. 'lanes', b .. 'blocked', b .. 'after'
  LZ0, LZ1 = string.char(0), string.char(1)
end
local lane_now_
local function lane_now()
  if not lane_now_ then
    local t = redis.call('TIME')
    lane_now_ = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return lane_now_
end
local lanes_on_
local function lanes_on()
  if lanes_on_ == nil then
    lane_keys()
    lanes_on_ = redis.call('EXISTS', LOF) == 1
  end
  return lanes_on_
end
local function lane_parse(v)
  local m = string.sub(v, 2)
  local z = string.find(m, LZ0, 1, true)
  return string.sub(v, 1, 1), m, string.sub(m, 1, z - 1), string.sub(m, z + 1, z + 16)
end
local function lane_push(L)
  if redis.call('HEXISTS', LBLK, L) == 1 then return false end
  local m = redis.call('ZRANGEBYLEX', LQ, '[' .. L .. LZ0, '(' .. L .. LZ1, 'LIMIT', 0, 1)
  if #m == 0 then return false end
  local id = string.sub(m[1], #L + 19)
  local z = string.find(id, LZ0, 1, true)
  if z then
    local due = tonumber(string.sub(id, z + 1))
    id = string.sub(id, 1, z - 1)
    if due > lane_now() then
      redis.call('ZADD', KEYS[6], due, id)
      after_index(LAFT, lane_now(), {due, id}, due)
      return true
    end
  end
  redis.call('RPUSH', KEYS[1], id)
  return true
end
local function lane_add(id, L, mode, seq, due)
  lane_keys()
  if not seq then seq = string.format('%016d', redis.call('HINCRBY', KEYS[7], 'lane_seq', 1)) end
  local m = L .. LZ0 .. seq .. LZ0 .. id
  if due then m = m .. LZ0 .. due end
  redis.call('ZADD', LQ, 0, m)
  redis.call('HSET', LOF, id, mode .. m)
  lanes_on_ = true
  if redis.call('HINCRBY', LCNT, L, 1) == 1 then return lane_push(L) end
  return false
end
local function lane_leave(id)
  if not lanes_on() then return nil end
  local v = redis.call('HGET', LOF, id)
  if not v then return nil end
  local mode, m, L, seq = lane_parse(v)
  redis.call('HDEL', LOF, id)
  redis.call('ZREM', LQ, m)
  if redis.call('HINCRBY', LCNT, L, -1) <= 0 then redis.call('HDEL', LCNT, L) end
  return L, mode, seq
end
local function lanes_done(ids)
  if #ids == 0 or not lanes_on() then return end
  for i = 1, #ids do
    local L = lane_leave(ids[i])
    if L then lane_push(L) end
  end
end
local function lane_of(id)
  if not lanes_on() then return nil end
  return redis.call('HGET', LOF, id)
end
local function lane_dead(id, eid)
  local L, mode, seq = lane_leave(id)
  if not L then return end
  if mode == 'b' then
    redis.call('HSET', LBLK, L, eid .. ' ' .. seq)
  else
    lane_push(L)
  end
end
local function lane_replay(id, v, eid)
  lane_keys()
  local mode, m, L, seq = lane_parse(v)
  local b = redis.call('HGET', LBLK, L)
  if b and string.sub(b, 1, #eid + 1) == eid .. ' ' then
    redis.call('HDEL', LBLK, L)
    if not lane_add(id, L, mode, seq) then lane_push(L) end
  else
    lane_add(id, L, mode, nil)
  end
end
`

// skipLaneScript unblocks lane ARGV[1] without replaying the dead letter
// that blocks it: the lane's next event becomes active. Returns 1 when the
// lane was blocked, else 0.
var skipLaneScript = newOOMScript(laneLua + `
lane_keys()
if redis.call('HDEL', LBLK, ARGV[1]) == 0 then return 0 end
lane_push(ARGV[1])
redis.call('HINCRBY', KEYS[7], 'lanes_skipped', 1)
return 1
`)

// laneStatsScript returns {lanes holding events, lanes blocked, events in
// lanes, up to ARGV[1] blocked lanes as a flat list lane, "<entry> <seq>",
// events in lanes that are not active}. Every lane holding events has its
// first one active unless it is blocked.
var laneStatsScript = redis.NewScript(unpackLua + laneLua + `
lane_keys()
local nb = redis.call('HLEN', LBLK)
local active = redis.call('HLEN', LCNT)
local heads = active
if nb > 0 then
  local held = getmany('HMGET', LCNT, redis.call('HKEYS', LBLK))
  for i = 1, #held do if held[i] then heads = heads - 1 end end
end
local waiting = redis.call('ZCARD', LQ)
local list = {}
if nb > 0 then
  if nb <= tonumber(ARGV[1]) then
    list = redis.call('HGETALL', LBLK)
  else
    local page = redis.call('HSCAN', LBLK, 0, 'COUNT', ARGV[1])
    list = page[2]
  end
end
return {active, nb, waiting, list, waiting - heads}
`)

// laneKeys are the lane keys of a queue (see laneLua), for deleting them
// with the queue.
func (q QueueKeys) laneKeys() []string {
	b := strings.TrimSuffix(q.Ready, "ready")
	return []string{b + "lq", b + "lane", b + "lanes", b + "blocked"}
}

// MaxLaneKeyBytes is the longest ordering key used as its lane's name as it
// is; a longer one (or one holding a NUL byte) is named by its SHA-256.
const MaxLaneKeyBytes = 200

// LaneName returns the name of the lane of ordering key: "=" and the key
// itself, or "#" and the key's SHA-256 in hex when it is longer than
// MaxLaneKeyBytes or holds a NUL byte. The empty key (an event without
// one) is the default lane "=".
func LaneName(key string) string {
	if len(key) <= MaxLaneKeyBytes && !strings.ContainsRune(key, 0) {
		return "=" + key
	}
	h := sha256.Sum256([]byte(key))
	return "#" + hex.EncodeToString(h[:])
}

// LaneKey returns the ordering key a lane name shows (the key itself, or
// the "#<sha256>" of a long one).
func LaneKey(lane string) string {
	if strings.HasPrefix(lane, "=") {
		return lane[1:]
	}
	return lane
}

// laned reports whether items go into lanes: their trigger is ordered, and
// the caller set Lane on them (on all of them, but a batch may join
// publishes from either side of a trigger change: then all go into lanes).
func laned(items []Item) bool {
	for _, it := range items {
		if it.Lane != "" {
			return true
		}
	}
	return false
}

// BlockedLane is a lane stopped by a dead letter (on_dead: block).
type BlockedLane struct {
	// Lane is the lane's name (see LaneName).
	Lane string
	// Entry is the id of the dead letter that blocks it: replaying it
	// unblocks the lane, the event first.
	Entry string
}

// LaneStats are an ordered trigger's lanes.
type LaneStats struct {
	// Active counts lanes holding events; Blocked lanes stopped by a dead
	// letter (some may hold none).
	Active, Blocked int64
	// Waiting counts the events in lanes, the active ones included;
	// Behind those waiting for an earlier event of their lane (or for a
	// blocked lane): they are neither queued, in flight nor scheduled.
	Waiting, Behind int64
	// BlockedLanes lists up to the number asked of the blocked lanes.
	BlockedLanes []BlockedLane
}

// LaneStats reads a trigger's lanes, listing at most list blocked lanes.
func (s *Store) LaneStats(ctx context.Context, trigger string, list int) (LaneStats, error) {
	v, err := s.run(ctx, laneStatsScript, s.keys.Queue(trigger).all(), max(list, 1)).Slice()
	if err != nil {
		return LaneStats{}, fmt.Errorf("lane stats %s: %w", trigger, err)
	}
	if len(v) != 5 {
		return LaneStats{}, fmt.Errorf("lane stats %s: unexpected reply of %d elements", trigger, len(v))
	}
	ls := LaneStats{Active: toInt64(v[0]), Blocked: toInt64(v[1]), Waiting: toInt64(v[2]), Behind: toInt64(v[4])}
	kv, _ := v[3].([]any)
	for i := 0; i+1 < len(kv) && len(ls.BlockedLanes) < list; i += 2 {
		entry, _, _ := strings.Cut(toString(kv[i+1]), " ")
		ls.BlockedLanes = append(ls.BlockedLanes, BlockedLane{Lane: toString(kv[i]), Entry: entry})
	}
	return ls, nil
}

// SkipLane unblocks a lane stopped by a dead letter without replaying it:
// the lane's next event is delivered. It reports whether the lane was
// blocked.
func (s *Store) SkipLane(ctx context.Context, trigger, lane string) (bool, error) {
	n, err := s.run(ctx, s.oom(skipLaneScript), s.keys.Queue(trigger).all(), lane).Int64()
	if err != nil {
		return false, fmt.Errorf("skip lane of %s: %w", trigger, err)
	}
	return n == 1, nil
}

// LaneGauges are an ordered trigger's lanes, as metrics show them.
type LaneGauges struct {
	Trigger string
	// Active lanes hold events; Blocked ones are stopped by a dead letter.
	Active, Blocked int64
	// Behind counts the events waiting for an earlier event of their lane
	// (or for their blocked lane), as LaneStats does.
	Behind int64
}

// LaneGaugesAll reads the lanes of ordered triggers with plain reads (two
// HLEN and a ZCARD per trigger), pipelined a round trip per gaugeChunk
// triggers, as GaugesAll does. Of a lane holding events, its first is
// active unless the lane is blocked: without blocked lanes, Behind is the
// events in lanes less the lanes; a trigger with blocked lanes has them
// counted by laneStatsScript (one more round trip each: blocked lanes wait
// for an operator, so there are few).
func (s *Store) LaneGaugesAll(ctx context.Context, triggers []string) ([]LaneGauges, error) {
	out := make([]LaneGauges, 0, len(triggers))
	for len(triggers) > 0 {
		chunk := triggers[:min(gaugeChunk, len(triggers))]
		triggers = triggers[len(chunk):]
		cmds := make([][3]*redis.IntCmd, len(chunk))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, t := range chunk {
				lk := s.keys.Queue(t).laneKeys() // lq, lane, lanes, blocked
				cmds[i] = [3]*redis.IntCmd{p.HLen(ctx, lk[2]), p.HLen(ctx, lk[3]), p.ZCard(ctx, lk[0])}
			}
			return nil
		})
		if err != nil && !isReplyError(err) {
			return nil, fmt.Errorf("lane gauges: %w", err)
		}
		for i, t := range chunk {
			if cmds[i][0].Err() != nil || cmds[i][1].Err() != nil || cmds[i][2].Err() != nil {
				continue // a key holding something unexpected
			}
			g := LaneGauges{Trigger: t, Active: cmds[i][0].Val(), Blocked: cmds[i][1].Val()}
			g.Behind = max(0, cmds[i][2].Val()-g.Active)
			if g.Blocked > 0 {
				ls, err := s.LaneStats(ctx, t, 1)
				if err != nil {
					if ctx.Err() != nil {
						return nil, fmt.Errorf("lane gauges: %w", err)
					}
					continue
				}
				g.Active, g.Blocked, g.Behind = ls.Active, ls.Blocked, ls.Behind
			}
			out = append(out, g)
		}
	}
	return out, nil
}

// OneNode reports whether every key lives on one server (not Redis
// Cluster): then one transaction may span the ingest log and any queue.
func (s *Store) OneNode() bool { return s.cluster() == nil }

// AppendLogAndLanes is AppendLog that also queues items into their lanes
// (ordered triggers' shares of publishes routed to several triggers), so
// that each lane gets its events in acceptance order, whichever instance
// fans the rest out. On one node (OneNode) it is one MULTI/EXEC: every
// record and item is stored or none is. On Redis Cluster the log and the
// queues are in different slots: the lanes are written first (each
// trigger's in one script in its slot), then the log; when the log's write
// fails after them, their events stay queued and held reports them with
// the error (the publisher, told the publish failed, may publish again: an
// ordered trigger may then deliver a copy, as after any lost answer). The
// items' dedup keys are checked and their due times kept as on every path
// (enqueueEachLua). It returns, per trigger of lanes, the events its queue
// holds, and marks the duplicates.
func (s *Store) AppendLogAndLanes(ctx context.Context, lanes map[string][]Item, batches ...[]LogRecord) (map[string]int64, error) {
	if !s.OneNode() {
		held, err := s.Enqueue(ctx, lanes)
		if err != nil {
			return nil, err
		}
		for _, b := range batches {
			if len(b) > 0 {
				return held, s.AppendLog(ctx, batches...)
			}
		}
		return held, nil
	}
	key := s.keys.Log()
	counts := map[string]int64{}
	each := map[string]*redis.Cmd{}
	err := full(s.acceptTx(ctx, key, func(p redis.Pipeliner) {
		clear(counts)
		clear(each)
		for _, b := range batches {
			for _, r := range b {
				p.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"e", r.Event, "t", strings.Join(r.Triggers, ",")}})
				for _, t := range r.Triggers {
					counts[t]++
				}
			}
		}
		for t, n := range counts {
			p.HIncrBy(ctx, s.keys.Admitted(), t, n)
		}
		for t, items := range lanes {
			// By EVAL: a NOSCRIPT inside the transaction would fail the publish.
			each[t] = enqueueEachScript.Eval(ctx, p, s.dedupKeys(t), eachArgs(0, items)...)
		}
	}))
	if err != nil {
		var repl *ReplicationError
		if !errors.As(err, &repl) {
			return nil, err
		}
	}
	held := make(map[string]int64, len(each))
	for t, c := range each {
		v, _ := c.Slice()
		_, h, ok := enqueued(v, lanes[t])
		if !ok {
			return nil, errors.Join(err, fmt.Errorf("queue %s: %w: %d elements", t, errReplyShape, len(v)))
		}
		held[t] = h
	}
	return held, err
}
