package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/router/cloudevent"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
)

// PublishResult reports an accepted publish.
type PublishResult struct {
	// Triggers lists, per event, the triggers it was routed to.
	Triggers [][]string
	// Routed sums the deliveries queued.
	Routed int
}

type appendReq struct {
	ctx  context.Context
	recs []store.LogRecord
	done chan error
}

var inputPool = sync.Pool{New: func() any { return filter.NewInput(nil) }}

// Publish accepts events atomically: it returns nil only once every event is
// durable in the store (all of them or none). Errors: *InvalidEventsError
// (nothing accepted), *PushbackError (a matching trigger's queue is full;
// nothing accepted), ErrUnavailable, ErrStopping.
func (r *Router) Publish(ctx context.Context, events []*pb.CloudEvent) (PublishResult, error) {
	if r.stopping.Load() {
		return PublishResult{}, ErrStopping
	}
	if len(events) == 0 {
		return PublishResult{}, &InvalidEventsError{Errs: []error{&cloudevent.Error{Kind: cloudevent.ErrEmptyBatch, Index: -1, Detail: "no events"}}}
	}
	if len(events) > r.cfg.MaxBatchEvents {
		return PublishResult{}, &InvalidEventsError{Errs: []error{&cloudevent.Error{Kind: cloudevent.ErrTooLarge, Index: -1,
			Detail: fmt.Sprintf("a batch holds at most %d events, got %d", r.cfg.MaxBatchEvents, len(events))}}}
	}
	var bad []error
	for i, ev := range events {
		if err := cloudevent.Validate(ev); err != nil {
			var ce *cloudevent.Error
			if errors.As(err, &ce) {
				c := *ce
				if len(events) > 1 {
					c.Index = i
				}
				bad = append(bad, &c)
			} else {
				bad = append(bad, fmt.Errorf("event[%d]: %w", i, err))
			}
		}
	}
	if len(bad) > 0 {
		r.metrics.publishRefused.WithLabelValues("invalid").Add(float64(len(events)))
		return PublishResult{}, &InvalidEventsError{Errs: bad}
	}
	snap := r.snap.Load()
	res := PublishResult{Triggers: make([][]string, len(events))}
	in := inputPool.Get().(*filter.Input)
	for i, ev := range events {
		in.Reset(ev)
		res.Triggers[i] = snap.index.Match(in, nil)
		res.Routed += len(res.Triggers[i])
	}
	in.Reset(nil)
	inputPool.Put(in)
	if res.Routed == 0 {
		r.metrics.published.Add(float64(len(events)))
		r.metrics.unmatched.Add(float64(len(events)))
		return res, nil
	}
	if err := r.admit(snap, res.Triggers); err != nil {
		r.metrics.publishRefused.WithLabelValues("pushback").Add(float64(len(events)))
		return PublishResult{}, err
	}
	recs := make([]store.LogRecord, 0, len(events))
	for i, ev := range events {
		if len(res.Triggers[i]) == 0 {
			continue
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			return PublishResult{}, fmt.Errorf("event[%d]: encode: %w", i, err)
		}
		recs = append(recs, store.LogRecord{Event: b, Triggers: res.Triggers[i]})
	}
	if err := r.appendLog(ctx, recs); err != nil {
		return PublishResult{}, err
	}
	r.depthMu.Lock()
	for _, ts := range res.Triggers {
		for _, t := range ts {
			d := r.depth[t]
			d.logged++
			r.depth[t] = d
		}
	}
	r.depthMu.Unlock()
	r.metrics.published.Add(float64(len(events)))
	r.metrics.unmatched.Add(float64(len(events) - len(recs)))
	return res, nil
}

// admit refuses the publish when a matching trigger's queue is at its cap.
func (r *Router) admit(snap *snapshot, matched [][]string) error {
	r.depthMu.Lock()
	defer r.depthMu.Unlock()
	for _, ts := range matched {
		for _, name := range ts {
			t := snap.triggers[name]
			if t == nil {
				continue
			}
			if held := r.depth[name].total(); held >= t.Spec.Delivery.MaxQueue {
				return &PushbackError{Trigger: name, Queued: held, MaxQueue: t.Spec.Delivery.MaxQueue, RetryAfter: time.Second}
			}
		}
	}
	return nil
}

// appendLog hands records to the group-commit writers and waits for Redis.
func (r *Router) appendLog(ctx context.Context, recs []store.LogRecord) error {
	req := &appendReq{ctx: ctx, recs: recs, done: make(chan error, 1)}
	select {
	case r.appendCh <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-r.intakeCtx.Done():
		return ErrStopping
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil
	case <-r.intakeCtx.Done():
		return ErrStopping
	case <-ctx.Done():
		// The write may still land: the publisher sees an error and may
		// publish again, which at-least-once delivery tolerates.
		return ctx.Err()
	}
}

// appendLoop is a group-commit writer: it takes every pending request and
// writes them in one transaction, so concurrent publishers share round trips.
func (r *Router) appendLoop(ctx context.Context) {
	const maxRecs = 2048
	batch := make([]*appendReq, 0, 64)
	for {
		var first *appendReq
		select {
		case first = <-r.appendCh:
		case <-ctx.Done():
			r.failPending(batch)
			return
		}
		batch = append(batch[:0], first)
		n := len(first.recs)
	drain:
		for n < maxRecs {
			select {
			case req := <-r.appendCh:
				batch = append(batch, req)
				n += len(req.recs)
			default:
				break drain
			}
		}
		recs := make([][]store.LogRecord, 0, len(batch))
		for _, req := range batch {
			if req.ctx.Err() == nil {
				recs = append(recs, req.recs)
			}
		}
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.store.AppendLog(wctx, recs...)
		cancel()
		for _, req := range batch {
			req.done <- err
		}
	}
}

func (r *Router) failPending(batch []*appendReq) {
	for {
		select {
		case req, ok := <-r.appendCh:
			if !ok {
				return
			}
			req.done <- ErrStopping
		default:
			return
		}
	}
}

// Sink adapts the router to connectors.Sink (Publish returning only the error).
type Sink struct{ R *Router }

// Publish accepts events atomically; see Router.Publish.
func (s Sink) Publish(ctx context.Context, events []*pb.CloudEvent) error {
	_, err := s.R.Publish(ctx, events)
	return err
}
