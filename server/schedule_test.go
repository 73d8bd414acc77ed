package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/internal/otlpsink"
	"github.com/switchyard-io/switchyard/internal/telemetry"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/server"
)

func everySecond() []connectors.SourceConfig {
	return []connectors.SourceConfig{{Name: "tick", Kind: "schedule", Fields: map[string]any{"interval": "1s", "type": "sched.tick", "data": `{"n":1}`}}}
}

// A schedule keeps the record of its last tick in the store: on the
// embedded store, whose restart forgets it with the ticks not yet
// delivered, it is refused unless volatile sources are allowed.
func TestScheduleRefusedOnTheEmbeddedStore(t *testing.T) {
	cfg := server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Sources: everySecond(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := server.Check(cfg)
	require.ErrorIs(t, err, server.ErrVolatileSource)
	require.ErrorContains(t, err, `sources[0] "tick" (schedule)`)
	require.ErrorContains(t, err, "ticks published but not yet delivered")
	cfg.AllowVolatileSources = true
	require.NoError(t, server.Check(cfg))
}

// Two servers on one store, both running the same schedule: each tick is
// delivered once, consecutive, and source list shows the next tick.
func TestScheduleTwoServersOneTickEach(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		rec := &received{}
		fn := startFunction(t, recorder(rec))
		withSource := func(c *server.Config) { c.Sources = everySecond() }
		a := startServer(t, b, withSource)
		a.apply(t, fmt.Sprintf("name: ticks\nfilter: {attributes: {type: sched.tick}}\ntarget: {grpc: %q}\n", fn))
		startServer(t, b, withSource)
		var list *switchyardv1.ListSourcesResponse
		testenv.Eventually(t, 10*time.Second, func() bool {
			var err error
			list, err = a.client.Sources().ListSources(context.Background(), &switchyardv1.ListSourcesRequest{})
			require.NoError(t, err)
			return len(list.GetSources()) == 1 && list.GetSources()[0].GetNextFireTime() != nil
		}, "source list shows the next tick")
		next := list.GetSources()[0].GetNextFireTime().AsTime()
		require.WithinDuration(t, time.Now(), next, 2*time.Second)
		require.Zero(t, next.Nanosecond(), "a tick is on a whole second")

		testenv.Eventually(t, 15*time.Second, func() bool { return rec.count() >= 4 }, "ticks delivered")
		rec.mu.Lock()
		var ticks []time.Time
		seen := map[string]bool{}
		for _, ev := range rec.events {
			require.False(t, seen[ev.ID()], "tick %s delivered twice", ev.ID())
			seen[ev.ID()] = true
			ticks = append(ticks, ev.Time())
			require.JSONEq(t, `{"n":1}`, string(ev.Data()))
		}
		rec.mu.Unlock()
		sort.Slice(ticks, func(i, j int) bool { return ticks[i].Before(ticks[j]) })
		for i := 1; i < len(ticks); i++ {
			require.Equal(t, time.Second, ticks[i].Sub(ticks[i-1]))
		}
	})
}

// /metrics counts a schedule's ticks by outcome (fired here, none late or
// skipped on a running server) and shows when it fires next.
func TestScheduleMetrics(t *testing.T) {
	e := startServer(t, testenv.Real(t), func(c *server.Config) {
		c.Sources = everySecond()
		c.Router.Metrics = router.MetricsConfig{StoreReadTTL: -1}
	})
	fired := regexp.MustCompile(`(?m)^switchyard_schedule_ticks_total\{kind="schedule",outcome="fired",source="tick"\} (\d+)$`)
	next := regexp.MustCompile(`(?m)^switchyard_source_next_fire_timestamp_seconds\{kind="schedule",source="tick"\} (\S+)$`)
	var body string
	testenv.Eventually(t, 15*time.Second, func() bool {
		resp, err := http.Get(e.http + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		body = string(b)
		m := fired.FindStringSubmatch(body)
		return m != nil && m[1] != "0"
	}, "a tick fired")
	for _, want := range []string{
		`switchyard_schedule_ticks_total{kind="schedule",outcome="skipped",source="tick"} 0`,
		`switchyard_schedule_ticks_total{kind="schedule",outcome="taken",source="tick"} `,
		`switchyard_schedule_ticks_late_total{kind="schedule",source="tick"} `,
	} {
		require.Contains(t, body, want)
	}
	m := next.FindStringSubmatch(body)
	require.NotNil(t, m, "the next tick's time is exported")
	at, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	require.InDelta(t, float64(time.Now().Unix()), at, 3, "an interval of 1s fires within a second or so")
}

// With tracing on, a tick is traced as every other ingest: the runner's
// "receive <source>" span, the router's "publish" (PRODUCER, with the
// tick's CloudEvents attributes and its once key) under it, and the
// attempt "deliver <trigger>" under that, in the OTLP receiver.
func TestScheduleTickTraced(t *testing.T) {
	sink, err := otlpsink.Start(true)
	require.NoError(t, err)
	t.Cleanup(sink.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.GRPCAddr())
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	rec := &received{}
	fn := startFunction(t, recorder(rec))
	e := startServer(t, testenv.Real(t), func(c *server.Config) {
		c.Sources = everySecond()
		c.Tracing = telemetry.Config{Exporter: telemetry.ExporterOTLP, Protocol: telemetry.ProtocolGRPC}
	})
	e.apply(t, fmt.Sprintf("name: ticks\nfilter: {attributes: {type: sched.tick}}\ntarget: {grpc: %q}\n", fn))

	byID := map[string]otlpsink.Span{}
	var deliver otlpsink.Span
	testenv.Eventually(t, 30*time.Second, func() bool {
		for _, s := range sink.Spans() {
			byID[s.SpanID] = s
		}
		for _, s := range byID {
			if s.Name != "deliver ticks" {
				continue
			}
			if pub, ok := byID[s.ParentSpanID]; ok {
				if _, ok := byID[pub.ParentSpanID]; ok {
					deliver = s
					return true
				}
			}
		}
		return false
	}, "a tick's receive, publish and deliver spans")
	pub := byID[deliver.ParentSpanID]
	recv := byID[pub.ParentSpanID]
	require.Equal(t, "publish", pub.Name)
	require.Equal(t, tracepb.Span_SPAN_KIND_PRODUCER, pub.Kind)
	require.Equal(t, "receive tick", recv.Name)
	require.Equal(t, tracepb.Span_SPAN_KIND_CLIENT, recv.Kind)
	require.Equal(t, tracepb.Span_SPAN_KIND_CLIENT, deliver.Kind)
	id, _ := pub.Attributes["cloudevents.event_id"].(string)
	require.Regexp(t, `^tick@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, id)
	for k, want := range map[string]any{
		"messaging.system": "switchyard", "messaging.operation.type": "send", "messaging.batch.message_count": int64(1),
		"cloudevents.event_source": "/switchyard/schedule/tick", "cloudevents.event_type": "sched.tick",
		"switchyard.publish.once.key": "tick", "switchyard.publish.once.published": true, "switchyard.publish.routed": int64(1),
	} {
		require.Equal(t, want, pub.Attributes[k], k)
	}
	require.Equal(t, id, deliver.Attributes["cloudevents.event_id"])
	require.Equal(t, "schedule", recv.Attributes["switchyard.source.kind"])
}
