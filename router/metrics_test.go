package router

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// invokerFunc is a delivery.Invoker made of a function.
type invokerFunc func(context.Context, *delivery.Attempt) delivery.Result

func (f invokerFunc) Invoke(ctx context.Context, a *delivery.Attempt) delivery.Result {
	return f(ctx, a)
}
func (invokerFunc) Close() error { return nil }

// seriesOf returns "family{labels}" of every series carrying trigger=name.
func seriesOf(t *testing.T, reg prometheus.Gatherer, name string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "trigger" && l.GetValue() == name {
					out = append(out, mf.GetName()+labelString(m))
				}
			}
		}
	}
	return out
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// value returns the value of the series of family with exactly labels, and
// whether it exists.
func value(t *testing.T, reg prometheus.Gatherer, family string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// A trigger's series count what happens to its events (enqueued, attempts
// by verdict, dead letters by reason), its gauges show its queue and limits,
// and every one of them disappears once the trigger is deleted, on the
// instance that deleted it and on another one.
func TestTriggerSeriesFollowTheTrigger(t *testing.T) {
	b := testenv.Real(t)
	inv := invokerFunc(func(_ context.Context, a *delivery.Attempt) delivery.Result {
		if strings.HasSuffix(a.Key, "dead") {
			return delivery.Result{Verdict: delivery.DeadNow, Reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, Code: "INVALID_ARGUMENT", Start: time.Now()}
		}
		return delivery.Result{Verdict: delivery.Ack, Start: time.Now(), Duration: time.Millisecond}
	})
	tweak := func(c *Config, i *delivery.Invoker) { *i = inv; c.Metrics.StoreReadTTL = -1 }
	a := startRouter(t, b.Client, b.Prefix, tweak)
	o := startRouter(t, b.Client, b.Prefix, tweak)
	ctx := t.Context()
	_, _, err := a.PutTrigger(ctx, testTrigger("watched", "m"), store.PutApply, 0)
	require.NoError(t, err)
	_, _, err = a.PutTrigger(ctx, testTrigger("other", "o"), store.PutApply, 0)
	require.NoError(t, err)
	_, err = a.Publish(ctx, []*pb.CloudEvent{event("e1", "m"), event("e2", "m"), event("e3-dead", "m")})
	require.NoError(t, err)
	reg := a.Registry()
	lbl := func(kv ...string) map[string]string {
		m := map[string]string{"trigger": "watched"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		acked, _ := value(t, reg, "switchyard_attempts_total", lbl("verdict", "ack"))
		dead, _ := value(t, reg, "switchyard_dead_letters_total", lbl("reason", "NON_RETRYABLE"))
		return acked == 2 && dead == 1
	}, "two events delivered and one dead-lettered")
	for fam, want := range map[string]float64{
		"switchyard_events_enqueued_total":      3,
		"switchyard_trigger_dead_letters":       1,
		"switchyard_trigger_ready":              0,
		"switchyard_trigger_max_concurrency":    trigger.DefaultMaxConcurrency,
		"switchyard_trigger_age_budget_seconds": trigger.DefaultMaxEventAge.Seconds(),
		"switchyard_trigger_breaker_state":      0,
	} {
		got, ok := value(t, reg, fam, lbl())
		require.True(t, ok, fam)
		require.Equal(t, want, got, fam)
	}
	got, ok := value(t, reg, "switchyard_attempts_total", lbl("verdict", "dead"))
	require.True(t, ok)
	require.Equal(t, 1.0, got)
	got, ok = value(t, o.Registry(), "switchyard_trigger_dead_letters", lbl())
	require.True(t, ok, "every instance shows the figures in the store")
	require.Equal(t, 1.0, got)
	require.Empty(t, seriesOf(t, reg, "unknown"))
	require.NotEmpty(t, seriesOf(t, reg, "other"))

	_, lagging, err := a.DeleteTrigger(ctx, "watched", true)
	require.NoError(t, err)
	require.Empty(t, lagging)
	require.Empty(t, seriesOf(t, reg, "watched"), "the deleting instance")
	require.Empty(t, seriesOf(t, o.Registry(), "watched"), "another instance")
	require.NotEmpty(t, seriesOf(t, reg, "other"), "the other trigger keeps its series")
}

// An increment racing the deletion of its trigger does not bring the
// series back.
func TestForgottenTriggerCountsNothing(t *testing.T) {
	m := newMetrics(MetricsConfig{HistogramTriggers: []string{"t"}})
	s := m.track("t")
	s.add(cAck, 1)
	s.deadLetter("MAX_ATTEMPTS")
	m.observeAttempt(context.Background(), s, time.Millisecond, time.Millisecond)
	require.NotEmpty(t, seriesOf(t, m.reg, "t"))
	m.forget("t")
	require.Empty(t, seriesOf(t, m.reg, "t"))
	s.add(cAck, 1)
	s.add(cRetry, 1)
	s.deadLetter("MAX_ATTEMPTS")
	s.replyRefused("HOP_LIMIT")
	m.observeAttempt(context.Background(), s, time.Millisecond, time.Millisecond)
	m.trigger("t").add(cEnqueued, 1) // untracked: nil, counts nothing
	require.Empty(t, seriesOf(t, m.reg, "t"))
	// A trigger created again under the name starts afresh.
	m.track("t").add(cAck, 1)
	got, ok := value(t, m.reg, "switchyard_attempts_total", map[string]string{"trigger": "t", "verdict": "ack"})
	require.True(t, ok)
	require.Equal(t, 1.0, got)
}

// The latency histograms are aggregate; only the triggers named get their
// own, and observations made with a span in the context carry its trace as
// an exemplar.
func TestLatencyHistograms(t *testing.T) {
	m := newMetrics(MetricsConfig{HistogramTriggers: []string{"chosen"}})
	chosen, plain := m.track("chosen"), m.track("plain")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	m.observeAttempt(ctx, chosen, 3*time.Millisecond, 20*time.Millisecond)
	m.observeAttempt(context.Background(), plain, 5*time.Millisecond, -1) // a retry: no publish-to-invoke
	n, _ := value(t, m.reg, "switchyard_attempt_duration_seconds", map[string]string{})
	require.Equal(t, 2.0, n)
	n, _ = value(t, m.reg, "switchyard_publish_to_invoke_seconds", map[string]string{})
	require.Equal(t, 1.0, n)
	for _, fam := range []string{"switchyard_trigger_attempt_duration_seconds", "switchyard_trigger_publish_to_invoke_seconds"} {
		n, ok := value(t, m.reg, fam, map[string]string{"trigger": "chosen"})
		require.True(t, ok, fam)
		require.Equal(t, 1.0, n, fam)
		_, ok = value(t, m.reg, fam, map[string]string{"trigger": "plain"})
		require.False(t, ok, "%s: a trigger not named has no histogram of its own", fam)
	}
	// The exemplar shows in the OpenMetrics exposition.
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true}).ServeHTTP(rec, req)
	body := rec.Body.String()
	ex := `# \{(trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"|span_id="00f067aa0ba902b7",trace_id="4bf92f3577b34da6a3ce929d0e0e4736")\}`
	require.Regexp(t, `switchyard_attempt_duration_seconds_bucket\{le="0.004"\} 1 `+ex+` 0.003 `, body)
	require.Regexp(t, `switchyard_trigger_publish_to_invoke_seconds_bucket\{trigger="chosen",le="0.032"\} 1 `+ex+` 0.02 `, body)
	require.NotContains(t, body, `switchyard_attempt_duration_seconds_bucket{le="0.008"} 2 #`, "no exemplar without a span")
	// Native histograms beside the classic buckets.
	mfs, err := m.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "switchyard_attempt_duration_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			require.NotZero(t, h.GetSchema()+int32(len(h.GetPositiveSpan())), "native buckets")
		}
	}
}

// Failed commands are counted; a missing key is not.
func TestRedisErrorsCounted(t *testing.T) {
	b := testenv.Embedded(t)
	r, err := New(Config{Prefix: b.Prefix, Logger: slog.New(slog.DiscardHandler)}, b.Client, nil)
	require.NoError(t, err)
	ok := redis.NewClient(&redis.Options{Addr: b.Mini.Addr()})
	t.Cleanup(func() { _ = ok.Close() })
	ok.AddHook(r.RedisHook())
	require.ErrorIs(t, ok.Get(t.Context(), "absent").Err(), redis.Nil)
	_, err = ok.Pipelined(t.Context(), func(p redis.Pipeliner) error { p.Get(t.Context(), "absent"); return nil })
	require.ErrorIs(t, err, redis.Nil)
	n, _ := value(t, r.Registry(), "switchyard_redis_errors_total", map[string]string{})
	require.Zero(t, n)
	require.Error(t, ok.Do(t.Context(), "NO-SUCH-COMMAND").Err())
	n, _ = value(t, r.Registry(), "switchyard_redis_errors_total", map[string]string{})
	require.Zero(t, n, "an error reply of one command is not the store failing")
	b.Mini.Close()
	require.Error(t, ok.Ping(t.Context()).Err())
	n, _ = value(t, r.Registry(), "switchyard_redis_errors_total", map[string]string{})
	require.GreaterOrEqual(t, n, 1.0)
}

// Scrapes within StoreReadTTL share one batched read.
func TestQueueGaugesCached(t *testing.T) {
	b := testenv.Real(t)
	counter := &commandCounter{}
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(strings.TrimSuffix(b.URL, "/0"), "redis://")})
	t.Cleanup(func() { _ = rdb.Close() })
	rdb.AddHook(counter)
	r := startRouter(t, rdb, b.Prefix, func(c *Config, _ *delivery.Invoker) {
		c.Metrics.StoreReadTTL = time.Hour
		c.SweepInterval = time.Hour
	})
	_, _, err := r.PutTrigger(t.Context(), testTrigger("c", "c"), store.PutApply, 0)
	require.NoError(t, err)
	_, ok := value(t, r.Registry(), "switchyard_trigger_ready", map[string]string{"trigger": "c"})
	require.True(t, ok)
	before := counter.lens.Load()
	for range 5 {
		_, ok := value(t, r.Registry(), "switchyard_trigger_ready", map[string]string{"trigger": "c"})
		require.True(t, ok)
	}
	require.Equal(t, before, counter.lens.Load(), "no LLEN while the read is fresh")
}

// commandCounter counts LLEN commands, sent alone or pipelined.
type commandCounter struct{ lens atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "llen" {
			c.lens.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if cmd.Name() == "llen" {
				c.lens.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// Bounds of a scrape with 10,000 triggers, generous against what the
// machine does (printed by the test and by switchyard bench, triggers10k):
// the body holds ~14 series per active trigger, a few dozen bytes each.
const (
	scrapeTriggers = 10_000
	maxScrapeBytes = 16 << 20
	maxScrapeTime  = 5 * time.Second
)

// With 10,000 triggers registered, each of them with traffic counted, one
// scrape of /metrics stays under maxScrapeBytes and maxScrapeSeconds, and
// reads Redis in one batched read (rounds of 1,000 queues).
func TestScrapeWith10kTriggers(t *testing.T) {
	if testing.Short() {
		t.Skip("registers 10,000 triggers")
	}
	b := testenv.Real(t)
	ctx := t.Context()
	s := store.New(b.Client, b.Prefix)
	require.NoError(t, s.LoadScripts(ctx))
	_, _, _, err := s.Restore(ctx, nil)
	require.NoError(t, err)
	names := make([]string, scrapeTriggers)
	for i := range names {
		names[i] = fmt.Sprintf("scrape-trigger-%05d", i)
	}
	// Registered through the store directly: written as putScript writes
	// them, in one pipeline (the API's compare-and-set per trigger is not
	// what is measured here).
	_, err = b.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, n := range names {
			raw, err := proto.Marshal(withGen(testTrigger(n, n), 1))
			if err != nil {
				return err
			}
			p.HSet(ctx, s.Keys().Triggers(), n, raw)
		}
		p.Incr(ctx, s.Keys().Revision())
		return nil
	})
	require.NoError(t, err)
	// Some queues hold events.
	batches := map[string][]store.Item{}
	for i := 0; i < len(names); i += 100 {
		batches[names[i]] = []store.Item{{ID: fmt.Sprintf("%d-0", time.Now().UnixMilli()), Event: []byte("e")}}
	}
	_, err = s.Add(ctx, batches)
	require.NoError(t, err)

	// The router's view of the triggers, without dispatchers (they would
	// deliver the events; only the scrape is measured here).
	r, err := New(Config{Prefix: b.Prefix, Logger: slog.New(slog.DiscardHandler)}, b.Client, nil)
	require.NoError(t, err)
	list, ver, err := s.ListTriggers(ctx)
	require.NoError(t, err)
	require.Len(t, list, scrapeTriggers)
	snap := &snapshot{ver: ver, triggers: make(map[string]*trigger.Trigger, len(list)), index: &routeIndex{base: filter.NewIndex(nil)}}
	for _, p := range list {
		tr, err := compile(p)
		require.NoError(t, err)
		snap.triggers[tr.Name()] = tr
		// Traffic on every trigger: the worst case for the counters.
		ser := r.metrics.track(tr.Name())
		ser.add(cEnqueued, 1)
		ser.add(cAck, 1)
		ser.add(cRetry, 1)
	}
	r.snap.Store(snap)

	h := promhttp.HandlerFor(r.Registry(), promhttp.HandlerOpts{})
	scrape := func() (string, time.Duration) {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		el := time.Since(start)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		return rec.Body.String(), el
	}
	bound := maxScrapeTime
	if raceEnabled {
		bound *= 6 // the race detector slows the registry's sorting and encoding
	}
	body, el := scrape()
	t.Logf("scrape with %d triggers: %d bytes (%.0f per trigger) in %s", scrapeTriggers, len(body), float64(len(body))/scrapeTriggers, el)
	require.Less(t, len(body), maxScrapeBytes)
	require.Less(t, el, bound)
	require.Contains(t, body, "\nswitchyard_trigger_ready{trigger=\""+names[100]+"\"} 1\n")
	require.Contains(t, body, "\nswitchyard_trigger_ready{trigger=\""+names[101]+"\"} 0\n")
	require.Contains(t, body, "\nswitchyard_store_up 1\n")
	require.Equal(t, scrapeTriggers, strings.Count(body, "\nswitchyard_trigger_oldest_ready_age_seconds{"))
	body, el = scrape()
	t.Logf("again within the read's TTL: %d bytes in %s", len(body), el)
	require.Less(t, el, bound)
}

// With tracing on, the latency histograms' exemplars are the trace and span
// of the delivery attempt.
func TestExemplarsAreTheAttemptsSpan(t *testing.T) {
	inv := invokerFunc(func(context.Context, *delivery.Attempt) delivery.Result {
		return delivery.Result{Verdict: delivery.Ack, Start: time.Now(), Duration: time.Millisecond}
	})
	r, rec, _ := recordedRouter(t, inv)
	_, err := r.Publish(t.Context(), []*pb.CloudEvent{event("ex-1", "order")})
	require.NoError(t, err)
	var deliver trace.SpanContext
	testenv.Eventually(t, 10*time.Second, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "deliver orders" {
				deliver = s.SpanContext()
				return true
			}
		}
		return false
	}, "the attempt's span ended")
	mfs, err := r.Registry().Gather()
	require.NoError(t, err)
	found := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "switchyard_attempt_duration_seconds" && mf.GetName() != "switchyard_publish_to_invoke_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			exs := m.GetHistogram().GetExemplars() // native histograms keep theirs here
			for _, b := range m.GetHistogram().GetBucket() {
				if b.GetExemplar() != nil {
					exs = append(exs, b.GetExemplar())
				}
			}
			for _, ex := range exs {
				l := map[string]string{}
				for _, p := range ex.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				require.Equal(t, deliver.TraceID().String(), l["trace_id"], mf.GetName())
				require.Equal(t, deliver.SpanID().String(), l["span_id"], mf.GetName())
				found[mf.GetName()] = true
			}
		}
	}
	require.True(t, found["switchyard_attempt_duration_seconds"])
	require.True(t, found["switchyard_publish_to_invoke_seconds"])
}
