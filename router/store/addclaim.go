package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// addClaimLua queues the new ids of a direct publish (ARGV[6..]) whose
// bodies the transaction's HSET just stored, and claims for the trigger as
// claimScript does with ARGV[1..5], in one script: at ordinary rates a
// publish finds its trigger idle, and this is then the whole of its write.
//
// When nothing waits in the ready list, the first new ids start at once,
// without passing through it (their attempt is the first: the ids are new).
// Otherwise they join its tail and the claim takes from its head, so an
// event never overtakes one queued before it. It leaves the claim loop's
// housekeeping (due retries, expired leases, the next times to look) to
// the claim loop and the sweep, which wake for them: the reply's next_due
// and next_lease are empty. Returns claimScript's reply; items started
// here carry an empty body, which the caller has.
const addClaimLua = unpackLua + wideLua + slotsLua + `
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local inline = tonumber(ARGV[5])
local ids = {}
for i = 6, #ARGV do ids[#ids+1] = ARGV[i] end
local n = #ids
redis.call('HINCRBY', KEYS[7], 'enqueued', n)
local waiting = redis.call('LLEN', KEYS[1])
local free, state, untl = slots(now, want, limit)
local out = {}
local k = 0
if waiting == 0 and free > 0 then
  k = math.min(free, n)
  local aset, leases = {}, {}
  for j = 1, k do
    aset[#aset+1] = ids[j]
    aset[#aset+1] = 1
    leases[#leases+1] = now + lease
    leases[#leases+1] = ids[j]
    out[#out+1] = {ids[j], '1', '', 0, '', ''}
  end
  widen()
  callmany('HSET', KEYS[3], aset)
  callmany('ZADD', KEYS[5], leases)
end
if k < n then
  local rest = {}
  for j = k + 1, n do rest[#rest+1] = ids[j] end
  callmany('RPUSH', KEYS[1], rest)
  waiting = waiting + #rest
  if k == 0 and free > 0 then
    local got = redis.call('LPOP', KEYS[1], free)
    if got and #got > 0 then
      take(got, now, lease, inline, out)
      waiting = waiting - #got
    end
  end
end
return {out, waiting, '', '', state, tostring(untl), redis.call('HLEN', KEYS[2])}
`

// addClaimScript is addClaimLua. It runs inside the publish's transaction
// after the HSET of the bodies, which Redis refuses when out of memory (and
// then the whole transaction): it needs no allow-oom variant.
var addClaimScript = redis.NewScript(addClaimLua)

// addsAndClaims reports whether a direct publish of items to a trigger that
// claims with it goes through addClaimScript: plain events, due now (the
// ordered, deduplicated and delayed ones have scripts of their own).
func addsAndClaims(items []Item, now time.Time) bool {
	for _, it := range items {
		if it.Lane != "" || it.DedupKey != "" || it.Due.After(now) {
			return false
		}
	}
	return len(items) > 0
}

// addClaimCmds queues a direct publish's writes for trig on p: the HSET of
// the bodies, then addClaimScript with the claim c. It returns the
// script's command.
func (s *Store) addClaimCmds(ctx context.Context, p redis.Pipeliner, trig string, items []Item, now time.Time, c ClaimRequest) (hset *redis.IntCmd, script *redis.Cmd) {
	q := s.keys.Queue(trig)
	pairs := make([]any, 0, 2*len(items))
	for _, it := range items {
		pairs = append(pairs, it.ID, it.Event)
	}
	hset = p.HSet(ctx, q.Events, pairs...)
	return hset, addClaimScript.EvalSha(ctx, p, q.all(), addClaimArgs(now, c, items)...)
}

func addClaimArgs(now time.Time, c ClaimRequest, items []Item) []any {
	args := append(make([]any, 0, 5+len(items)), claimArgs(now, c.Want, c.Limit, c.Lease)...)
	for _, it := range items {
		args = append(args, it.ID)
	}
	return args
}

// addClaimed reads the replies of addClaimScript (trigger → command): the
// queue sizes and the claims, whose items started without their bodies
// read get them from the batch (see scriptReplies for a script Redis
// lost). An error is a write's, but for a *ReplicationError, whose writes
// landed; a claim that failed after its write is in claimErrs, and its
// trigger's queue waits for an ordinary Claim.
func (s *Store) addClaimed(ctx context.Context, cmds map[string]*redis.Cmd, batches map[string][]Item, now time.Time, claims map[string]ClaimRequest) (held map[string]int64, claimed map[string]ClaimResult, claimErrs []error, err error) {
	held = make(map[string]int64, len(cmds))
	claimed = make(map[string]ClaimResult, len(cmds))
	err = s.scriptReplies(ctx, cmds, func(p redis.Pipeliner, trig string) *redis.Cmd {
		return addClaimScript.EvalSha(ctx, p, s.keys.Queue(trig).all(), addClaimArgs(now, claims[trig], batches[trig])...)
	}, func(trig string, v []any) error {
		cerr, err := s.addClaimResult(ctx, trig, v, batches[trig], held, claimed)
		if cerr != nil {
			claimErrs = append(claimErrs, cerr)
		}
		return err
	})
	return held, claimed, claimErrs, err
}

// addClaimResult records one addClaimScript reply v for trig into held
// and claimed. err is a reply of another shape; claimErr a claim that
// failed after the write (reading bodies, releasing orphans).
func (s *Store) addClaimResult(ctx context.Context, trig string, v []any, items []Item, held map[string]int64, claimed map[string]ClaimResult) (claimErr, err error) {
	if err := replyLen(v, 7); err != nil {
		return nil, fmt.Errorf("queue %s: %w", trig, err)
	}
	if list, ok := v[0].([]any); ok && len(list) > 0 {
		bodies := make(map[string][]byte, len(items))
		for _, it := range items {
			bodies[it.ID] = it.Event
		}
		for _, it := range list {
			if f, ok := it.([]any); ok && len(f) == 6 && f[5] == "" {
				if b, ok := bodies[toString(f[0])]; ok {
					f[5] = string(b)
				}
			}
		}
	}
	held[trig] = toInt64(v[6])
	res, err := s.claimed(ctx, trig, v)
	if err != nil {
		// The events are queued: the claim's failure is not the write's.
		return err, nil
	}
	claimed[trig] = res
	return nil, nil
}
