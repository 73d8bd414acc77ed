package store

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// The enqueue of items one at a time, each with its own lane, due time and
// dedup key.
//
// The hot path (an unordered trigger's events, due now) queues a batch with
// one variadic command per key (enqueueScript, Add's MULTI, and their dedup
// variants). Items that need more go through enqueueEachLua instead, whose
// checks and writes are all in one script on the trigger's keys, so they
// are one atomic step in its hash slot:
//
//   - an ordered trigger's items, each into the lane of its key (lanes.go),
//     with the dedup check when the trigger has a window, and a due time
//     when its publisher asked for later delivery (the event then holds its
//     lane until that time: see lane_push);
//   - an unordered trigger's batch that has both a dedup window and delayed
//     items (after.go): the dedup variants of the hot path queue at once.
//
// It is used by every path that queues: the fan-out (Enqueue,
// EnqueueWhenFull), the direct publish (Add, AddAndClaim: by EVAL inside
// the MULTI, where a NOSCRIPT would fail the publish) and the ingest log's
// transaction on one node (AppendLogAndLanes).

// enqueueEachLua queues items: KEYS are the nine queue keys and the dedup
// set (KEYS[10]); ARGV[1] is room (as enqueueLua), ARGV[2] the dedup window
// in ms (0: no check), then tuples (id, body, lane, mode, due, dedup key):
// lane "" for none (then mode is unused), mode "c" or "b" (on_dead), due
// the unix ms of the first attempt ("" for now), dedup key "" for no check.
// An id the queue holds is skipped, not counted (a record fanned out
// again); an item whose key is in the set within the window, or repeated
// in the batch, is a duplicate: counted, not queued. Due times are compared
// with Redis's clock, as the dedup window is. Returns {added, held,
// {indexes of the duplicate items, 1-based}}; added is -1 when refused for
// room. Its first write is the HSETNX of a body, which Redis refuses when
// out of memory before anything changed (or the duplicates' count when
// every item is a copy).
const enqueueEachLua = unpackLua + laneLua + `
local room = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if room > 0 then
  local held = redis.call('HLEN', KEYS[2])
  if held > room then return {-1, held, {}} end
end
local seen = {}
if window > 0 then
  local keys = {}
  for i = 3, #ARGV, 6 do keys[#keys+1] = ARGV[i+5] end
  if #keys > 0 then seen = getmany('ZMSCORE', KEYS[10], keys) end
end
local n, taken, adds, dups, idx, last = 0, {}, {}, {}, {}, 0
for i = 3, #ARGV, 6 do
  local j = (i - 3) / 6 + 1
  local id, L, k = ARGV[i], ARGV[i+2], ARGV[i+5]
  local due = tonumber(ARGV[i+4])
  if due and due <= lane_now() then due = nil end
  local checked = window > 0 and k ~= ''
  if checked and ((seen[j] and tonumber(seen[j]) > lane_now() - window) or taken[k]) then
    if redis.call('HEXISTS', KEYS[2], id) == 0 then dups[#dups+1] = j end
  elseif redis.call('HSETNX', KEYS[2], id, ARGV[i+1]) == 1 then
    if L ~= '' then
      lane_add(id, L, ARGV[i+3], nil, due and ARGV[i+4])
    elseif due then
      redis.call('ZADD', KEYS[6], due, id)
      idx[#idx+1] = due
      idx[#idx+1] = id
      if due > last then last = due end
    else
      redis.call('RPUSH', KEYS[1], id)
    end
    n = n + 1
    if checked then
      taken[k] = true
      adds[#adds+1] = lane_now()
      adds[#adds+1] = k
    end
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[7], 'enqueued', n) end
if #dups > 0 then redis.call('HINCRBY', KEYS[7], 'duplicates', #dups) end
if #idx > 0 then
  lane_keys()
  after_index(LAFT, lane_now(), idx, last)
end
if #adds > 0 then
  callmany('ZADD', KEYS[10], adds)
  redis.call('PEXPIRE', KEYS[10], window)
end
if window > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', lane_now() - window) end
return {n, redis.call('HLEN', KEYS[2]), dups}
`

// enqueueEachScript is enqueueEachLua. It stores new events, so Redis
// refuses it when out of memory.
var enqueueEachScript = redis.NewScript(enqueueEachLua)

// enqueueEachRoomScript is enqueueEachLua declared allow-oom, for the
// fan-out when Redis is out of memory (see EnqueueWhenFull).
var enqueueEachRoomScript = newOOMScript(enqueueEachLua)

func init() {
	allScripts = append(allScripts, enqueueEachScript)
	oomScripts = append(oomScripts, enqueueEachRoomScript)
}

// queuedEach reports whether a trigger's batch, whose dedup window is w,
// goes through enqueueEachLua: it goes into lanes, or it has both a dedup
// window and delayed items.
func queuedEach(items []Item, w time.Duration) bool {
	return laned(items) || w > 0 && anyDue(items)
}

// eachScript returns the enqueueEachLua variant of an enqueue script.
func (s *Store) eachScript(sc *redis.Script) *redis.Script {
	if sc == enqueueScript {
		return enqueueEachScript
	}
	return s.oom(enqueueEachRoomScript)
}

// eachArgs are enqueueEachLua's arguments for items. When one item has a
// lane, those without one go to the default lane (a batch joining
// publishes from either side of a trigger change); a due time is passed
// only when after now, a dedup key only when the batch has a window.
func eachArgs(room int64, items []Item) []any {
	inLanes := laned(items)
	w := dedupWindow(items)
	var wms int64
	if w > 0 {
		wms = max(w.Milliseconds(), 1)
	}
	now := time.Now()
	args := make([]any, 0, 2+6*len(items))
	args = append(args, room, wms)
	for _, it := range items {
		lane, mode := "", "c"
		if inLanes {
			if lane = it.Lane; lane == "" { // queued while the trigger was not ordered yet
				lane = LaneName("")
			}
			if it.BlockOnDead {
				mode = "b"
			}
		}
		var due any = ""
		if it.Due.After(now) {
			due = it.Due.UnixMilli()
		}
		key := ""
		if w > 0 {
			key = it.DedupKey
		}
		args = append(args, it.ID, it.Event, lane, mode, due, key)
	}
	return args
}
