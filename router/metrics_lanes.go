package router

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/router/store"
)

// laneCollector exports the lanes of ordered triggers (delivery.ordering):
// lanes holding events, lanes blocked by a dead letter and the events
// waiting behind an earlier one of their lane, cluster-wide,
// read from the store at scrape time for the ordered triggers only and
// kept for StoreReadTTL, as queueCollector does.
type laneCollector struct {
	r   *Router
	ttl time.Duration

	mu     sync.Mutex
	readAt time.Time
	gauges []store.LaneGauges

	active, blocked, behind *prometheus.Desc
}

func newLaneCollector(r *Router, ttl time.Duration) *laneCollector {
	trig := []string{"trigger"}
	return &laneCollector{r: r, ttl: ttl,
		active:  prometheus.NewDesc("switchyard_trigger_lanes_active", "Ordered triggers: lanes (ordering keys) holding undelivered events (cluster-wide).", trig, nil),
		blocked: prometheus.NewDesc("switchyard_trigger_lanes_blocked", "Ordered triggers: lanes stopped by a dead letter (on_dead: block) until it is replayed or skipped.", trig, nil),
		behind:  prometheus.NewDesc("switchyard_trigger_lane_waiting", "Ordered triggers: events waiting behind an earlier event of their key, or for their blocked key (neither queued, in flight nor scheduled).", trig, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *laneCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.active
	ch <- c.blocked
	ch <- c.behind
}

// Collect implements prometheus.Collector.
func (c *laneCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.r.snap.Load()
	for _, g := range c.read(snap) {
		if t := snap.triggers[g.Trigger]; t == nil || t.Key == nil {
			continue // deleted or no longer ordered since the read
		}
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(g.Active), g.Trigger)
		ch <- prometheus.MustNewConstMetric(c.blocked, prometheus.GaugeValue, float64(g.Blocked), g.Trigger)
		ch <- prometheus.MustNewConstMetric(c.behind, prometheus.GaugeValue, float64(g.Behind), g.Trigger)
	}
}

// read returns the lanes of the ordered triggers in snap, read at most ttl
// ago; nothing when the read fails (switchyard_store_up tells).
func (c *laneCollector) read(snap *snapshot) []store.LaneGauges {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl > 0 && !c.readAt.IsZero() && time.Since(c.readAt) < c.ttl {
		return c.gauges
	}
	var names []string
	for n, t := range snap.triggers {
		if t.Key != nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	c.gauges, c.readAt = nil, time.Now()
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeReadTimeout)
	defer cancel()
	if g, err := c.r.store.LaneGaugesAll(ctx, names); err == nil {
		c.gauges = g
	}
	return c.gauges
}
