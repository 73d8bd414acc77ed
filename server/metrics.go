package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/connectors"
)

// sourceStates are the values of switchyard_source_state's state label:
// each source has one series per state, 1 for the state it is in.
var sourceStates = []connectors.State{connectors.StateConnecting, connectors.StateRunning, connectors.StatePaused,
	connectors.StateRetrying, connectors.StateStopped, connectors.StateDone}

// sourceCollector exports each source's status (connectors.Runner.Status)
// at scrape time: the series are those of the sources running, so a source
// removed from the configuration disappears with the restart that removes
// it. Reading the status costs a mutex per source, nothing remote.
type sourceCollector struct {
	runner func() *connectors.Runner

	events, invalid, errs, reconnects *prometheus.Desc
	state, lastEvent, lag, backlog    *prometheus.Desc
	nextFire, ticks, ticksLate        *prometheus.Desc
}

func newSourceCollector(runner func() *connectors.Runner) *sourceCollector {
	l := []string{"source", "kind"}
	return &sourceCollector{
		runner:     runner,
		events:     prometheus.NewDesc("switchyard_source_events_total", "Events the source read that Switchyard accepted.", l, nil),
		invalid:    prometheus.NewDesc("switchyard_source_invalid_total", "Events the source read that were invalid (acknowledged, logged and skipped).", l, nil),
		errs:       prometheus.NewDesc("switchyard_source_errors_total", "Connection, read and publish errors of the source.", l, nil),
		reconnects: prometheus.NewDesc("switchyard_source_reconnects_total", "Reconnections of the source after a read failed.", l, nil),
		state:      prometheus.NewDesc("switchyard_source_state", "1 for the state the source is in (connecting, running, paused: Switchyard pushes back, retrying, stopped, done), 0 for the others.", []string{"source", "kind", "state"}, nil),
		lastEvent:  prometheus.NewDesc("switchyard_source_last_event_timestamp_seconds", "When the source last had events accepted (unix seconds; 0: never).", l, nil),
		lag:        prometheus.NewDesc("switchyard_source_lag_seconds", "How long before its acceptance the newest event of the last accepted batch happened, by its time attribute (replication lag for CDC, time since stored for queues); absent until known.", l, nil),
		backlog:    prometheus.NewDesc("switchyard_source_backlog", "Messages the external system still holds for the source, where it says (NATS JetStream); absent elsewhere.", l, nil),
		nextFire:   prometheus.NewDesc("switchyard_source_next_fire_timestamp_seconds", "When a source that emits at known times (schedule) emits next (unix seconds); absent for the others and once stopped.", l, nil),
		ticks: prometheus.NewDesc("switchyard_schedule_ticks_total", "A schedule's ticks as this instance saw them, by outcome: fired (published here), taken (another instance had published it), skipped (older than catch_up when its turn came: never fired). Every instance tries every tick; sum fired over them for the ticks published.",
			[]string{"source", "kind", "outcome"}, nil),
		ticksLate: prometheus.NewDesc("switchyard_schedule_ticks_late_total", "Ticks this instance fired a second or more after their time (caught up after an outage, or held up by pushback or a slow store).", l, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.invalid, c.errs, c.reconnects, c.state, c.lastEvent, c.lag, c.backlog, c.nextFire, c.ticks, c.ticksLate} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.runner()
	if r == nil {
		return
	}
	for _, st := range r.Status() {
		l := []string{st.Name, st.Kind}
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(st.Events), l...)
		ch <- prometheus.MustNewConstMetric(c.invalid, prometheus.CounterValue, float64(st.Rejected), l...)
		ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, float64(st.Errors), l...)
		ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(st.Reconnects), l...)
		for _, s := range sourceStates {
			v := 0.0
			if st.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, st.Name, st.Kind, string(s))
		}
		last := 0.0
		if !st.LastEvent.IsZero() {
			last = float64(st.LastEvent.UnixMilli()) / 1000
		}
		ch <- prometheus.MustNewConstMetric(c.lastEvent, prometheus.GaugeValue, last, l...)
		if st.LagKnown {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, st.Lag.Seconds(), l...)
		}
		if st.BacklogKnown {
			ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(st.Backlog), l...)
		}
		if !st.NextFire.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.nextFire, prometheus.GaugeValue, float64(st.NextFire.UnixMilli())/1000, l...)
		}
		if tc := st.Ticks; tc != nil {
			for outcome, n := range map[string]int64{"fired": tc.Fired, "taken": tc.Taken, "skipped": tc.Skipped} {
				ch <- prometheus.MustNewConstMetric(c.ticks, prometheus.CounterValue, float64(n), st.Name, st.Kind, outcome)
			}
			ch <- prometheus.MustNewConstMetric(c.ticksLate, prometheus.CounterValue, float64(tc.Late), l...)
		}
	}
}
