package router

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	reg             *prometheus.Registry
	published       prometheus.Counter
	unmatched       prometheus.Counter
	publishRefused  *prometheus.CounterVec
	fannedOut       prometheus.Counter
	deliveries      *prometheus.CounterVec
	deadLettered    *prometheus.CounterVec
	staleAcks       prometheus.Counter
	repliesRefused  *prometheus.CounterVec
	droppedDeleted  prometheus.Counter
	attemptDuration *prometheus.HistogramVec
	publishToInvoke prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg:            prometheus.NewRegistry(),
		published:      prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_events_accepted_total", Help: "Events accepted (durable, or matching no trigger)."}),
		unmatched:      prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_events_unmatched_total", Help: "Accepted events that matched no trigger."}),
		publishRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_events_refused_total", Help: "Events refused at publish, by reason."}, []string{"reason"}),
		fannedOut:      prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_events_fanned_out_total", Help: "Ingest log records queued for their triggers."}),
		deliveries:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_attempts_total", Help: "Delivery attempts by trigger and verdict (ack, retry, dead)."}, []string{"trigger", "verdict"}),
		deadLettered:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_dead_letters_total", Help: "Events moved to the dead-letter queue by trigger and reason."}, []string{"trigger", "reason"}),
		staleAcks:      prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_stale_outcomes_total", Help: "Outcomes that arrived after their lease was lost (the event may be delivered twice)."}),
		repliesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_replies_refused_total", Help: "Function reply events refused and kept as dead letters, by trigger and reason (REPLY_INVALID, HOP_LIMIT)."}, []string{"trigger", "reason"}),
		droppedDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_deliveries_dropped_deleted_trigger_total", Help: "Deliveries not queued because their trigger was deleted after the event was accepted."}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchyard_attempt_duration_seconds", Help: "Duration of delivery attempts.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"trigger"}),
		publishToInvoke: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "switchyard_publish_to_invoke_seconds", Help: "Time from acceptance to the start of the first attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	m.reg.MustRegister(m.published, m.unmatched, m.publishRefused, m.fannedOut, m.deliveries, m.deadLettered, m.staleAcks, m.repliesRefused, m.droppedDeleted, m.attemptDuration, m.publishToInvoke,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
