package dlq

import (
	"context"
	"fmt"
	"time"
)

// Entry is one dead letter as stored in its trigger's dead-letter queue.
type Entry struct {
	// ID is the entry id ("<unix ms>-<seq>", a stream id): its time is the
	// dead time (EntryTime).
	ID string
	// Event is the original event (io.cloudevents.v1.CloudEvent bytes),
	// untouched, or a function's refused reply.
	Event []byte
	// Letter is its story (switchyard.v1.DeadLetter bytes without the
	// event; see Bury).
	Letter []byte
}

// Store is the dead-letter side of Switchyard's state; router/store
// implements it. Every method is safe for concurrent use, takes a context
// whose end abandons the call (a write already sent may still apply: every
// write below is safe to repeat), and names the trigger whose queue it works
// on. Entry ids given to a method that are not well-formed (ValidEntryID)
// are treated as missing, never sent. The operations of this package take
// the smallest part they need.
type Store interface {
	Reader
	Mover
	Purger
	Retainer
}

// Reader reads dead-letter queues.
type Reader interface {
	// DLQTriggers lists the triggers whose dead-letter queue exists (holds
	// an entry, or has held one), in no particular order.
	DLQTriggers(ctx context.Context) ([]string, error)
	// ListDLQ returns up to count entries of trigger from id start
	// (inclusive; "-" for the oldest), oldest first.
	ListDLQ(ctx context.Context, trigger, start string, count int) ([]Entry, error)
	// GetDLQ returns one entry, or an error matching ErrNotFound.
	GetDLQ(ctx context.Context, trigger, id string) (Entry, error)
	// LastDLQID returns the newest entry id of trigger ("" if none).
	LastDLQID(ctx context.Context, trigger string) (string, error)
	// DLQCounts returns trigger's entries and its counters.
	DLQCounts(ctx context.Context, trigger string) (Counts, error)
}

// Mover puts dead letters back into a queue.
type Mover interface {
	// Replay moves entries back into the same trigger's queue, each move
	// atomic, under ReplayedID(trigger, id): an entry replayed twice (a
	// repeated call, a retry after a lost reply) is queued once. Returns how
	// many were queued and how many ids were not found.
	Replay(ctx context.Context, trigger string, ids []string, now time.Time) (replayed, missing int64, err error)
	// ReplayTo moves entries of from into to's queue. The two queues may
	// live apart (Redis Cluster slots), so a move may be two steps: queue
	// into to under ReplayedID(from, id), then delete from from; run again
	// after an interruption, it queues nothing twice and deletes what is
	// left.
	ReplayTo(ctx context.Context, from, to string, ids []string, now time.Time) (replayed, missing int64, err error)
}

// Purger deletes dead letters on request (not counted as evicted).
type Purger interface {
	// PurgeDLQ deletes the given entries; returns how many existed.
	PurgeDLQ(ctx context.Context, trigger string, ids []string) (int64, error)
	// PurgeDLQBefore deletes the entries that died before t, a bounded
	// number per server call.
	PurgeDLQBefore(ctx context.Context, trigger string, t time.Time) (int64, error)
	// PurgeDLQAll deletes every entry of trigger; returns how many there
	// were.
	PurgeDLQAll(ctx context.Context, trigger string) (int64, error)
}

// Retainer applies retention.
type Retainer interface {
	// RetainDLQs applies retention to many queues at once (see Retention),
	// evicting in bounded steps so that no single server call is long, and
	// counting the evictions. It returns one Evicted per Retention, in the
	// same order; an error of one queue does not stop the others
	// (Evicted.Err). The error returned is for the call as a whole (the
	// context ended).
	RetainDLQs(ctx context.Context, rs []Retention) ([]Evicted, error)
}

// Counts are a dead-letter queue's figures.
type Counts struct {
	// Entries are held now.
	Entries int64
	// Added counts the events ever dead-lettered (refused replies too).
	Added int64
	// Evicted counts the entries removed by retention (size or age).
	Evicted int64
}

// Retention is what one queue is to keep: entries that died at Before or
// later (zero: no age limit), and at most MaxEntries of them, the oldest
// evicted first (0: no size limit).
type Retention struct {
	Trigger    string
	Before     time.Time
	MaxEntries int64
}

// Evicted is what RetainDLQs evicted from one queue: Aged for their age,
// Capped for the size limit (both counted as evicted in the queue's
// counters). Err is that queue's error, if any; the counts then say what
// was evicted before it.
type Evicted struct {
	Trigger      string
	Aged, Capped int64
	Err          error
}

// Defaults of Policy: the server's retention unless its configuration or
// the trigger says otherwise.
const (
	DefaultMaxEntries = 100_000
	DefaultMaxAge     = 14 * 24 * time.Hour
)

// Policy is a dead-letter queue's retention. The server has one (its
// configuration, defaults above); a trigger's delivery policy may override
// either limit (For).
type Policy struct {
	// MaxEntries caps a queue: when a dead letter would pass it, the
	// oldest entries are evicted and counted. 0 after SetDefaults means
	// DefaultMaxEntries.
	MaxEntries int64
	// MaxAge evicts (and counts) entries older than this, checked each
	// minute. 0 after SetDefaults means DefaultMaxAge.
	MaxAge time.Duration
}

// SetDefaults fills the limits left zero.
func (p *Policy) SetDefaults() {
	if p.MaxEntries == 0 {
		p.MaxEntries = DefaultMaxEntries
	}
	if p.MaxAge == 0 {
		p.MaxAge = DefaultMaxAge
	}
}

// Validate reports limits that cannot be applied.
func (p Policy) Validate() error {
	if p.MaxEntries < 0 {
		return fmt.Errorf("dead-letter max entries must not be negative, got %d", p.MaxEntries)
	}
	if p.MaxAge < 0 {
		return fmt.Errorf("dead-letter max age must not be negative, got %v", p.MaxAge)
	}
	return nil
}

// For returns the policy of a trigger whose delivery policy sets
// maxEntries and maxAge (dead_letter_max_entries, dead_letter_max_age): a
// limit it sets (> 0) wins over p's.
func (p Policy) For(maxEntries int64, maxAge time.Duration) Policy {
	if maxEntries > 0 {
		p.MaxEntries = maxEntries
	}
	if maxAge > 0 {
		p.MaxAge = maxAge
	}
	return p
}

// Retention is what p keeps of trigger's queue at now.
func (p Policy) Retention(trigger string, now time.Time) Retention {
	r := Retention{Trigger: trigger, MaxEntries: max(p.MaxEntries, 0)}
	if p.MaxAge > 0 {
		r.Before = now.Add(-p.MaxAge)
	}
	return r
}
