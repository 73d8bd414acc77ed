package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Deduplication on (source, id).
//
// CloudEvents names an event by its source and id, and publishers and
// connectors send an event again when they did not learn that it was
// accepted (a timeout, a crash between the write and the answer). A trigger
// with a dedup window queues an event only when no event of the same
// (source, id) was queued for it within the window; a copy is a no-op that
// the publisher is told succeeded, counted in the stats hash ("duplicates").
//
// The check is in the script that queues (dedupEnqueueScript for the
// fan-out; dedupAddScript, in the transaction that stores the bodies, for
// direct publishes; enqueueEachScript, each.go, on every path, for an
// ordered trigger's lanes and for a batch holding delayed events), on a
// key of the trigger's own hash slot, so on Redis Cluster the check and the
// enqueue are one atomic step: two instances queuing copies at the same
// moment queue one, and a copy published again after the instance that
// wrote the first died before answering finds the first's key.
//
// The keys seen live in one sorted set per trigger ({t:NAME}:dedup), member
// the event's DedupKey, score when it was queued (unix ms, Redis's own clock,
// read by the script: every instance's check agrees on one clock per
// trigger). A member older than the window is no match; each enqueue drops
// those at its end (one ZREMRANGEBYSCORE, whose cost is what it removes:
// at the end, so that the script's first write is still the HSET that
// Redis refuses when out of memory, before anything changed), and the set
// expires a window after its last addition, so memory holds the keys of
// one window and nothing once a trigger goes quiet. A sorted set rather than a key with
// a TTL per event: one variadic command per batch (ZMSCORE, ZADD) where
// per-event keys take a command per event from Lua, whose fixed cost was
// most of Redis's CPU on the queue path; and one key to delete when the
// trigger is purged. Rather than time buckets: the window is exact (a
// bucket holds keys for up to two windows), and a changed window applies at
// once.

// DedupKey returns the deduplication key of the event of that source and
// id: 16 bytes of SHA-256 over both, length-prefixed (source "a", id "bc" and
// source "ab", id "c" differ). Fixed size whatever the attributes' length.
func DedupKey(source, id string) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(source)))
	h.Write(n[:])
	h.Write([]byte(source))
	h.Write([]byte(id))
	return string(h.Sum(nil)[:16])
}

// dedupEnqueueLua is enqueueLua with the dedup check: KEYS are the queue's
// (QueueKeys.all) and its dedup set (KEYS[10]); ARGV[1] is room (as
// enqueueLua), ARGV[2] the window in ms, then (id, event, dedup key)
// triples. An id already queued is skipped as enqueueLua does (a record
// fanned out again), not counted; an item whose key is in the set, or
// repeated within the batch, is a duplicate: counted, not queued (an item
// with an empty key is queued unchecked). Returns
// {added, held, {indexes of the duplicate items, 1-based}}; added is -1
// when refused for room.
const dedupEnqueueLua = unpackLua + `
local room = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if room > 0 then
  local held = redis.call('HLEN', KEYS[2])
  if held > room then return {-1, held, {}} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids, at = {}, {}
for i = 3, #ARGV, 3 do
  if not at[ARGV[i]] then
    at[ARGV[i]] = i
    ids[#ids+1] = ARGV[i]
  end
end
local dups = {}
local n = 0
if #ids > 0 then
  local have = getmany('HMGET', KEYS[2], ids)
  local cand = {}
  for j = 1, #ids do
    if not have[j] then cand[#cand+1] = ids[j] end
  end
  if #cand > 0 then
    local keys = {}
    for j = 1, #cand do keys[j] = ARGV[at[cand[j]] + 2] end
    local seen = getmany('ZMSCORE', KEYS[10], keys)
    local taken = {}
    local pairs_, fresh, adds = {}, {}, {}
    for j = 1, #cand do
      local k = keys[j]
      if k ~= '' and ((seen[j] and tonumber(seen[j]) > now - window) or taken[k]) then
        dups[#dups+1] = (at[cand[j]] - 3) / 3 + 1
      else
        pairs_[#pairs_+1] = cand[j]
        pairs_[#pairs_+1] = ARGV[at[cand[j]] + 1]
        fresh[#fresh+1] = cand[j]
        if k ~= '' then
          taken[k] = true
          adds[#adds+1] = now
          adds[#adds+1] = k
        end
      end
    end
    n = #fresh
    if n > 0 then
      callmany('HSET', KEYS[2], pairs_)
      callmany('RPUSH', KEYS[1], fresh)
      if #adds > 0 then
        callmany('ZADD', KEYS[10], adds)
        redis.call('PEXPIRE', KEYS[10], window)
      end
      redis.call('HINCRBY', KEYS[7], 'enqueued', n)
    end
    if #dups > 0 then redis.call('HINCRBY', KEYS[7], 'duplicates', #dups) end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now - window)
return {n, redis.call('HLEN', KEYS[2]), dups}
`

// dedupEnqueueScript is dedupEnqueueLua for the fan-out (publishes, whose
// ids are new, use dedupAddScript); like enqueueScript, Redis refuses it
// when out of memory.
var dedupEnqueueScript = redis.NewScript(dedupEnqueueLua)

// dedupEnqueueRoomScript is dedupEnqueueLua declared allow-oom, for the
// fan-out when Redis is out of memory (see Store.EnqueueWhenFull).
var dedupEnqueueRoomScript = newOOMScript(dedupEnqueueLua)

// dedupWindow returns the window of a trigger's items: the largest of their
// DedupWindow among those with a DedupKey (the items of one trigger share
// one, but a group commit may span a change of the trigger), 0 when none
// asks for deduplication.
func dedupWindow(items []Item) time.Duration {
	var w time.Duration
	for _, it := range items {
		if it.DedupKey != "" && it.DedupWindow > w {
			w = it.DedupWindow
		}
	}
	return w
}

// dedupArgs returns the script arguments for items: room, the window in ms,
// then (id, event, key) triples; an item without a key is queued without
// the check, and its absent key not remembered.
func dedupArgs(room int64, window time.Duration, items []Item) []any {
	args := make([]any, 0, 2+3*len(items))
	args = append(args, room, max(window.Milliseconds(), 1))
	for _, it := range items {
		args = append(args, it.ID, it.Event, it.DedupKey)
	}
	return args
}

// dedupKeys are the keys of dedupEnqueueLua for trigger.
func (s *Store) dedupKeys(trigger string) []string {
	q := s.keys.Queue(trigger)
	return append(q.all(), q.Dedup)
}

// dedupResult reads dedupEnqueueLua's reply: added (-1: refused for room),
// held, and marks the duplicate items.
func dedupResult(v []any, items []Item) (added, held int64, ok bool) {
	if len(v) != 3 {
		return 0, 0, false
	}
	idx, _ := v[2].([]any)
	for _, x := range idx {
		if i := toInt64(x) - 1; i >= 0 && int(i) < len(items) {
			items[i].Duplicate = true
		}
	}
	return toInt64(v[0]), toInt64(v[1]), true
}

// dedupScript returns the dedup variant of the enqueue script: the allow-oom
// one when queuing for room (EnqueueWhenFull), the plain one otherwise.
func (s *Store) dedupScript(room int64) *redis.Script {
	if room > 0 {
		return s.oom(dedupEnqueueRoomScript)
	}
	return dedupEnqueueScript
}

// enqueued reads the reply of enqueueLua ({added, held}) or of
// dedupEnqueueLua (which marks the duplicates among items).
func enqueued(v []any, items []Item) (added, held int64, ok bool) {
	switch len(v) {
	case 2:
		return toInt64(v[0]), toInt64(v[1]), true
	case 3:
		return dedupResult(v, items)
	}
	return 0, 0, false
}

// dedupAdded reads the replies of a direct commit's dedup scripts (trigger →
// its dedupAddScript call) and returns each queue's size, the duplicates
// marked among batches' items (see scriptReplies for a script Redis lost).
func (s *Store) dedupAdded(ctx context.Context, cmds map[string]*redis.Cmd, batches map[string][]Item) (map[string]int64, error) {
	held := make(map[string]int64, len(cmds))
	err := s.scriptReplies(ctx, cmds, func(p redis.Pipeliner, trig string) *redis.Cmd {
		return dedupAddScript.EvalSha(ctx, p, s.dedupKeys(trig), dedupAddArgs(dedupWindow(batches[trig]), batches[trig])...)
	}, func(trig string, v []any) error {
		_, h, ok := dedupResult(v, batches[trig])
		if !ok {
			return fmt.Errorf("queue %s: unexpected reply of %d elements", trig, len(v))
		}
		held[trig] = h
		return nil
	})
	return held, err
}
