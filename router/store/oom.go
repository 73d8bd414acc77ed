package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// What Redis refuses once it is out of memory (used memory above maxmemory
// with the noeviction policy), measured on Redis 7.0:
//
//   - Commands that may grow memory (the "denyoom" ones: SET, HSET,
//     HINCRBY, RPUSH, ZADD, XADD, INCR, ...) answer "OOM command not
//     allowed". Commands that only shrink or read (HDEL, ZREM, LPOP, XACK,
//     XDEL, XTRIM, DEL, UNLINK, XREADGROUP, XAUTOCLAIM, PUBLISH) run.
//   - MULTI/EXEC is refused as a whole: while out of memory Redis queues no
//     command at all inside MULTI, not even a read, and EXEC answers
//     EXECABORT.
//   - A script without flags starts, but its first write that may grow
//     memory fails unless an earlier command of the same run already
//     wrote something; a script declaring flags in a shebang line is
//     refused before it starts unless its flags include allow-oom, and then
//     every command in it runs. Flags exist from Redis 7.0 on, and the
//     embedded store (miniredis) does not parse the shebang.
//
// Ingest must stop when Redis is full, and delivery must go on: acks,
// claims, retries and dead-lettering are what shrink the queues. So the
// scripts that settle or move events already stored (oomScript) declare
// allow-oom where the server takes flags, and the steps that ran in MULTI
// for that purpose run without it once MULTI is refused (see transaction);
// the steps that store new events (publish, fan-out, replays) keep failing
// with ErrFull until memory is free again.

// allowOOM is the shebang line of the scripts that run when Redis is out of
// memory.
const allowOOM = "#!lua flags=allow-oom\n"

// oomScript is a script that must run when Redis is out of memory: it only
// settles or moves events already stored (its growth is bounded by what it
// settles: an attempt number, a lease, a history, a refused reply), or
// frees memory.
type oomScript struct {
	plain   *redis.Script // for servers without script flags
	flagged *redis.Script // allowOOM + the same body
}

func newOOMScript(src string) *oomScript {
	return &oomScript{plain: redis.NewScript(src), flagged: redis.NewScript(allowOOM + src)}
}

// oom returns the variant of sc this server runs.
func (s *Store) oom(sc *oomScript) *redis.Script {
	if s.flags.Load() {
		return sc.flagged
	}
	return sc.plain
}

// probeFlags reports whether the server takes script flags (Redis 7.0 and
// later; not the embedded store).
func (s *Store) probeFlags(ctx context.Context) bool {
	return s.rdb.ScriptLoad(ctx, allowOOM+"return 1").Err() == nil
}

// IsFull reports whether err, or an error it wraps, is Redis refusing a
// command because it is out of memory; ErrFull counts too.
func IsFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrFull) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) && isOOMMessage(re.Error()) {
		return true
	}
	// Joined errors (a pipeline's) are searched one by one.
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if IsFull(e) {
				return true
			}
		}
	}
	return false
}

func isOOMMessage(msg string) bool { return strings.HasPrefix(msg, "OOM ") }

// execErr returns the error of a MULTI/EXEC: EXECABORT says only that the
// transaction was discarded, its commands say why (out of memory, say).
func execErr(cmds []redis.Cmder, err error) error {
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		if cerr := c.Err(); cerr != nil && isOOMMessage(cerr.Error()) {
			return cerr
		}
	}
	return err
}

// full wraps err with ErrFull when Redis refused for want of memory, so
// that callers can tell with errors.Is.
func full(err error) error {
	if err != nil && !errors.Is(err, ErrFull) && IsFull(err) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// refusedWhole reports whether a transaction's commands were all refused
// before running because Redis is out of memory (see the notes above): each
// command answers OOM or EXECABORT, and nothing ran.
func refusedWhole[C redis.Cmder](cmds []C) bool {
	if len(cmds) == 0 {
		return false
	}
	for _, c := range cmds {
		err := c.Err()
		if err == nil || !(isOOMMessage(err.Error()) || strings.HasPrefix(err.Error(), "EXECABORT")) {
			return false
		}
	}
	return true
}

// multi runs fn's commands in one MULTI/EXEC, and runs them again as a
// plain pipeline when Redis refused the MULTI for want of memory (it then
// queues no command at all, reads included). For reads that should see one
// moment of the store (while Redis is full only deletions can come between
// the pipeline's reads, which an instance reading its triggers to start, or
// to keep its view, can live with) and for deletions that may run twice.
func (s *Store) multi(ctx context.Context, fn func(p redis.Pipeliner) error) ([]redis.Cmder, error) {
	cmds, err := s.rdb.TxPipelined(ctx, fn)
	if err != nil && refusedWhole(cmds) {
		cmds, err = s.rdb.Pipelined(ctx, fn)
	}
	return cmds, err
}

// logGroupExists reports whether the fan-out's consumer group exists (for
// EnsureLogGroup, when Redis is out of memory and refuses to create it even
// where it exists).
func (s *Store) logGroupExists(ctx context.Context) bool {
	groups, err := s.rdb.XInfoGroups(ctx, s.keys.Log()).Result()
	if err != nil {
		return false
	}
	for _, g := range groups {
		if g.Name == LogGroup {
			return true
		}
	}
	return false
}

// MemoryState is what the server says about its memory limit.
type MemoryState struct {
	// Known is false when the server does not report it (the embedded
	// store).
	Known bool
	// Used and Max are used_memory and maxmemory in bytes (Max 0: no
	// limit); NotCounted is the part of Used that Redis leaves out when it
	// compares with Max (replication and AOF buffers).
	Used, Max, NotCounted int64
	// Policy is maxmemory-policy.
	Policy string
}

// Full reports whether the server refuses writes for want of memory now, as
// Redis decides it: used memory, less what it does not count, above the
// limit.
func (m MemoryState) Full() bool { return m.Known && m.Max > 0 && m.Used-m.NotCounted > m.Max }

// Evicts reports whether the policy deletes keys to make room: every
// allkeys-* policy may delete any key, a queue included. The volatile-*
// policies delete only keys with a time to live, which Switchyard gives to
// nothing that holds an event (only to a webhook source's short-lived
// marks), so they are safe for the queues.
func (m MemoryState) Evicts() bool { return strings.HasPrefix(m.Policy, "allkeys-") }

// Memory reads the server's memory figures (INFO memory). A server that
// answers without them (the embedded store refuses the section) gives a
// state that is not Known, and no error.
func (s *Store) Memory(ctx context.Context) (MemoryState, error) {
	info, err := s.rdb.Info(ctx, "memory").Result()
	var re redis.Error
	if errors.As(err, &re) {
		return MemoryState{}, nil
	}
	if err != nil {
		return MemoryState{}, err
	}
	return parseMemoryInfo(info), nil
}

// parseMemoryInfo reads the fields of INFO memory that MemoryState holds;
// Known only when used_memory, maxmemory and maxmemory_policy are all there.
func parseMemoryInfo(info string) MemoryState {
	var m MemoryState
	var used, limit, policy bool
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		n, nerr := strconv.ParseInt(v, 10, 64)
		switch {
		case k == "used_memory" && nerr == nil:
			m.Used, used = n, true
		case k == "maxmemory" && nerr == nil:
			m.Max, limit = n, true
		case k == "mem_not_counted_for_evict" && nerr == nil:
			m.NotCounted = n
		case k == "maxmemory_policy":
			m.Policy, policy = v, true
		}
	}
	m.Known = used && limit && policy
	return m
}

// ackLogScript marks ingest log records fanned out: XACK and XDEL them and
// take them off the admitted counts (ARGV: n ids, then trigger/count pairs).
// A script rather than MULTI so that it runs when Redis is out of memory:
// it only frees memory. KEYS: log, admitted. ARGV[1] the group, ARGV[2] n.
var ackLogScript = newOOMScript(`
local n = tonumber(ARGV[2])
local ids = {}
for i = 3, 2 + n do ids[#ids+1] = ARGV[i] end
for i = 1, #ids, 4000 do
  local part = {unpack(ids, i, math.min(i + 3999, #ids))}
  redis.call('XACK', KEYS[1], ARGV[1], unpack(part))
  redis.call('XDEL', KEYS[1], unpack(part))
end
for i = 3 + n, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], -tonumber(ARGV[i+1]))
end
return #ids
`)

// ackLog runs ackLogScript (see AckLog).
func (s *Store) ackLog(ctx context.Context, ids []string, counts map[string]int64) error {
	args := make([]any, 0, 2+len(ids)+2*len(counts))
	args = append(args, LogGroup, len(ids))
	for _, id := range ids {
		args = append(args, id)
	}
	for t, n := range counts {
		args = append(args, t, n)
	}
	return full(s.run(ctx, s.oom(ackLogScript), []string{s.keys.Log(), s.keys.Admitted()}, args...).Err())
}

// dlqEvictChunk bounds the dead letters one script call evicts: a cap
// lowered from 100 million to 10 must not hold Redis for the seconds that
// evicting them all at once takes. Evictions beyond it are spread over
// further calls (CapDLQ, TrimDLQ), each of them short.
const dlqEvictChunk = 1000

// capDLQLua defines cap_dlq(cap), which brings the dead-letter stream
// closer to at most cap entries (0: unbounded), oldest evicted first, at
// most dlqEvictChunk per call, and counts what it evicts. XTRIM MAXLEN with
// an exact length evicts exactly the excess it is given. Returns the
// number evicted.
var capDLQLua = `
local function cap_dlq(cap)
  if cap <= 0 then return 0 end
  local len = redis.call('XLEN', KEYS[8])
  local over = len - cap
  if over <= 0 then return 0 end
  if over > ` + strconv.Itoa(dlqEvictChunk) + ` then over = ` + strconv.Itoa(dlqEvictChunk) + ` end
  local n = redis.call('XTRIM', KEYS[8], 'MAXLEN', '=', len - over)
  if n > 0 then redis.call('HINCRBY', KEYS[7], 'dlq_evicted', n) end
  return n
end
`

// capScript evicts dead letters beyond ARGV[1] entries, one chunk.
// Returns the number evicted.
var capScript = newOOMScript(capDLQLua + `
return cap_dlq(tonumber(ARGV[1]))
`)

// trimScript deletes dead letters older than ARGV[1] (a stream id), at
// most about ARGV[2] per call, counting them as evicted when ARGV[3] is
// "1": XTRIM MINID with "~" and LIMIT deletes whole stream nodes only, and
// at most the limit; once it deletes nothing, what is left older than the
// id is less than one node, which an exact XTRIM takes. Returns the number
// deleted.
var trimScript = newOOMScript(`
local n = redis.call('XTRIM', KEYS[8], 'MINID', '~', ARGV[1], 'LIMIT', ARGV[2])
if n == 0 then n = redis.call('XTRIM', KEYS[8], 'MINID', '=', ARGV[1]) end
if n > 0 and ARGV[3] == '1' then redis.call('HINCRBY', KEYS[7], 'dlq_evicted', n) end
return n
`)

// maxChunksPerCall bounds the chunks CapDLQ and TrimDLQ evict in one call;
// the sweep calls them again a minute later.
const maxChunksPerCall = 1000

// CapDLQ evicts the trigger's oldest dead letters beyond capacity (0:
// unbounded), counting them, in calls of at most dlqEvictChunk each, so
// other clients are served in between. Returns the number evicted.
func (s *Store) CapDLQ(ctx context.Context, trigger string, capacity int64) (int64, error) {
	if capacity <= 0 {
		return 0, nil
	}
	var total int64
	for range maxChunksPerCall {
		n, err := s.run(ctx, s.oom(capScript), s.keys.Queue(trigger).all(), capacity).Int64()
		if err != nil {
			return total, fmt.Errorf("cap dead letters of %s: %w", trigger, err)
		}
		total += n
		if n < dlqEvictChunk {
			break
		}
	}
	return total, nil
}

// TrimDLQ evicts the trigger's dead letters older than before, counting
// them, in calls that each evict a bounded number. Returns the number
// evicted.
func (s *Store) TrimDLQ(ctx context.Context, trigger string, before time.Time) (int64, error) {
	return s.trimDLQ(ctx, trigger, before, true)
}

// trimDLQ deletes the trigger's dead letters older than before, counted as
// evicted or not, in bounded calls.
func (s *Store) trimDLQ(ctx context.Context, trigger string, before time.Time, evicted bool) (int64, error) {
	minID := strconv.FormatInt(before.UnixMilli(), 10)
	var total int64
	for range maxChunksPerCall {
		n, err := s.run(ctx, s.oom(trimScript), s.keys.Queue(trigger).all(), minID, dlqEvictChunk, boolArg(evicted)).Int64()
		if err != nil {
			return total, fmt.Errorf("trim dead letters of %s: %w", trigger, err)
		}
		total += n
		if n == 0 {
			break
		}
	}
	return total, nil
}

// purgeAllScript deletes a dead-letter stream and returns how many entries
// it held. UNLINK frees the memory in the background, so a large stream
// does not hold Redis; a script rather than MULTI so that it runs when
// Redis is out of memory, when purging is what an operator does.
var purgeAllScript = newOOMScript(`
local n = redis.call('XLEN', KEYS[1])
redis.call('UNLINK', KEYS[1])
return n
`)
