package store

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// dedupAddLua is the dedup check of a direct publish (Add, AddAndClaim),
// whose ids are new: it runs in the transaction right after the HSET of
// the events' bodies, so the bodies stay out of Lua (copying them through
// the Lua VM costs Redis more than the writes; see claimScript), and takes
// (id, dedup key) pairs after the window in ms (ARGV[1]). A copy's body is
// deleted again (HDEL) in the same transaction, so nothing of it remains;
// the fresh ids are queued and their keys remembered as dedupEnqueueLua
// does. Returns {added, held, {indexes of the duplicate items, 1-based}}.
const dedupAddLua = unpackLua + `
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keys = {}
for i = 3, #ARGV, 2 do keys[#keys+1] = ARGV[i] end
local seen = {}
if #keys > 0 then seen = getmany('ZMSCORE', KEYS[10], keys) end
local taken, fresh, adds, dropped, dups = {}, {}, {}, {}, {}
for j = 1, #keys do
  local id, k = ARGV[2*j], keys[j]
  if k ~= '' and ((seen[j] and tonumber(seen[j]) > now - window) or taken[k]) then
    dropped[#dropped+1] = id
    dups[#dups+1] = j
  else
    fresh[#fresh+1] = id
    if k ~= '' then
      taken[k] = true
      adds[#adds+1] = now
      adds[#adds+1] = k
    end
  end
end
if #dropped > 0 then
  callmany('HDEL', KEYS[2], dropped)
  redis.call('HINCRBY', KEYS[7], 'duplicates', #dropped)
end
if #fresh > 0 then
  callmany('RPUSH', KEYS[1], fresh)
  redis.call('HINCRBY', KEYS[7], 'enqueued', #fresh)
end
if #adds > 0 then
  callmany('ZADD', KEYS[10], adds)
  redis.call('PEXPIRE', KEYS[10], window)
end
redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now - window)
return {#fresh, redis.call('HLEN', KEYS[2]), dups}
`

// dedupAddScript is dedupAddLua. It runs inside the direct publish's
// transaction, after the HSET that Redis refuses when out of memory (and
// then refuses the whole transaction): it needs no allow-oom variant.
var dedupAddScript = redis.NewScript(dedupAddLua)

// dedupAddCmds queues the writes of a direct publish for a trigger with a
// dedup window on p: the HSET of the bodies, then dedupAddScript. It
// returns the script's command.
func (s *Store) dedupAddCmds(ctx context.Context, p redis.Pipeliner, trig string, window time.Duration, items []Item) (hset *redis.IntCmd, script *redis.Cmd) {
	pairs := make([]any, 0, 2*len(items))
	for _, it := range items {
		pairs = append(pairs, it.ID, it.Event)
	}
	hset = p.HSet(ctx, s.keys.Queue(trig).Events, pairs...)
	return hset, dedupAddScript.EvalSha(ctx, p, s.dedupKeys(trig), dedupAddArgs(window, items)...)
}

// dedupAddArgs returns dedupAddLua's arguments for items.
func dedupAddArgs(window time.Duration, items []Item) []any {
	args := make([]any, 0, 1+2*len(items))
	args = append(args, max(window.Milliseconds(), 1))
	for _, it := range items {
		args = append(args, it.ID, it.DedupKey)
	}
	return args
}
