package store

import "github.com/redis/go-redis/v9"

// All queue scripts take the nine QueueKeys in this order:
// KEYS[1] ready, [2] events, [3] attempts, [4] history, [5] inflight,
// [6] delayed, [7] stats, [8] dlq, [9] since.
//
// An attempt is identified by (event id, attempt number): a script applies an
// outcome only when the event's current attempt number is the one reported,
// so a late answer from an instance that lost its lease changes nothing.
//
// The scripts that settle or move events already stored are oomScripts:
// they declare allow-oom where the server takes script flags, so that they
// run when Redis is out of memory (see oom.go). enqueueScript and the
// replay scripts store new copies of events and stay refused then.

// unpackLua calls a command with a list's elements as arguments, in chunks
// that stay within Lua's stack limit. A chunk of pairs must have an even size.
const unpackLua = `
local function callmany(cmd, key, list)
  for i = 1, #list, 4000 do
    redis.call(cmd, key, unpack(list, i, math.min(i + 3999, #list)))
  end
end
local function getmany(cmd, key, list)
  local out = {}
  for i = 1, #list, 4000 do
    local part = redis.call(cmd, key, unpack(list, i, math.min(i + 3999, #list)))
    for j = 1, #part do out[#out+1] = part[j] end
  end
  return out
end
`

// wideLua keeps a queue's in-flight ZSET and attempts HASH in Redis's
// skiplist and hash-table encodings. Redis stores a small set (up to 128
// members of at most 64 bytes by default) as a listpack, where adding,
// scoring or removing one member scans the whole list: at the 50-130 attempts
// a busy trigger keeps in flight that cost about 12 µs per event in the ZSET
// and 4 µs in the HASH, against 3 µs and 2 µs in the wide encodings
// (measured with EVAL loops on Redis 7.0). One member longer than 64 bytes
// converts a key for good, so each key holds the member wideMember (score
// +inf, never an event id), added by the claim script when missing. Counts
// and "first lease" reads skip it (inflightCount, firstLease); the other
// scripts address members by event id and never meet it. The two keys get
// the member together, so a count that met it in the ZSET spares widen its
// two checks.
const wideLua = `
local WIDE = '~switchyard:keeps-this-key-in-its-wide-encoding:not-an-event-id:~~~~~~~~~'
local wideSeen = false
local function widen()
  if wideSeen then return end
  if not redis.call('ZSCORE', KEYS[5], WIDE) then redis.call('ZADD', KEYS[5], 'inf', WIDE) end
  if redis.call('HEXISTS', KEYS[3], WIDE) == 0 then redis.call('HSET', KEYS[3], WIDE, '0') end
  wideSeen = true
end
local function inflightCount()
  local n = redis.call('ZCARD', KEYS[5])
  if n > 0 and redis.call('ZSCORE', KEYS[5], WIDE) then
    n = n - 1
    wideSeen = true
  end
  return n
end
local function firstLease()
  local nl = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  if nl[1] == WIDE then return '' end
  return nl[2] or ''
end
`

// The scripts below act on whole batches with one variadic command per key
// (HMGET, HSET, RPUSH, ZADD, ZREM, HDEL) rather than a command per event: each
// command called from Lua has a fixed cost that dominated at high rates.

// enqueueLua adds events (ARGV[2k], ARGV[2k+1] = id, body) unless already
// queued (the same id twice is stored once). With ARGV[1] > 0 it adds
// nothing when the queue holds more than ARGV[1] events (see
// enqueueRoomScript). Returns {added, held}, added -1 when refused so.
const enqueueLua = unpackLua + `
local room = tonumber(ARGV[1])
if room > 0 then
  local held = redis.call('HLEN', KEYS[2])
  if held > room then return {-1, held} end
end
local ids, seen = {}, {}
for i = 2, #ARGV, 2 do
  if not seen[ARGV[i]] then
    seen[ARGV[i]] = i
    ids[#ids+1] = ARGV[i]
  end
end
local n = 0
if #ids > 0 then
  local have = getmany('HMGET', KEYS[2], ids)
  local pairs_, fresh = {}, {}
  for j = 1, #ids do
    if not have[j] then
      pairs_[#pairs_+1] = ids[j]
      pairs_[#pairs_+1] = ARGV[seen[ids[j]] + 1]
      fresh[#fresh+1] = ids[j]
    end
  end
  n = #fresh
  if n > 0 then
    callmany('HSET', KEYS[2], pairs_)
    callmany('RPUSH', KEYS[1], fresh)
    redis.call('HINCRBY', KEYS[7], 'enqueued', n)
  end
end
return {n, redis.call('HLEN', KEYS[2])}
`

// enqueueScript is enqueueLua for the fan-out. It stores new copies of
// events, so Redis refuses it when out of memory (its first write is an
// HSET).
var enqueueScript = redis.NewScript(enqueueLua)

// enqueueRoomScript is enqueueLua declared allow-oom, for the fan-out when
// Redis is out of memory (see Store.EnqueueWhenFull).
var enqueueRoomScript = newOOMScript(enqueueLua)

// slotsLua defines slots(now, want, limit), the number of attempts a claim
// may start (at most want): what limit leaves free of the attempts in
// flight, none while the circuit breaker is open, and one probe at a time
// once its time is up (half open; the state is written then). It returns
// that number, the breaker's state and the time it opens until; and
// take(ids, now, lease, inline, out), which starts an attempt of each id
// popped from the ready list, leased until now+lease, appending the items
// to out (see claimScript for their shape and inline).
const slotsLua = `
local function slots(now, want, limit)
  local st = redis.call('HMGET', KEYS[7], 'cb_state', 'cb_until')
  local state = st[1] or 'closed'
  local untl = tonumber(st[2] or '0') or 0
  local inflight = inflightCount()
  local free = limit - inflight
  if state == 'open' then
    if now < untl then
      free = 0
    else
      state = 'half'
      redis.call('HSET', KEYS[7], 'cb_state', 'half')
    end
  end
  if state == 'half' then
    if inflight > 0 then free = 0 elseif free > 1 then free = 1 end
  end
  if want < free then free = want end
  return free, state, untl
end
local function take(ids, now, lease, inline, out)
  local atts = getmany('HMGET', KEYS[3], ids)
  local bodies = {}
  if #ids <= inline then bodies = getmany('HMGET', KEYS[2], ids) end
  -- History and replay times exist only for retried or replayed events:
  -- they are not read when the queue has none.
  local hists, since = {}, {}
  if redis.call('HLEN', KEYS[4]) > 0 then hists = getmany('HMGET', KEYS[4], ids) end
  if redis.call('HLEN', KEYS[9]) > 0 then since = getmany('HMGET', KEYS[9], ids) end
  local aset, leases = {}, {}
  for j = 1, #ids do
    local id = ids[j]
    local a = (tonumber(atts[j]) or 0) + 1
    aset[#aset+1] = id
    aset[#aset+1] = a
    leases[#leases+1] = now + lease
    leases[#leases+1] = id
    local body = ''
    if #ids <= inline then body = bodies[j] end
    out[#out+1] = {id, tostring(a), hists[j] or '', 0, since[j] or '', body}
  end
  widen()
  callmany('HSET', KEYS[3], aset)
  callmany('ZADD', KEYS[5], leases)
end
`

// claimScript starts up to ARGV[2] attempts, never more than ARGV[3] in flight
// in total, each leased until now+ARGV[4] ms. Before that it moves due retries
// to the head of the ready list and re-leases attempts whose lease expired
// (their instance is gone) to the caller, flagged so that the caller records
// the lost attempt instead of delivering. An open circuit breaker admits no
// attempt until its time is up, then one probe at a time.
//
// A claim of at most ARGV[5] new attempts returns their events' bodies; a
// larger one returns none, and the caller reads them with one HMGET: each
// 1 KiB body copied through Lua costs about as much Redis CPU as a twentieth
// of a round trip, so small claims save the round trip and large ones the
// copies. An id whose body is gone is handed out all the same (body false);
// the caller releases it with orphanScript.
//
// Returns {items, ready, next_due, next_lease, breaker_state, breaker_until,
// held} where each item is {id, attempt, history, expired(0|1), since, body}
// and body is the event, false when gone, or "" when not read.
var claimScript = newOOMScript(unpackLua + wideLua + slotsLua + `
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local inline = tonumber(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, 512)
if #due > 0 then
  redis.call('ZREM', KEYS[6], unpack(due))
  local rev = {}
  for i = #due, 1, -1 do rev[#rev+1] = due[i] end
  redis.call('LPUSH', KEYS[1], unpack(rev))
end
local out = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 64)
for i = 1, #expired do
  local id = expired[i]
  local body = redis.call('HEXISTS', KEYS[2], id) == 1
  if body then
    redis.call('ZADD', KEYS[5], now + lease, id)
    out[#out+1] = {id, redis.call('HGET', KEYS[3], id) or '0', redis.call('HGET', KEYS[4], id) or '', 1, redis.call('HGET', KEYS[9], id) or '', ''}
  else
    redis.call('ZREM', KEYS[5], id)
  end
end
local free, state, untl = slots(now, want, limit)
if free > 0 then
  local ids = redis.call('LPOP', KEYS[1], free)
  if ids and #ids > 0 then take(ids, now, lease, inline, out) end
end
local nd = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
return {out, redis.call('LLEN', KEYS[1]), nd[2] or '', firstLease(), state, tostring(untl), redis.call('HLEN', KEYS[2])}
`)

// orphanScript ends attempts (ARGV[2k], ARGV[2k+1] = id, attempt) whose
// event body is gone (its queue was purged while the id waited): it drops
// their lease and attempt count and counts them. Returns the number ended.
var orphanScript = newOOMScript(laneLua + `
local n = 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[i+1] and redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    redis.call('ZREM', KEYS[5], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
    redis.call('HDEL', KEYS[4], ARGV[i])
    redis.call('HDEL', KEYS[9], ARGV[i])
    lanes_done({ARGV[i]})
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[7], 'orphans', n) end
return n
`)

// ackLua defines ack(from), which completes the attempts given as
// (id, attempt) pairs in ARGV[from..] and closes the circuit breaker; the
// next event of each completed event's lane becomes active (lanes.go).
// Returns acked, stale.
const ackLua = laneLua + `
local function ack(from)
  local ids, want, seen = {}, {}, {}
  local stale = 0
  for i = from, #ARGV, 2 do
    if seen[ARGV[i]] then
      stale = stale + 1
    else
      seen[ARGV[i]] = true
      ids[#ids+1] = ARGV[i]
      want[#want+1] = ARGV[i+1]
    end
  end
  local done = {}
  if #ids > 0 then
    local cur = getmany('HMGET', KEYS[3], ids)
    local leased = getmany('ZMSCORE', KEYS[5], ids)
    local delayed = {}
    if redis.call('ZCARD', KEYS[6]) > 0 then delayed = getmany('ZMSCORE', KEYS[6], ids) end
    for j = 1, #ids do
      if cur[j] == want[j] and (leased[j] or delayed[j]) then
        done[#done+1] = ids[j]
      else
        stale = stale + 1
      end
    end
  end
  local n = #done
  if n > 0 then
    callmany('ZREM', KEYS[5], done)
    if redis.call('ZCARD', KEYS[6]) > 0 then callmany('ZREM', KEYS[6], done) end
    callmany('HDEL', KEYS[2], done)
    callmany('HDEL', KEYS[3], done)
    if redis.call('HLEN', KEYS[4]) > 0 then callmany('HDEL', KEYS[4], done) end
    if redis.call('HLEN', KEYS[9]) > 0 then callmany('HDEL', KEYS[9], done) end
    redis.call('HINCRBY', KEYS[7], 'delivered', n)
    redis.call('HSET', KEYS[7], 'cb_state', 'closed', 'cb_fail', 0, 'cb_opens', 0)
    lanes_done(done)
  end
  if stale > 0 then redis.call('HINCRBY', KEYS[7], 'stale', stale) end
  return n, stale
end
`

// ackScript completes attempts (ARGV[2k], ARGV[2k+1] = id, attempt) and closes
// the circuit breaker. Returns {acked, stale}.
var ackScript = newOOMScript(unpackLua + ackLua + `
local n, stale = ack(2)
return {n, stale}
`)

// ackLettersScript completes attempts whose function answered with reply
// events Switchyard refused, and adds those replies to the dead-letter
// stream, in one step: the acknowledgement never lands without the letters.
// ARGV[1] caps the stream's length (as in deadScript), ARGV[2] is the number
// L of letters, ARGV[3..2+2L] are (event, dead letter) pairs and the rest
// (id, attempt) pairs. The letters are added even when an attempt is no
// longer current: the replies came from a run of the function that did
// happen, and a duplicate letter (the event's next run refuses the same
// reply) is better than a lost one. Returns {acked, stale, evicted}.
var ackLettersScript = newOOMScript(unpackLua + ackLua + capDLQLua + `
local l = tonumber(ARGV[2])
for i = 3, 2 + 2 * l, 2 do
  redis.call('XADD', KEYS[8], '*', 'e', ARGV[i], 'd', ARGV[i+1])
end
if l > 0 then redis.call('HINCRBY', KEYS[7], 'dead', l) end
local n, stale = ack(3 + 2 * l)
return {n, stale, cap_dlq(tonumber(ARGV[1]))}
`)

// breakerFailLua counts one failure that reflects on the target's health and
// opens the breaker at the threshold (or at once when half-open), with a
// cool-down doubling per consecutive opening up to the cap.
// ARGV[1] now, ARGV[2] threshold (0 = breaker off), ARGV[3] base ms, ARGV[4] cap ms.
const breakerFailLua = `
local function breaker_fail()
  local threshold = tonumber(ARGV[2])
  if threshold <= 0 then return end
  local fails = redis.call('HINCRBY', KEYS[7], 'cb_fail', 1)
  local state = redis.call('HGET', KEYS[7], 'cb_state') or 'closed'
  if state == 'half' or (state == 'closed' and fails >= threshold) then
    local opens = redis.call('HINCRBY', KEYS[7], 'cb_opens', 1)
    local cool = tonumber(ARGV[3]) * math.pow(2, math.min(opens - 1, 20))
    if cool > tonumber(ARGV[4]) then cool = tonumber(ARGV[4]) end
    redis.call('HSET', KEYS[7], 'cb_state', 'open', 'cb_until', tonumber(ARGV[1]) + cool)
  end
end
`

// retryScript schedules retries: ARGV[5..] are tuples of
// (id, attempt, due ms, history, health 0|1). Returns the number scheduled.
var retryScript = newOOMScript(breakerFailLua + `
local n = 0
for i = 5, #ARGV, 5 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[3], id) == ARGV[i+1] and redis.call('ZREM', KEYS[5], id) == 1 then
    redis.call('ZADD', KEYS[6], ARGV[i+2], id)
    redis.call('HSET', KEYS[4], id, ARGV[i+3])
    n = n + 1
    if ARGV[i+4] == '1' then breaker_fail() end
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[7], 'failed', n) end
return n
`)

// deadScript moves attempts' events into the dead-letter stream, atomically
// with removing them from the queue: ARGV[6..] are tuples of
// (id, attempt, dead letter, failed 0|1, health 0|1). A stream entry holds the
// event untouched (field "e") and its story (field "d": a switchyard.v1.DeadLetter
// without the event; and for an event of a lane, field "l": its lane entry,
// see lanes.go). ARGV[5] caps the
// stream's length; entries evicted to respect it are counted, never silent.
// Returns {dead, evicted}.
var deadScript = newOOMScript(breakerFailLua + capDLQLua + laneLua + `
local n, failed = 0, 0
for i = 6, #ARGV, 5 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[3], id) == ARGV[i+1] and redis.call('ZREM', KEYS[5], id) == 1 then
    local lv = lane_of(id)
    if lv then
      lane_dead(id, redis.call('XADD', KEYS[8], '*', 'e', redis.call('HGET', KEYS[2], id) or '', 'd', ARGV[i+2], 'l', lv))
    else
      redis.call('XADD', KEYS[8], '*', 'e', redis.call('HGET', KEYS[2], id) or '', 'd', ARGV[i+2])
    end
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[9], id)
    n = n + 1
    if ARGV[i+3] == '1' then failed = failed + 1 end
    if ARGV[i+4] == '1' then breaker_fail() end
  end
end
local evicted = 0
if n > 0 then
  redis.call('HINCRBY', KEYS[7], 'dead', n)
  if failed > 0 then redis.call('HINCRBY', KEYS[7], 'failed', failed) end
  evicted = cap_dlq(tonumber(ARGV[5]))
end
return {n, evicted}
`)

// peekScript reports a queue's state without changing it:
// {ready, held, next_due, next_lease, breaker_state, breaker_until}.
var peekScript = redis.NewScript(wideLua + `
local nd = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
local st = redis.call('HMGET', KEYS[7], 'cb_state', 'cb_until')
return {redis.call('LLEN', KEYS[1]), redis.call('HLEN', KEYS[2]), nd[2] or '', firstLease(), st[1] or 'closed', st[2] or '0'}
`)

// statsScript returns {ready, inflight, delayed, dlq, oldest ready id, stats
// hash as a flat list}.
var statsScript = redis.NewScript(wideLua + `
local first = redis.call('LINDEX', KEYS[1], 0) or ''
return {redis.call('LLEN', KEYS[1]), inflightCount(), redis.call('ZCARD', KEYS[6]),
        redis.call('XLEN', KEYS[8]), first, redis.call('HGETALL', KEYS[7])}
`)

// replayScript moves dead letters back into a queue: ARGV[1] now, then
// ARGV[2k], ARGV[2k+1] = dlq entry id, new event id. With one trigger the keys
// are those of its queue and DLQ, and each move is atomic. For another trigger
// the caller runs it with KEYS[8] pointing at nothing and the entries passed
// as ARGV tuples instead (see requeueScript), then deletes them from the
// source DLQ. The new event id is derived from the entry id, so a replay
// interrupted and run again finds the entry gone or the event already queued.
// The story is kept as the event's history, so a second death shows both
// lives. An event of a lane goes back into it (see lane_replay in
// lanes.go). Returns {replayed, missing}.
var replayScript = redis.NewScript(laneLua + `
local n, missing = 0, 0
for i = 2, #ARGV, 2 do
  local e = redis.call('XRANGE', KEYS[8], ARGV[i], ARGV[i], 'COUNT', 1)
  if #e == 0 then
    missing = missing + 1
  else
    local id = ARGV[i+1]
    local fields = e[1][2]
    local ev, d, l
    for j = 1, #fields, 2 do
      if fields[j] == 'e' then ev = fields[j+1] elseif fields[j] == 'd' then d = fields[j+1] elseif fields[j] == 'l' then l = fields[j+1] end
    end
    redis.call('XDEL', KEYS[8], ARGV[i])
    if ev and redis.call('HSETNX', KEYS[2], id, ev) == 1 then
      redis.call('HSET', KEYS[4], id, d or '')
      redis.call('HSET', KEYS[9], id, ARGV[1])
      if l then lane_replay(id, l, ARGV[i]) else redis.call('RPUSH', KEYS[1], id) end
      n = n + 1
    end
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[7], 'replayed', n) end
return {n, missing}
`)

// requeueScript queues events with a history into another trigger's queue:
// ARGV[1] now, then tuples (id, event, history, lane, mode): lane "" for
// none, else the event goes to the end of that lane with its on_dead mode
// ("c" or "b"; see lanes.go). Already queued ids are skipped. Returns the
// number queued.
var requeueScript = redis.NewScript(laneLua + `
local n = 0
for i = 2, #ARGV, 5 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[2], id, ARGV[i+1]) == 1 then
    redis.call('HSET', KEYS[4], id, ARGV[i+2])
    redis.call('HSET', KEYS[9], id, ARGV[1])
    if ARGV[i+3] ~= '' then lane_add(id, ARGV[i+3], ARGV[i+4], nil, nil) else redis.call('RPUSH', KEYS[1], id) end
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[7], 'replayed', n) end
return n
`)
