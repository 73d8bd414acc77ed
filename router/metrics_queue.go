package router

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/router/store"
)

// queueCollector exports the figures every instance shares through Redis
// (each trigger's queue depths, oldest waiting event, breaker, dead letters
// held) and the triggers' limits. On a scrape it reads every trigger's
// queue in one batched read (store.GaugesAll: pipelined, a round trip per
// 1,000 triggers) and keeps the result for StoreReadTTL, so that several
// scrapers, or one scraping often, cost Redis one read per interval, never
// a read per series. Concurrent scrapes wait for the read in progress and
// share it.
//
// Every instance exports the same cluster-wide figures: aggregate them
// with max by (trigger), not sum. A deleted trigger disappears from the
// next scrape: the series are built from the current view of the triggers.
type queueCollector struct {
	r   *Router
	ttl time.Duration

	mu      sync.Mutex // one read at a time; guards the cache below
	readAt  time.Time
	gauges  []store.QueueGauges
	readErr error
	readDur time.Duration

	ready, delayed, waiting, inflight, deadLetters, oldest, breaker *prometheus.Desc
	maxConc, budget                                                 *prometheus.Desc
	triggers, storeUp, readSeconds, instReady                       *prometheus.Desc
}

// storeReadTimeout bounds one batched read at scrape time.
const storeReadTimeout = 10 * time.Second

func newQueueCollector(r *Router, ttl time.Duration) *queueCollector {
	trig := []string{"trigger"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &queueCollector{
		r: r, ttl: ttl,
		ready:       d("switchyard_trigger_ready", "Events waiting for an attempt (cluster-wide, read from the store).", trig),
		delayed:     d("switchyard_trigger_delayed", "Events waiting for a scheduled retry (cluster-wide).", trig),
		waiting:     d("switchyard_trigger_deliver_after_waiting", "Events waiting for the time their publisher asked (the deliverafter extension) before their first attempt (cluster-wide).", trig),
		inflight:    d("switchyard_trigger_in_flight", "Attempts running on any instance (cluster-wide); compare with switchyard_trigger_max_concurrency.", trig),
		deadLetters: d("switchyard_trigger_dead_letters", "Dead letters held in the trigger's dead-letter queue.", trig),
		oldest:      d("switchyard_trigger_oldest_ready_age_seconds", "Age of the event at the head of the ready queue (since its acceptance, or its replay); 0 when none waits.", trig),
		breaker:     d("switchyard_trigger_breaker_state", "Circuit breaker state: 0 closed, 1 half-open (a probe may run), 2 open (no attempts).", trig),
		maxConc:     d("switchyard_trigger_max_concurrency", "The trigger's max_concurrency: attempts allowed in flight across every instance.", trig),
		budget:      d("switchyard_trigger_age_budget_seconds", "The trigger's max_event_age: an event accepted longer ago is dead-lettered instead of attempted.", trig),
		triggers:    d("switchyard_triggers", "Triggers in this instance's view.", nil),
		storeUp:     d("switchyard_store_up", "1 when the last batched read of the queues' figures succeeded, else 0.", nil),
		readSeconds: d("switchyard_store_gauges_read_seconds", "Duration of the last batched read of the queues' figures.", nil),
		instReady:   d("switchyard_ready", "1 when this instance can do its work (as /readyz, without its PING), else 0.", nil),
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.ready, c.delayed, c.waiting, c.inflight, c.deadLetters, c.oldest, c.breaker, c.maxConc, c.budget, c.triggers, c.storeUp, c.readSeconds, c.instReady} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.r.snap.Load()
	gauges, readDur, readErr := c.read(snap)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.triggers, float64(len(snap.triggers)))
	gauge(c.storeUp, boolGauge(readErr == nil))
	gauge(c.readSeconds, readDur.Seconds())
	gauge(c.instReady, boolGauge(c.r.health.err() == nil))
	// In name order: the registry sorts each family's series, which costs
	// little when they come sorted.
	names := make([]string, 0, len(snap.triggers))
	for n := range snap.triggers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		pol := snap.triggers[name].Spec.Delivery
		gauge(c.maxConc, float64(pol.MaxConcurrency), name)
		gauge(c.budget, pol.MaxEventAge.Seconds(), name)
	}
	now := time.Now()
	for _, g := range gauges {
		if snap.triggers[g.Trigger] == nil {
			continue // deleted since the read
		}
		gauge(c.ready, float64(g.Ready), g.Trigger)
		gauge(c.delayed, float64(g.Delayed), g.Trigger)
		gauge(c.waiting, float64(g.Waiting), g.Trigger)
		gauge(c.inflight, float64(g.InFlight), g.Trigger)
		gauge(c.deadLetters, float64(g.DeadLetters), g.Trigger)
		age := 0.0
		if !g.Oldest.IsZero() && g.Ready > 0 {
			age = max(0, now.Sub(g.Oldest).Seconds())
		}
		gauge(c.oldest, age, g.Trigger)
		gauge(c.breaker, breakerValue(g.Breaker), g.Trigger)
	}
}

// read returns the queues' figures of the triggers in snap, read at most
// ttl ago.
func (c *queueCollector) read(snap *snapshot) ([]store.QueueGauges, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl > 0 && !c.readAt.IsZero() && time.Since(c.readAt) < c.ttl {
		return c.gauges, c.readDur, c.readErr
	}
	names := make([]string, 0, len(snap.triggers))
	for n := range snap.triggers {
		names = append(names, n)
	}
	slices.Sort(names) // the figures come back in name order (see Collect)
	ctx, cancel := context.WithTimeout(context.Background(), storeReadTimeout)
	defer cancel()
	start := time.Now()
	gauges, err := c.r.store.GaugesAll(ctx, names)
	c.readAt, c.readDur = time.Now(), time.Since(start)
	if err != nil {
		// Keep nothing stale: a figure that cannot be read is absent, and
		// switchyard_store_up says why.
		gauges = nil
	}
	c.gauges, c.readErr = gauges, err
	return gauges, c.readDur, err
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func breakerValue(s store.BreakerState) float64 {
	switch s {
	case store.BreakerOpen:
		return 2
	case store.BreakerHalfOpen:
		return 1
	}
	return 0
}
