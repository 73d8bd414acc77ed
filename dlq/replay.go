package dlq

import (
	"context"
	"errors"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of Replayer.
const (
	// DefaultReplayChunk is how many entries one store call replays.
	DefaultReplayChunk = 100
	// DefaultReportEvery is the least time between two progress reports
	// (the last one is always sent).
	DefaultReportEvery = 200 * time.Millisecond
)

// ReplayRequest asks to put dead letters back into a trigger's queue.
type ReplayRequest struct {
	// From is the trigger whose dead letters are replayed.
	From string
	// To is the trigger whose queue gets them ("": From).
	To string
	// IDs are the entries to replay (entry ids, without the trigger);
	// with All, every entry present when the replay starts (Entries).
	IDs []string
	All bool
	// Rate limits the entries replayed per second (0: no limit); a chunk
	// then holds at most Rate entries, and at least one.
	Rate float64
	// DryRun counts what would be replayed (found or missing) and changes
	// nothing.
	DryRun bool
}

// Progress is how far a replay got: of Total entries, Replayed were queued
// and Missing were no longer there (replayed or purged meanwhile). Done
// marks the last report.
type Progress struct {
	Total, Replayed, Missing int64
	Done                     bool
}

// Replayer replays dead letters in chunks. A zero Replayer (with a Store)
// is ready to use.
//
// Crash safety: each chunk is one store call whose moves are idempotent
// (Store.Replay, Store.ReplayTo: the queued id derives from the entry id),
// so a replay interrupted anywhere (the caller gone, the server killed) has
// queued whole chunks and, for a cross-trigger replay, perhaps queued some
// entries not yet deleted; running it again queues nothing twice and
// finishes it.
type Replayer struct {
	Store interface {
		Reader
		Mover
	}
	// Wake is called with the target trigger after each chunk, so that its
	// dispatchers claim at once (nil: no wake-up).
	Wake func(trigger string)
	// Chunk is the most entries per store call (0: DefaultReplayChunk).
	Chunk int
	// ReportEvery is the least time between progress reports (0:
	// DefaultReportEvery).
	ReportEvery time.Duration
}

// Run replays req, reporting progress to report: after a chunk when
// ReportEvery has passed since the last report, and once with Done set at
// the end (a dry run reports only then). An error of report ends the
// replay and is returned as it is; waiting for the rate ends with a
// *WaitError; the store's errors are returned as they are. Run does not
// check that the triggers exist or that the caller may replay them.
func (rp *Replayer) Run(ctx context.Context, req ReplayRequest, report func(Progress) error) error {
	to := req.To
	if to == "" {
		to = req.From
	}
	ids := req.IDs
	if req.All {
		var err error
		if ids, err = Entries(ctx, rp.Store, req.From); err != nil {
			return err
		}
	}
	prog := Progress{Total: int64(len(ids))}
	if req.DryRun {
		for _, id := range ids {
			if _, err := rp.Store.GetDLQ(ctx, req.From, id); errors.Is(err, ErrNotFound) {
				prog.Missing++
			} else if err != nil {
				return err
			} else {
				prog.Replayed++
			}
		}
		prog.Done = true
		return report(prog)
	}
	chunk := rp.Chunk
	if chunk <= 0 {
		chunk = DefaultReplayChunk
	}
	every := rp.ReportEvery
	if every <= 0 {
		every = DefaultReportEvery
	}
	var lim *rate.Limiter
	if req.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(req.Rate), max(1, int(req.Rate)))
		chunk = max(1, min(chunk, int(req.Rate)))
	}
	lastSent := time.Time{}
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		batch := ids[:n]
		ids = ids[n:]
		if lim != nil {
			if err := lim.WaitN(ctx, n); err != nil {
				return &WaitError{Err: err}
			}
		}
		var replayed, missing int64
		var err error
		if to == req.From {
			replayed, missing, err = rp.Store.Replay(ctx, req.From, batch, time.Now())
		} else {
			replayed, missing, err = rp.Store.ReplayTo(ctx, req.From, to, batch, time.Now())
		}
		if err != nil {
			return err
		}
		prog.Replayed += replayed
		prog.Missing += missing
		if rp.Wake != nil {
			rp.Wake(to)
		}
		if time.Since(lastSent) > every || len(ids) == 0 {
			lastSent = time.Now()
			prog.Done = len(ids) == 0
			if err := report(prog); err != nil {
				return err
			}
		}
	}
	if !prog.Done {
		prog.Done = true
		return report(prog)
	}
	return nil
}
