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

// The archive keeps every accepted event, matched or not, in one Redis
// Stream, sy:{arc}:events, one entry per event ("e": the event's bytes,
// written once whatever the number of triggers it went to). Entry ids are
// Redis's own (<unix ms>-<seq>): the time the event was accepted, so a time
// window is an XRANGE. Retention trims by MINID, size by MAXLEN (an entry
// count the writer derives from the bytes it writes); both approximate
// (`~`), so Redis trims whole macro nodes.
//
// Every archive key is in the {arc} hash slot: on Redis Cluster the
// archive, and the replay jobs beside it, live on the one master that owns
// that slot. Each replay job is a hash, sy:{arc}:replay:<id>, listed in
// sy:{arc}:replays (a ZSET id → creation time, unix ms); the job's
// checkpoint (the last archive entry done) and its counters change only by
// replayCheckpointScript, which also checks that the caller still holds
// the job's lease.

// ArchiveEntry is one archived event.
type ArchiveEntry struct {
	// ID is the stream entry id, "<unix ms>-<seq>": when it was accepted.
	ID string
	// Event is the event (io.cloudevents.v1.CloudEvent bytes).
	Event []byte
}

// Time is when the entry was accepted (from its id).
func (e ArchiveEntry) Time() time.Time { return IDTime(e.ID) }

// ArchiveAppend stores events in the archive in one transaction (all or
// none), trimming the stream to about maxLen entries when maxLen > 0. It
// runs as an accepting write does (see Durability).
func (s *Store) ArchiveAppend(ctx context.Context, events [][]byte, maxLen int64) error {
	if len(events) == 0 {
		return nil
	}
	key := s.keys.Archive()
	return full(s.acceptTx(ctx, key, func(p redis.Pipeliner) {
		for i, ev := range events {
			a := &redis.XAddArgs{Stream: key, Values: []any{"e", ev}}
			if maxLen > 0 && i == len(events)-1 {
				// Trimming once per transaction is enough: Redis trims
				// to the bound whatever was added before.
				a.MaxLen, a.Approx = maxLen, true
			}
			p.XAdd(ctx, a)
		}
	}))
}

// ArchiveTrim removes the entries accepted before cutoff (approximately:
// whole macro nodes) and returns how many went.
func (s *Store) ArchiveTrim(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.rdb.XTrimMinIDApprox(ctx, s.keys.Archive(), strconv.FormatInt(cutoff.UnixMilli(), 10)+"-0", 0).Result()
}

// ArchiveTrimLen trims the archive to about maxLen entries.
func (s *Store) ArchiveTrimLen(ctx context.Context, maxLen int64) (int64, error) {
	return s.rdb.XTrimMaxLenApprox(ctx, s.keys.Archive(), maxLen, 0).Result()
}

// ArchiveRange returns up to count entries from the id start ("-" for the
// first) up to and including the id end ("+" for the last), oldest first.
// dlq.NextID(id) starts right after an entry.
func (s *Store) ArchiveRange(ctx context.Context, start, end string, count int64) ([]ArchiveEntry, error) {
	msgs, err := s.rdb.XRangeN(ctx, s.keys.Archive(), start, end, count).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	return toArchive(msgs), nil
}

// ArchiveRecentBefore returns up to count entries up to and including the
// id end ("+" for the last), newest first.
func (s *Store) ArchiveRecentBefore(ctx context.Context, end string, count int64) ([]ArchiveEntry, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.keys.Archive(), end, "-", count).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	return toArchive(msgs), nil
}

// PrevID returns the stream entry id right before id ("5-3" → "5-2",
// "5-0" → "4-18446744073709551615"); false for "0-0" or a malformed id.
func PrevID(id string) (string, bool) {
	ms, seq, ok := strings.Cut(id, "-")
	m, err1 := strconv.ParseUint(ms, 10, 64)
	q, err2 := strconv.ParseUint(seq, 10, 64)
	switch {
	case !ok || err1 != nil || err2 != nil, m == 0 && q == 0:
		return "", false
	case q > 0:
		return ms + "-" + strconv.FormatUint(q-1, 10), true
	}
	return strconv.FormatUint(m-1, 10) + "-" + strconv.FormatUint(^uint64(0), 10), true
}

func toArchive(msgs []redis.XMessage) []ArchiveEntry {
	out := make([]ArchiveEntry, 0, len(msgs))
	for _, m := range msgs {
		e := ArchiveEntry{ID: m.ID}
		if v, ok := m.Values["e"].(string); ok {
			e.Event = []byte(v)
		}
		out = append(out, e)
	}
	return out
}

// ArchiveInfo describes the archive.
type ArchiveInfo struct {
	// Entries is the number of events held.
	Entries int64
	// Oldest and Newest are the first and last entries' acceptance times
	// (zero when empty).
	Oldest, Newest time.Time
	// Bytes is the stream's memory as Redis reports it (MEMORY USAGE,
	// sampled); -1 when the server does not say (the embedded store).
	Bytes int64
}

// ArchiveInfo reads the archive's size and time span in one round trip.
func (s *Store) ArchiveInfo(ctx context.Context) (ArchiveInfo, error) {
	key := s.keys.Archive()
	var (
		n          *redis.IntCmd
		first, lst *redis.XMessageSliceCmd
		mem        *redis.IntCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.XLen(ctx, key)
		first = p.XRangeN(ctx, key, "-", "+", 1)
		lst = p.XRevRangeN(ctx, key, "+", "-", 1)
		mem = p.MemoryUsage(ctx, key, 16)
		return nil
	})
	info := ArchiveInfo{Bytes: -1}
	if err := n.Err(); err != nil {
		return info, err
	}
	if err := first.Err(); err != nil && !errors.Is(err, redis.Nil) {
		return info, err
	}
	_ = err // MEMORY USAGE fails on the embedded store, and answers nil for a missing key
	info.Entries = n.Val()
	if m := first.Val(); len(m) > 0 {
		info.Oldest = IDTime(m[0].ID)
	}
	if m := lst.Val(); len(m) > 0 {
		info.Newest = IDTime(m[0].ID)
	}
	if mem.Err() == nil {
		info.Bytes = mem.Val()
	} else if errors.Is(mem.Err(), redis.Nil) {
		info.Bytes = 0
	}
	return info, nil
}

// Replay job states (the "state" field of a job's hash).
const (
	ReplayRunning   = "running"
	ReplaySucceeded = "succeeded"
	ReplayFailed    = "failed"
	ReplayCancelled = "cancelled"
)

// ReplayJob is a replay job as stored.
type ReplayJob struct {
	ID string
	// Spec is what the job does (switchyard.v1.ReplaySpec bytes; the store
	// does not read it).
	Spec  []byte
	State string
	// Cursor is the last archive entry id done ("" before the first).
	Cursor string
	// Total is the entries in the job's window when it started; 0 when
	// not known.
	Total int64
	// Scanned counts archive entries read, Matched those selected (by the
	// filter and a trigger), Sent the deliveries queued (or, for a dry
	// run, that would be).
	Scanned, Matched, Sent int64
	// Owner is the instance running it while its lease lasts.
	Owner string
	Lease time.Time
	// Created, Updated and Finished (zero while running).
	Created, Updated, Finished time.Time
	// Error says why a failed job failed.
	Error string
}

var replayFields = []string{"spec", "state", "cursor", "scanned", "matched", "sent", "owner", "lease", "created", "updated", "finished", "error", "total"}

// CreateReplay stores a new running job and lists it (total: the events
// in its window, 0 when not known); keep bounds the jobs listed: the
// oldest finished ones beyond it are deleted.
func (s *Store) CreateReplay(ctx context.Context, id string, spec []byte, total int64, now time.Time, keep int) error {
	ms := nowMS(now)
	err := s.run(ctx, replayCreateScript, []string{s.keys.Replay(id), s.keys.Replays()},
		id, spec, ms, keep, s.keys.Replay(""), total).Err()
	return full(err)
}

// GetReplay reads one job; ErrNotFound when there is none.
func (s *Store) GetReplay(ctx context.Context, id string) (ReplayJob, error) {
	vals, err := s.rdb.HMGet(ctx, s.keys.Replay(id), replayFields...).Result()
	if err != nil {
		return ReplayJob{}, err
	}
	if vals[1] == nil {
		return ReplayJob{}, fmt.Errorf("replay %q: %w", id, ErrNotFound)
	}
	return replayFrom(id, vals), nil
}

// ListReplays reads every listed job, newest first.
func (s *Store) ListReplays(ctx context.Context) ([]ReplayJob, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.keys.Replays(), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.keys.Replay(id), replayFields...)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]ReplayJob, 0, len(ids))
	for i, id := range ids {
		if v := cmds[i].Val(); len(v) == len(replayFields) && v[1] != nil {
			out = append(out, replayFrom(id, v))
		}
	}
	return out, nil
}

func replayFrom(id string, v []any) ReplayJob {
	return ReplayJob{
		ID: id, Spec: []byte(toString(v[0])), State: toString(v[1]), Cursor: toString(v[2]),
		Scanned: toInt64(v[3]), Matched: toInt64(v[4]), Sent: toInt64(v[5]),
		Owner: toString(v[6]), Lease: msTime(v[7]),
		Created: msTime(v[8]), Updated: msTime(v[9]), Finished: msTime(v[10]), Error: toString(v[11]),
		Total: toInt64(v[12]),
	}
}

// LeaseReplay gives owner the running job id for lease when nobody else
// holds it (no owner, or the owner's lease ran out); false when the job is
// not running or another instance holds it.
func (s *Store) LeaseReplay(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error) {
	n, err := s.run(ctx, replayLeaseScript, []string{s.keys.Replay(id)}, owner, nowMS(now), lease.Milliseconds()).Int64()
	return n == 1, full(err)
}

// ReplayProgress is one checkpoint of a replay job.
type ReplayProgress struct {
	// Cursor is the last archive entry done; "" keeps the stored one.
	Cursor string
	// Counts to add.
	Scanned, Matched, Sent int64
	// Final, when set, ends the job in that state (Error says why it
	// failed).
	Final string
	Error string
}

// ErrLeaseLost says a job's checkpoint was refused: another instance took
// it over (this one was too slow to renew its lease), or the job was
// cancelled (State says which state it is in).
type ErrLeaseLost struct{ State string }

func (e *ErrLeaseLost) Error() string {
	if e.State != ReplayRunning {
		return "replay " + e.State
	}
	return "replay lease taken over by another instance"
}

// CheckpointReplay records progress and renews owner's lease, atomically,
// only while owner holds the lease of the running job; otherwise
// *ErrLeaseLost.
func (s *Store) CheckpointReplay(ctx context.Context, id, owner string, p ReplayProgress, now time.Time, lease time.Duration) error {
	res, err := s.run(ctx, replayCheckpointScript, []string{s.keys.Replay(id)}, owner, nowMS(now), lease.Milliseconds(),
		p.Cursor, p.Scanned, p.Matched, p.Sent, p.Final, p.Error).Text()
	if err != nil {
		return full(err)
	}
	if res != "OK" {
		return &ErrLeaseLost{State: res}
	}
	return nil
}

// ReleaseReplay gives up owner's lease of a job (a graceful stop), so
// another instance may take it at once; a lease owner no longer holds is
// left alone.
func (s *Store) ReleaseReplay(ctx context.Context, id, owner string) error {
	return s.run(ctx, replayReleaseScript, []string{s.keys.Replay(id)}, owner).Err()
}

// CancelReplay ends a running job as cancelled and returns the state it
// was in (ErrNotFound when there is none); a finished job is unchanged.
func (s *Store) CancelReplay(ctx context.Context, id string, now time.Time) (string, error) {
	st, err := s.run(ctx, replayCancelScript, []string{s.keys.Replay(id)}, nowMS(now)).Text()
	if err != nil {
		return "", err
	}
	if st == "" {
		return "", fmt.Errorf("replay %q: %w", id, ErrNotFound)
	}
	return st, nil
}

// RunningReplays lists the ids of the running jobs whose lease is free at
// now (none, or run out), oldest first.
func (s *Store) RunningReplays(ctx context.Context, now time.Time) ([]string, error) {
	jobs, err := s.ListReplays(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := len(jobs) - 1; i >= 0; i-- {
		j := jobs[i]
		if j.State == ReplayRunning && (j.Owner == "" || !j.Lease.After(now)) {
			out = append(out, j.ID)
		}
	}
	return out, nil
}

// replayCreateScript: KEYS job, list; ARGV id, spec, now, keep, job key
// prefix, total. Deletes the oldest finished jobs beyond keep.
var replayCreateScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'state', 'running', 'cursor', '', 'scanned', 0, 'matched', 0, 'sent', 0,
  'owner', '', 'lease', 0, 'created', ARGV[3], 'updated', ARGV[3], 'finished', 0, 'error', '', 'total', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local keep = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[2])
if n > keep then
  local ids = redis.call('ZRANGE', KEYS[2], 0, n - keep - 1)
  for _, id in ipairs(ids) do
    local key = ARGV[5] .. id
    if redis.call('HGET', key, 'state') ~= 'running' then
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[2], id)
    end
  end
end
return 1
`)

// replayLeaseScript: KEYS job; ARGV owner, now, lease ms.
var replayLeaseScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'state', 'owner', 'lease')
if v[1] ~= 'running' then return 0 end
if v[2] ~= ARGV[1] and v[2] ~= '' and tonumber(v[3]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'lease', tonumber(ARGV[2]) + tonumber(ARGV[3]))
return 1
`)

// replayCheckpointScript: KEYS job; ARGV owner, now, lease ms, cursor,
// scanned, matched, sent, final state, error. Answers OK, or the job's
// state when the caller does not hold its lease (or it is not running).
var replayCheckpointScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'state', 'owner')
if not v[1] then return 'gone' end
if v[1] ~= 'running' then return v[1] end
if v[2] ~= ARGV[1] then return 'running' end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'cursor', ARGV[4]) end
redis.call('HINCRBY', KEYS[1], 'scanned', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'matched', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'sent', ARGV[7])
redis.call('HSET', KEYS[1], 'updated', ARGV[2], 'lease', tonumber(ARGV[2]) + tonumber(ARGV[3]))
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[1], 'state', ARGV[8], 'finished', ARGV[2], 'error', ARGV[9], 'owner', '', 'lease', 0)
end
return 'OK'
`)

// replayReleaseScript: KEYS job; ARGV owner.
var replayReleaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'owner', '', 'lease', 0)
end
return 1
`)

// replayCancelScript: KEYS job; ARGV now. Answers the previous state, ""
// when there is no job.
var replayCancelScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return '' end
if st == 'running' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished', ARGV[1], 'updated', ARGV[1], 'owner', '', 'lease', 0)
end
return st
`)
