package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// benchDedupWindow is the dedup scenario's window: longer than any run, so
// every key stays in the set while the scenario runs (the set's size is
// what a real window of that many events would hold).
const benchDedupWindow = 10 * time.Minute

// dedup is single, then fanout10, with a dedup window on the triggers: the
// publishers' event ids are unique, so nothing is caught, and the figures
// beside single's and fanout10's are the cost of the check itself (a
// script in the direct publish's MULTI, the key read and kept per event).
func (e *env) dedup(ctx context.Context) error {
	name, typ := e.triggerName("dedup"), e.eventType("dedup")
	if err := e.applyDedupTrigger(ctx, name, typ); err != nil {
		return err
	}
	r := e.measure(ctx, []string{name}, e.grpcPublishers(typ))
	e.deleteTriggers(Dedup, name)
	e.rep.Scenarios.Dedup = r
	e.printThroughput(Dedup, r)
	if s := e.rep.Scenarios.Single; s != nil {
		e.printf("%-12s %9.0f delivered/s against single's %.0f; CPU µs/delivery server %.1f (single %.1f), redis %.1f (single %.1f)", Dedup,
			r.DeliveredPerS, s.DeliveredPerS, r.Usage.ServerUSPerOp, s.Usage.ServerUSPerOp, r.Usage.RedisUSPerOp, s.Usage.RedisUSPerOp)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	typ = e.eventType("dedup-fanout10")
	var names []string
	defer func() { e.deleteTriggers(Dedup+"/fanout10", names...) }()
	for i := range 10 {
		n := e.triggerName("dedup-fanout10-" + strconv.Itoa(i))
		if err := e.applyDedupTrigger(ctx, n, typ); err != nil {
			return err
		}
		names = append(names, n)
	}
	f := e.measure(ctx, names, e.grpcPublishers(typ))
	r.Fanout = f
	e.printThroughput(Dedup+"/fan10", f)
	if s := e.rep.Scenarios.Fanout10; s != nil {
		e.printf("%-12s %9.0f delivered/s against fanout10's %.0f; CPU µs/delivery server %.1f (fanout10 %.1f), redis %.1f (fanout10 %.1f)", Dedup+"/fan10",
			f.DeliveredPerS, s.DeliveredPerS, f.Usage.ServerUSPerOp, s.Usage.ServerUSPerOp, f.Usage.RedisUSPerOp, s.Usage.RedisUSPerOp)
	}
	return ctx.Err()
}

// applyDedupTrigger is applyTrigger (max_concurrency 128) with the dedup
// window.
func (e *env) applyDedupTrigger(ctx context.Context, name, typ string) error {
	spec := trigger.Spec{
		Name:        name,
		Description: "switchyard bench " + e.runID,
		Filter:      filter.Spec{Attributes: map[string]string{"type": typ}},
		Target:      trigger.Target{GRPC: e.sinkA.addr},
		Delivery:    trigger.Delivery{MaxConcurrency: 128, DedupWindow: &trigger.Duration{Duration: benchDedupWindow}},
	}
	if _, err := e.client.ApplyTrigger(ctx, trigger.ToProto(spec)); err != nil {
		return fmt.Errorf("apply trigger %s: %w", name, err)
	}
	return nil
}
