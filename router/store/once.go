package store

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Once is the HASH (in the ingest log's slot) of the publishes made at most
// once per sequence number: key → the last sequence number published. A
// scheduled source keys it by its name and publishes each tick with the
// tick's time as the sequence number, so however many instances try a tick,
// one publishes it.
func (k Keys) Once() string { return k.p + ":{in}:once" }

// claimOnceScript appends records to the ingest log only if ARGV[2] is
// greater than the sequence number stored for ARGV[1] in the Once hash, and
// stores it, in one step: the claim and the events land together or not at
// all. ARGV[3] is the number of records, each three arguments (event,
// triggers joined by commas, due unix ms or ""), then pairs (trigger,
// count) for the admitted counts. KEYS: log, admitted, once. Returns 1 when
// it appended (or had nothing to append but stored the number), 0 when the
// number was not new.
var claimOnceScript = redis.NewScript(`
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '')
local seq = tonumber(ARGV[2])
if last and last >= seq then return 0 end
local n = tonumber(ARGV[3])
local i = 4
for r = 1, n do
  if ARGV[i+2] == '' then
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i], 't', ARGV[i+1])
  else
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i], 't', ARGV[i+1], 'd', ARGV[i+2])
  end
  i = i + 3
end
while i < #ARGV do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i+1])
  i = i + 2
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1
`)

// AppendLogOnce appends recs to the ingest log as AppendLog does, only if
// seq is greater than the last sequence number published under key, and
// records seq under key in the same atomic step. It reports whether seq was
// new (recs may be empty: the number is recorded all the same). Like
// AppendLog it returns once Redis has the records (and the replicas the
// store's Durability asks).
func (s *Store) AppendLogOnce(ctx context.Context, key string, seq int64, recs []LogRecord) (bool, error) {
	args := make([]any, 0, 3+3*len(recs))
	args = append(args, key, seq, len(recs))
	counts := map[string]int64{}
	for _, r := range recs {
		d := ""
		if !r.Due.IsZero() {
			d = strconv.FormatInt(r.Due.UnixMilli(), 10)
		}
		args = append(args, r.Event, strings.Join(r.Triggers, ","), d)
		for _, t := range r.Triggers {
			counts[t]++
		}
	}
	for t, n := range counts {
		args = append(args, t, n)
	}
	keys := []string{s.keys.Log(), s.keys.Admitted(), s.keys.Once()}
	var cmd *redis.Cmd
	// The script is sent whole inside the MULTI (EVALSHA could fail
	// NOSCRIPT there), and the MULTI makes go-redis never resend it.
	err := s.acceptTx(ctx, keys[0], func(p redis.Pipeliner) {
		cmd = claimOnceScript.Eval(ctx, p, keys, args...)
	})
	if cmd != nil && cmd.Err() == nil {
		n, _ := cmd.Int64()
		return n == 1, full(err)
	}
	return false, full(err)
}

// LastOnce returns the last sequence number published under key (see
// AppendLogOnce); ok is false when none was.
func (s *Store) LastOnce(ctx context.Context, key string) (seq int64, ok bool, err error) {
	v, err := s.rdb.HGet(ctx, s.keys.Once(), key).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	seq, err = strconv.ParseInt(v, 10, 64)
	return seq, err == nil, err
}
