package router

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/panics"
	"github.com/switchyard-io/switchyard/router/store"
)

// The archive keeps every accepted event, matched or not, for a retention
// period and/or up to a size (store/archive.go holds the layout). It is off
// unless ArchiveConfig says otherwise, and then costs a publish nothing but
// one nil check. On, each group commit also appends its events to the
// archive stream, concurrently with the queue or log write, and every
// publisher of the commit is answered only once both landed: an event
// acknowledged is archived. A failed archive write fails the publish (its
// events may still be queued, and a publisher that retries may then be
// delivered twice: at-least-once, as after a timeout).

// Defaults of ArchiveConfig.
const (
	// DefaultEmbeddedArchiveMaxBytes bounds the archive on the embedded
	// store (which holds it in the process's memory) when no size is set.
	DefaultEmbeddedArchiveMaxBytes = 64 << 20
	// DefaultReplayRate is how many archived events a replay sends per
	// second unless told.
	DefaultReplayRate = 500
	// MaxReplayRate bounds a replay's rate.
	MaxReplayRate = 100_000
	// ReplayExtension is the CloudEvents extension a replayed event
	// carries: the id of the replay job that sent it.
	ReplayExtension = "switchyardreplay"
	// archiveEntryOverhead estimates what Redis spends per stream entry
	// beyond the event's bytes (entry id delta, field flags, the listpack
	// entry headers), for the entry count that bounds the size.
	archiveEntryOverhead = 24
)

// ArchiveConfig configures the event archive. The zero value is off.
type ArchiveConfig struct {
	// Retention keeps archived events this long (trimmed about once a
	// second); 0: no time limit.
	Retention time.Duration
	// MaxBytes keeps about this many bytes of archived events, the oldest
	// trimmed first; 0: no size limit.
	MaxBytes int64
}

// Enabled reports whether events are archived.
func (c ArchiveConfig) Enabled() bool { return c.Retention > 0 || c.MaxBytes > 0 }

// Validate reports negative values.
func (c ArchiveConfig) Validate() error {
	var errs []error
	if c.Retention < 0 {
		errs = append(errs, errors.New("archive retention must not be negative"))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, errors.New("archive max bytes must not be negative"))
	}
	return errors.Join(errs...)
}

// ErrArchiveOff answers archive calls on a server that does not archive.
var ErrArchiveOff = errors.New("the event archive is off (set archive_retention or archive_max_bytes)")

// archiver writes the archive and trims it. It learns the average size of
// the events it writes, so that MaxBytes becomes an entry count for
// XADD's MAXLEN.
type archiver struct {
	cfg   ArchiveConfig
	store *store.Store
	bytes atomic.Int64 // event bytes written by this instance
	count atomic.Int64 // events written by this instance
}

func newArchiver(cfg ArchiveConfig, s *store.Store) *archiver {
	if !cfg.Enabled() {
		return nil
	}
	return &archiver{cfg: cfg, store: s}
}

// maxLen is the entry count that holds about MaxBytes of events of the
// average size seen so far; 0 without a size limit.
func (a *archiver) maxLen() int64 {
	if a.cfg.MaxBytes <= 0 {
		return 0
	}
	n, b := a.count.Load(), a.bytes.Load()
	if n == 0 {
		return 0
	}
	return max(1, a.cfg.MaxBytes/(b/n+archiveEntryOverhead))
}

// write archives events in one transaction.
func (a *archiver) write(ctx context.Context, events [][]byte) error {
	var b int64
	for _, e := range events {
		b += int64(len(e))
	}
	a.bytes.Add(b)
	a.count.Add(int64(len(events)))
	if err := a.store.ArchiveAppend(ctx, events, a.maxLen()); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// trimLoop removes the events older than the retention once a second.
// (The size bound is kept by each write.)
func (r *Router) archiveTrimLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.archive.cfg.Retention <= 0 {
			continue
		}
		if _, err := r.archive.store.ArchiveTrim(ctx, time.Now().Add(-r.archive.cfg.Retention)); err != nil && ctx.Err() == nil {
			if r.logLimit.Allow("archive\x00trim", time.Now()) {
				r.log.Warn("archive: trim by retention", "err", err)
			}
		}
	}
}

// archiveBodies returns what the archive keeps of a publish's events, in
// order: the bytes queued for the routed ones (recs, in the same order),
// the encoded event for the others.
func archiveBodies(events []*pb.CloudEvent, matched [][]string, queued [][]byte, stamp traceStamp) ([][]byte, error) {
	out := make([][]byte, 0, len(events))
	k := 0
	for i, ev := range events {
		if len(matched[i]) > 0 {
			out = append(out, queued[k])
			k++
			continue
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("event[%d]: encode: %w", i, err)
		}
		out = append(out, stamp.stamp(ev, b))
	}
	return out, nil
}

// ArchiveConfig returns the archive's configuration (off: the zero value).
func (r *Router) ArchiveConfig() ArchiveConfig {
	if r.archive == nil {
		return ArchiveConfig{}
	}
	return r.archive.cfg
}

// ArchiveInfo reads what the archive holds; ErrArchiveOff when off.
func (r *Router) ArchiveInfo(ctx context.Context) (store.ArchiveInfo, error) {
	if r.archive == nil {
		return store.ArchiveInfo{}, ErrArchiveOff
	}
	info, err := r.store.ArchiveInfo(ctx)
	if err != nil {
		return info, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return info, nil
}

// RecentArchived returns up to n of the most recent archived events for
// which keep is true (nil keeps all), newest first, reading at most
// scanLimit entries; ErrArchiveOff when off.
func (r *Router) RecentArchived(ctx context.Context, n, scanLimit int, keep func(*pb.CloudEvent) bool) ([]ArchivedEvent, error) {
	if r.archive == nil {
		return nil, ErrArchiveOff
	}
	var out []ArchivedEvent
	end := "+"
	const page = 500
	for scanned := 0; len(out) < n && scanned < scanLimit; {
		es, err := r.store.ArchiveRecentBefore(ctx, end, page)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		for _, e := range es {
			scanned++
			ev := &pb.CloudEvent{}
			if proto.Unmarshal(e.Event, ev) != nil {
				continue
			}
			if keep == nil || keep(ev) {
				out = append(out, ArchivedEvent{ID: e.ID, Time: e.Time(), Event: ev})
				if len(out) == n {
					break
				}
			}
		}
		if len(es) < page {
			break
		}
		prev, ok := store.PrevID(es[len(es)-1].ID)
		if !ok {
			break
		}
		end = prev
	}
	return out, nil
}

// ArchivedEvent is one event read from the archive.
type ArchivedEvent struct {
	// ID is the archive entry ("<unix ms>-<seq>").
	ID string
	// Time is when it was accepted.
	Time  time.Time
	Event *pb.CloudEvent
}

// archiveAsync starts archiving events (a group commit's, written while
// the commit writes its queues and log) and returns the wait for its
// outcome. Nothing to archive costs nothing.
func (r *Router) archiveAsync(ctx context.Context, events [][]byte) func() error {
	if len(events) == 0 || r.archive == nil {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		var err error
		if panics.Run(r.log, "router.archive", func() { err = r.archive.write(ctx, events) }) {
			err = errCommitPanic
		}
		done <- err
	}()
	return func() error { return <-done }
}
