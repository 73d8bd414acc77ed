package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Version names a state of the trigger definitions: the store's epoch and
// the revision within it. Every trigger change increments the revision; the
// epoch changes only when the store lost its data (see Keys.Epoch), so two
// versions compare only within one epoch. The zero Version is "nothing".
type Version struct {
	Epoch string
	Rev   int64
}

// Covers reports whether a view at v holds every change up to w.
func (v Version) Covers(w Version) bool { return v.Epoch != "" && v.Epoch == w.Epoch && v.Rev >= w.Rev }

// String is the stored form, "<epoch> <rev>" ("" for the zero Version).
func (v Version) String() string {
	if v.Epoch == "" {
		return ""
	}
	return v.Epoch + " " + strconv.FormatInt(v.Rev, 10)
}

// ParseVersion parses the stored form; ok is false for anything else.
func ParseVersion(s string) (v Version, ok bool) {
	epoch, rev, found := strings.Cut(s, " ")
	if !found || !validEpoch(epoch) {
		return Version{}, false
	}
	n, err := strconv.ParseInt(rev, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != rev {
		return Version{}, false
	}
	return Version{Epoch: epoch, Rev: n}, true
}

// validEpoch accepts what NewEpoch makes, and any other short token without
// spaces (an epoch is opaque).
func validEpoch(s string) bool {
	return s != "" && len(s) <= 64 && !strings.ContainsAny(s, " \t\r\n")
}

// Notice is one message on the config channel. The scripts that change
// triggers publish a change notice in the same step as the revision they
// made, so a subscriber hears the revisions of an epoch in order, each once,
// unless its connection dropped (then it misses some: a gap in the
// revisions tells it). Instances publish an acknowledgement when they serve
// a new version.
//
// Wire forms: "c <epoch> <rev> <trigger>" (a change of that trigger; an
// empty trigger name means "re-read every trigger") and
// "a <epoch> <rev> <instance id>" (that instance serves this version).
type Notice struct {
	// Ack is set for an acknowledgement, clear for a change.
	Ack bool
	// Version is the revision the change made, or the one acknowledged.
	Version Version
	// Trigger names the changed trigger ("" for every trigger).
	Trigger string
	// Instance names the acknowledging instance.
	Instance string
}

// ParseNotice parses a config channel message; ok is false for anything it
// does not recognise (older instances published bare trigger names).
func ParseNotice(payload string) (n Notice, ok bool) {
	parts := strings.SplitN(payload, " ", 4)
	if len(parts) != 4 {
		return Notice{}, false
	}
	v, ok := ParseVersion(parts[1] + " " + parts[2])
	if !ok {
		return Notice{}, false
	}
	switch parts[0] {
	case "c":
		if strings.ContainsAny(parts[3], " \t\r\n") {
			return Notice{}, false
		}
		return Notice{Version: v, Trigger: parts[3]}, true
	case "a":
		if parts[3] == "" {
			return Notice{}, false
		}
		return Notice{Ack: true, Version: v, Instance: parts[3]}, true
	}
	return Notice{}, false
}

// Member is one registered instance.
type Member struct {
	ID string
	// Heartbeat is when it last announced itself (Redis clock).
	Heartbeat time.Time
	// Served is the version it serves (zero before its first load).
	Served Version
}

// Members is the registry as read at one moment.
type Members struct {
	// Now is the Redis clock when it was read.
	Now     time.Time
	Members []Member
}

// Live returns the members whose heartbeat is younger than deadAfter.
func (m Members) Live(deadAfter time.Duration) []Member {
	out := make([]Member, 0, len(m.Members))
	for _, x := range m.Members {
		if m.Now.Sub(x.Heartbeat) < deadAfter {
			out = append(out, x)
		}
	}
	return out
}

// membersLua reads the registry: the Redis clock (ms), then id, heartbeat
// and served version of every member. Scripts that change triggers return
// it, so their caller knows whom to wait for with no further round trip
// (and an instance registering after the change loads it anyway).
const membersLua = `
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function members(mkey, skey, out)
  out[#out+1] = nowms()
  local m = redis.call('ZRANGE', mkey, 0, -1, 'WITHSCORES')
  if #m == 0 then return out end
  local ids = {}
  for i = 1, #m, 2 do ids[#ids+1] = m[i] end
  local served = redis.call('HMGET', skey, unpack(ids))
  for i = 1, #ids do
    out[#out+1] = ids[i]
    out[#out+1] = m[2*i]
    out[#out+1] = served[i] or ''
  end
  return out
end
`

// parseMembers reads what membersLua appended, from v[0] on.
func parseMembers(v []any) (Members, error) {
	if len(v) < 1 || (len(v)-1)%3 != 0 {
		return Members{}, fmt.Errorf("members: %w: %d elements", errReplyShape, len(v))
	}
	out := Members{Now: time.UnixMilli(toInt64(v[0]))}
	for i := 1; i+2 < len(v); i += 3 {
		m := Member{ID: toString(v[i]), Heartbeat: msTime(v[i+1])}
		m.Served, _ = ParseVersion(toString(v[i+2]))
		out.Members = append(out.Members, m)
	}
	return out, nil
}

// heartbeatScript registers an instance (or renews it), records the version
// it serves, forgets members silent for longer than ARGV[3] ms and, when
// ARGV[4] names the config channel, publishes the instance's
// acknowledgement. Returns the registry (membersLua). It runs when Redis is
// out of memory (an oomScript: one member and one field per instance), so
// that a full Redis does not drop every instance from the registry.
// KEYS: members, served. ARGV: id, served version, forget after (ms), channel or "".
var heartbeatScript = newOOMScript(membersLua + `
local now = nowms()
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[3])))
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
if ARGV[4] ~= '' and ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[4], 'a ' .. ARGV[2] .. ' ' .. ARGV[1])
end
return members(KEYS[1], KEYS[2], {})
`)

// syncPointScript reads the current version and the registry at once.
// KEYS: epoch, rev, members, served. Returns epoch ("" when it or the
// revision is missing), rev, then membersLua.
var syncPointScript = redis.NewScript(membersLua + `
local epoch = redis.call('GET', KEYS[1])
local rev = redis.call('GET', KEYS[2])
if not epoch or not rev then epoch, rev = '', '0' end
return members(KEYS[3], KEYS[4], {epoch, rev})
`)

// Heartbeat registers instance id as serving served (the zero Version:
// nothing yet), forgets members silent for longer than forgetAfter, and with
// ack publishes that it serves served. It returns the registry.
func (s *Store) Heartbeat(ctx context.Context, id string, served Version, forgetAfter time.Duration, ack bool) (Members, error) {
	ch := ""
	if ack {
		ch = s.keys.ConfigChannel()
	}
	v, err := s.run(ctx, s.oom(heartbeatScript), []string{s.keys.Members(), s.keys.Served()},
		id, served.String(), max(forgetAfter.Milliseconds(), 1), ch).Slice()
	if err != nil {
		return Members{}, fmt.Errorf("heartbeat: %w", err)
	}
	return parseMembers(v)
}

// Leave removes instance id from the registry.
func (s *Store) Leave(ctx context.Context, id string) error {
	_, err := s.multi(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.keys.Members(), id)
		p.HDel(ctx, s.keys.Served(), id)
		return nil
	})
	return err
}

// SyncPoint returns the current version of the triggers (Epoch "" when the
// store has none) and the registry, read at one moment.
func (s *Store) SyncPoint(ctx context.Context) (Version, Members, error) {
	v, err := s.run(ctx, syncPointScript, []string{s.keys.Epoch(), s.keys.Revision(), s.keys.Members(), s.keys.Served()}).Slice()
	if err != nil {
		return Version{}, Members{}, fmt.Errorf("sync point: %w", err)
	}
	if len(v) < 2 {
		return Version{}, Members{}, fmt.Errorf("sync point: %w: %d elements", errReplyShape, len(v))
	}
	m, err := parseMembers(v[2:])
	return Version{Epoch: toString(v[0]), Rev: toInt64(v[1])}, m, err
}
