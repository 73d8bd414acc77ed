package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-io/switchyard/internal/panics"
)

// Metrics stay bounded with many triggers: the series a trigger owns are
// counters and gauges only (a handful each, created on first use, deleted
// with the trigger), while the latency histograms are aggregated over every
// trigger unless a trigger is named in MetricsConfig.HistogramTriggers. A
// histogram per trigger cost ~18 series each (~180,000 at 10,000 triggers)
// and was never deleted.

// Defaults and bounds of MetricsConfig.
const (
	// DefaultStoreReadTTL is how long one batched read of every queue's
	// figures answers scrapes (see queueCollector).
	DefaultStoreReadTTL = 5 * time.Second
	// MaxHistogramTriggers bounds MetricsConfig.HistogramTriggers: each
	// costs two histograms of their own.
	MaxHistogramTriggers = 100
)

// MetricsConfig configures the router's Prometheus metrics.
type MetricsConfig struct {
	// HistogramTriggers get attempt-duration and publish-to-invoke
	// histograms of their own (label trigger) besides the aggregate ones;
	// at most MaxHistogramTriggers.
	HistogramTriggers []string
	// StoreReadTTL is how long one batched read of the queues' figures
	// (depths, oldest age, breaker, dead letters) answers scrapes, so that
	// several scrapers cost Redis one read per interval
	// (DefaultStoreReadTTL; negative reads on every scrape).
	StoreReadTTL time.Duration
}

func (c *MetricsConfig) setDefaults() {
	if c.StoreReadTTL == 0 {
		c.StoreReadTTL = DefaultStoreReadTTL
	}
}

// Validate reports every invalid field.
func (c MetricsConfig) Validate() error {
	var errs []error
	if len(c.HistogramTriggers) > MaxHistogramTriggers {
		errs = append(errs, fmt.Errorf("metrics: at most %d triggers get histograms of their own, got %d", MaxHistogramTriggers, len(c.HistogramTriggers)))
	}
	for i, n := range c.HistogramTriggers {
		if n == "" {
			errs = append(errs, fmt.Errorf("metrics: histogram trigger %d is empty", i))
		}
	}
	return errors.Join(errs...)
}

// Verdict label values of switchyard_attempts_total.
const (
	verdictAck   = "ack"
	verdictRetry = "retry"
	verdictDead  = "dead"
)

// Latency buckets shared by the classic histograms: 0.5 ms to ~16 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)

// histogramOpts are classic buckets (every scraper reads them, text format
// included) and a native histogram beside them (scrapers that negotiate the
// protobuf format get ~10% resolution at any latency for a bounded number
// of buckets).
func histogramOpts(name, help string) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Name: name, Help: help, Buckets: latencyBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  100,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

type metrics struct {
	reg            *prometheus.Registry
	published      prometheus.Counter
	unmatched      prometheus.Counter
	publishRefused *prometheus.CounterVec
	fannedOut      prometheus.Counter
	droppedDeleted prometheus.Counter
	redisErrors    prometheus.Counter
	filterBudget   prometheus.Counter

	// Per trigger, created on first use and deleted with the trigger
	// (triggerSeries).
	enqueued       *prometheus.CounterVec
	attempts       *prometheus.CounterVec
	deadLettered   *prometheus.CounterVec
	repliesRefused *prometheus.CounterVec
	pushbacks      *prometheus.CounterVec
	stale          *prometheus.CounterVec
	duplicates     *prometheus.CounterVec

	attemptDuration   prometheus.Histogram
	publishToInvoke   prometheus.Histogram
	trigAttemptDur    *prometheus.HistogramVec // HistogramTriggers only
	trigPublishInvoke *prometheus.HistogramVec

	histTriggers map[string]bool
	series       sync.Map // trigger name → *triggerSeries
}

func newMetrics(cfg MetricsConfig) *metrics {
	trig := []string{"trigger"}
	m := &metrics{
		reg:            prometheus.NewRegistry(),
		published:      prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_events_accepted_total", Help: "Events accepted (durable, or matching no trigger)."}),
		unmatched:      prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_events_unmatched_total", Help: "Accepted events that matched no trigger."}),
		publishRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_events_refused_total", Help: "Events refused at publish, by reason (invalid, pushback, store_full)."}, []string{"reason"}),
		fannedOut:      prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_events_fanned_out_total", Help: "Ingest log records queued for their triggers."}),
		droppedDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_deliveries_dropped_deleted_trigger_total", Help: "Deliveries not queued because their trigger was deleted after the event was accepted."}),
		redisErrors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_redis_errors_total", Help: "Redis commands and pipelines of this instance that failed (connection lost, timeout, refused), not counting a missing key or a reloaded script."}),
		filterBudget: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_filter_budget_exhausted_total",
			Help: "Events whose CEL filter cost budget ran out while matching: the CEL filters not evaluated by then did not match them."}),

		enqueued:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_events_enqueued_total", Help: "Events this instance queued for the trigger (direct publishes and fan-out)."}, trig),
		attempts:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_attempts_total", Help: "Delivery attempts by trigger and verdict: ack (delivered), retry (scheduled again), dead (dead-lettered)."}, []string{"trigger", "verdict"}),
		deadLettered:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_dead_letters_total", Help: "Events moved to the dead-letter queue by trigger and reason."}, []string{"trigger", "reason"}),
		repliesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_replies_refused_total", Help: "Function reply events refused and kept as dead letters, by trigger and reason (REPLY_INVALID, HOP_LIMIT)."}, []string{"trigger", "reason"}),
		pushbacks:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_pushbacks_total", Help: "Events refused at publish because the trigger held max_queue undelivered events."}, trig),
		duplicates:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_events_duplicate_total", Help: "Events this instance did not queue for the trigger because an event of the same source and id was queued for it within its dedup window (the publisher was answered success)."}, trig),
		stale:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_stale_outcomes_total", Help: "Outcomes that arrived after their lease was lost (the event may be delivered twice)."}, trig),

		attemptDuration:   prometheus.NewHistogram(histogramOpts("switchyard_attempt_duration_seconds", "Duration of delivery attempts, every trigger together.")),
		publishToInvoke:   prometheus.NewHistogram(histogramOpts("switchyard_publish_to_invoke_seconds", "Time from acceptance to the start of an event's first attempt, every trigger together.")),
		trigAttemptDur:    prometheus.NewHistogramVec(histogramOpts("switchyard_trigger_attempt_duration_seconds", "Duration of delivery attempts, for the triggers given histograms of their own."), trig),
		trigPublishInvoke: prometheus.NewHistogramVec(histogramOpts("switchyard_trigger_publish_to_invoke_seconds", "Time from acceptance to the start of an event's first attempt, for the triggers given histograms of their own."), trig),

		histTriggers: map[string]bool{},
	}
	for _, n := range cfg.HistogramTriggers {
		m.histTriggers[n] = true
	}
	m.reg.MustRegister(m.published, m.unmatched, m.publishRefused, m.fannedOut, m.droppedDeleted, m.redisErrors, m.filterBudget, panics.Collector(),
		m.enqueued, m.attempts, m.deadLettered, m.repliesRefused, m.pushbacks, m.stale, m.duplicates,
		m.attemptDuration, m.publishToInvoke, m.trigAttemptDur, m.trigPublishInvoke,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// triggerSeries are one trigger's series. They are created on first use
// (an idle trigger costs no counter series) and deleted when the trigger's
// dispatcher stops because the trigger was deleted (forget). Children
// resolved once are cached: the hot path pays no label hashing, and an
// increment racing the deletion lands in a child no longer exported
// instead of bringing the series back.
type triggerSeries struct {
	m    *metrics
	name string
	hist bool // has histograms of its own

	mu   sync.Mutex // guards gone and the creation of children
	gone bool
	c    [nTriggerCounters]atomic.Pointer[prometheus.Counter]
	dur  atomic.Pointer[prometheus.Observer]
	p2i  atomic.Pointer[prometheus.Observer]
	// labelled are counters with a second label (reason), by family and
	// label value.
	labelled map[reasonKey]prometheus.Counter
}

type reasonKey struct {
	vec    *prometheus.CounterVec
	reason string
}

// Counters of a trigger with no label but the trigger's (and a fixed
// verdict): indexes into triggerSeries.c.
const (
	cEnqueued = iota
	cAck
	cRetry
	cDead
	cPushback
	cStale
	cDuplicate
	nTriggerCounters
)

// track returns the series of a trigger whose dispatcher starts; forget
// deletes them.
func (m *metrics) track(name string) *triggerSeries {
	s := &triggerSeries{m: m, name: name, hist: m.histTriggers[name]}
	if old, loaded := m.series.LoadOrStore(name, s); loaded {
		return old.(*triggerSeries)
	}
	return s
}

// trigger returns the series of a tracked trigger, or nil: a trigger
// deleted meanwhile counts nothing.
func (m *metrics) trigger(name string) *triggerSeries {
	if v, ok := m.series.Load(name); ok {
		return v.(*triggerSeries)
	}
	return nil
}

// forget deletes a trigger's series; later increments through its
// triggerSeries go nowhere.
func (m *metrics) forget(name string) {
	v, ok := m.series.LoadAndDelete(name)
	if !ok {
		return
	}
	s := v.(*triggerSeries)
	s.mu.Lock()
	s.gone = true
	s.mu.Unlock()
	l := prometheus.Labels{"trigger": name}
	for _, vec := range []*prometheus.CounterVec{m.enqueued, m.attempts, m.deadLettered, m.repliesRefused, m.pushbacks, m.stale, m.duplicates} {
		vec.DeletePartialMatch(l)
	}
	m.trigAttemptDur.DeletePartialMatch(l)
	m.trigPublishInvoke.DeletePartialMatch(l)
}

// add adds n to one of the trigger's counters. Safe on a nil receiver (an
// untracked trigger).
func (s *triggerSeries) add(which int, n float64) {
	if s == nil || n == 0 {
		return
	}
	if c := s.c[which].Load(); c != nil {
		(*c).Add(n)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	if c := s.c[which].Load(); c != nil {
		(*c).Add(n)
		return
	}
	var c prometheus.Counter
	switch which {
	case cEnqueued:
		c = s.m.enqueued.WithLabelValues(s.name)
	case cAck:
		c = s.m.attempts.WithLabelValues(s.name, verdictAck)
	case cRetry:
		c = s.m.attempts.WithLabelValues(s.name, verdictRetry)
	case cDead:
		c = s.m.attempts.WithLabelValues(s.name, verdictDead)
	case cPushback:
		c = s.m.pushbacks.WithLabelValues(s.name)
	case cStale:
		c = s.m.stale.WithLabelValues(s.name)
	case cDuplicate:
		c = s.m.duplicates.WithLabelValues(s.name)
	}
	s.c[which].Store(&c)
	c.Add(n)
}

// addReason adds one to a counter labelled with the trigger and a reason
// (dead letters, refused replies): few reasons exist, so a small map
// suffices.
func (s *triggerSeries) addReason(vec *prometheus.CounterVec, reason string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	key := reasonKey{vec, reason}
	c, ok := s.labelled[key]
	if !ok {
		c = vec.WithLabelValues(s.name, reason)
		if s.labelled == nil {
			s.labelled = map[reasonKey]prometheus.Counter{}
		}
		s.labelled[key] = c
	}
	c.Inc()
}

func (s *triggerSeries) deadLetter(reason string) {
	if s != nil {
		s.addReason(s.m.deadLettered, reason)
	}
}

func (s *triggerSeries) replyRefused(reason string) {
	if s != nil {
		s.addReason(s.m.repliesRefused, reason)
	}
}

// observer returns the trigger's own histogram child (nil unless it has
// histograms of its own).
func (s *triggerSeries) observer(p *atomic.Pointer[prometheus.Observer], vec *prometheus.HistogramVec) prometheus.Observer {
	if s == nil || !s.hist {
		return nil
	}
	if o := p.Load(); o != nil {
		return *o
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return nil
	}
	if o := p.Load(); o != nil {
		return *o
	}
	o := vec.WithLabelValues(s.name)
	p.Store(&o)
	return o
}

// observeAttempt records an attempt's duration, and the time from the
// event's acceptance to its first attempt when firstWait ≥ 0. With a span
// in ctx, the observations carry its trace as an exemplar.
func (m *metrics) observeAttempt(ctx context.Context, s *triggerSeries, dur time.Duration, firstWait time.Duration) {
	ex := exemplarOf(ctx)
	observe(m.attemptDuration, dur.Seconds(), ex)
	if s != nil {
		if o := s.observer(&s.dur, m.trigAttemptDur); o != nil {
			observe(o, dur.Seconds(), ex)
		}
	}
	if firstWait < 0 {
		return
	}
	observe(m.publishToInvoke, firstWait.Seconds(), ex)
	if s != nil {
		if o := s.observer(&s.p2i, m.trigPublishInvoke); o != nil {
			observe(o, firstWait.Seconds(), ex)
		}
	}
}

// exemplarOf returns the exemplar labels of the span in ctx, or nil.
func exemplarOf(ctx context.Context) prometheus.Labels {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return prometheus.Labels{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()}
}

func observe(o prometheus.Observer, v float64, ex prometheus.Labels) {
	if ex != nil {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, ex)
			return
		}
	}
	o.Observe(v)
}
