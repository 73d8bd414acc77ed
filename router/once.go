package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
)

// PublishOnce accepts events as Publish does, at most once for (key, seq)
// across every instance sharing the store, and only when seq is greater
// than the last number published under key: the claim of seq and the
// events are one atomic write to the ingest log (store.AppendLogOnce), so
// an instance that dies around the write leaves either both or neither. It
// reports whether this call published (false, nil: seq was taken). Events
// that match no trigger take seq all the same. A schedule source publishes
// each tick this way, keyed by its name, with the tick's time as seq.
//
// The events always go through the ingest log (never the direct path,
// whose write is in the trigger's hash slot, not the claim's), without the
// group commit: this path serves a few events a second. Errors as Publish.
//
// Traced as Publish is (a "publish" span, whose context the events without
// one carry), the span also saying whether this call published (see
// onceAttributes): every instance computes the same tick and tries it, so
// all but one of them record a span of a publish that found seq taken.
func (r *Router) PublishOnce(ctx context.Context, key string, seq int64, events []*pb.CloudEvent) (published bool, err error) {
	if r.stopping.Load() {
		return false, ErrStopping
	}
	now := time.Now()
	var bad []error
	dues := make([]time.Time, len(events))
	for i, ev := range events {
		err := cloudevent.Validate(ev)
		if err == nil {
			dues[i], err = DeliverAfter(ev, now, r.cfg.MaxDeliverAfter)
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("event[%d]: %w", i, err))
		}
	}
	if len(bad) > 0 {
		return false, &InvalidEventsError{Errs: bad}
	}
	snap := r.snap.Load()
	matched := make([][]string, len(events))
	in := filter.NewInput(nil)
	in.SetCELBudget(r.cfg.FilterCostPerEvent)
	for i, ev := range events {
		in.Reset(ev)
		matched[i] = snap.index.Match(in, nil)
	}
	var stamp traceStamp
	if r.tr != nil {
		res := PublishResult{Triggers: matched}
		for _, m := range matched {
			res.Routed += len(m)
		}
		var span trace.Span
		span, stamp = r.tr.startPublish(ctx, events, res)
		defer func() {
			if span.IsRecording() {
				span.SetAttributes(onceAttributes(key, seq, published, res.Routed)...)
			}
			endSpan(span, err)
		}()
	}
	if err := r.admit(snap, matched); err != nil {
		return false, err
	}
	var recs []store.LogRecord
	for i, ev := range events {
		if len(matched[i]) == 0 {
			continue
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			return false, fmt.Errorf("event[%d]: encode: %w", i, err)
		}
		recs = append(recs, store.LogRecord{Event: stamp.stamp(ev, b), Triggers: matched[i], Due: dues[i]})
	}
	ok, err := r.store.AppendLogOnce(ctx, key, seq, recs)
	r.noteWrite(err)
	switch {
	case store.IsFull(err):
		return false, fmt.Errorf("%w: %w", ErrStoreFull, err)
	case err != nil && !ok:
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case err != nil:
		// Written, not confirmed by the replicas in time: as Publish
		// answers, the publisher learns it; seq is taken, so trying
		// again publishes nothing twice.
		var re *store.ReplicationError
		if errors.As(err, &re) {
			return true, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !ok {
		return false, nil
	}
	if err := r.archiveOnce(ctx, events, matched, recs, stamp); err != nil {
		return true, err
	}
	byRec := make([][]string, len(recs))
	for i, rec := range recs {
		byRec[i] = rec.Triggers
	}
	r.backlog.accepted(byRec)
	r.metrics.published.Add(float64(len(events)))
	r.metrics.unmatched.Add(float64(len(events) - len(recs)))
	return true, nil
}

// LastOnce returns the last sequence number PublishOnce published under
// key; ok is false when none was (or the store forgot it).
func (r *Router) LastOnce(ctx context.Context, key string) (seq int64, ok bool, err error) {
	return r.store.LastOnce(ctx, key)
}

// PublishOnce accepts events at most once per key and sequence number; see
// Router.PublishOnce. It makes Sink a connectors.OnceSink.
func (s Sink) PublishOnce(ctx context.Context, key string, seq int64, events []*pb.CloudEvent) (bool, error) {
	return s.R.PublishOnce(ctx, key, seq, events)
}

// archiveOnce archives the events PublishOnce just published (the archive
// on). It runs after the once step, by the instance whose step took seq
// alone, so a tick is archived once however many instances fire it. A
// failed write is tried again for a few seconds; one that still fails is
// returned with published true: the events are queued, the runner's retry
// finds seq taken and publishes nothing twice, and the archive lacks them.
func (r *Router) archiveOnce(ctx context.Context, events []*pb.CloudEvent, matched [][]string, recs []store.LogRecord, stamp traceStamp) error {
	if r.archive == nil {
		return nil
	}
	queued := make([][]byte, len(recs))
	for i, rec := range recs {
		queued[i] = rec.Event
	}
	bodies, err := archiveBodies(events, matched, queued, stamp)
	if err != nil {
		return err
	}
	wait := time.Duration(0)
	for try := 0; ; try++ {
		if err = r.archive.write(ctx, bodies); err == nil || try == 4 || ctx.Err() != nil {
			break
		}
		wait = nextBackoff(wait)
		backoffSleep(ctx, wait)
	}
	if err != nil {
		r.noteWrite(err)
		return fmt.Errorf("%w: published, not archived: %w", ErrUnavailable, err)
	}
	return nil
}
