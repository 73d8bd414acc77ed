package schedule

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/connectors"
)

func build(t *testing.T, name string, once connectors.OnceLog, fields map[string]any) (*Source, error) {
	t.Helper()
	spec, ok := connectors.Default.Lookup("schedule")
	require.True(t, ok)
	cfg, err := spec.Build("fields", fields)
	if err != nil {
		return nil, err
	}
	env := connectors.Env{Name: name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Once: once}
	src, err := spec.New(env, cfg)
	if err != nil {
		return nil, err
	}
	return src.(*Source), nil
}

func mustBuild(t *testing.T, name string, once connectors.OnceLog, fields map[string]any) *Source {
	t.Helper()
	s, err := build(t, name, once, fields)
	require.NoError(t, err)
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Ticks: intervals align to the epoch whatever the start; cron reads its
// expression in the time zone (the field, or a CRON_TZ prefix), so a
// local 09:00 follows daylight-saving time.
func TestTicks(t *testing.T) {
	cases := map[string]struct {
		fields map[string]any
		after  string
		want   []string
	}{
		"interval aligned to the epoch": {map[string]any{"interval": "15s"}, "2026-12-06T10:00:07Z",
			[]string{"2026-12-06T10:00:15Z", "2026-12-06T10:00:30Z", "2026-12-06T10:00:45Z"}},
		"interval on a tick moves on": {map[string]any{"interval": "1m"}, "2026-12-06T10:00:00Z",
			[]string{"2026-12-06T10:01:00Z"}},
		"cron in UTC": {map[string]any{"cron": "30 9 * * MON-FRI"}, "2026-12-04T10:00:00Z", // a Friday
			[]string{"2026-12-07T09:30:00Z", "2026-12-08T09:30:00Z"}},
		"cron with seconds": {map[string]any{"cron": "*/20 * * * * *"}, "2026-12-06T10:00:05Z",
			[]string{"2026-12-06T10:00:20Z", "2026-12-06T10:00:40Z", "2026-12-06T10:01:00Z"}},
		"cron in a zone across DST": {map[string]any{"cron": "0 9 * * *", "timezone": "Europe/Paris"}, "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"}}, // 09:00 CET was 08:00Z the day before
		"CRON_TZ prefix wins": {map[string]any{"cron": "CRON_TZ=America/New_York 0 12 * * *", "timezone": "Asia/Tokyo"}, "2026-12-06T00:00:00Z",
			[]string{"2026-12-06T17:00:00Z"}},
		"descriptor": {map[string]any{"cron": "@daily", "timezone": "Asia/Tokyo"}, "2026-12-06T00:00:00Z",
			[]string{"2026-12-06T15:00:00Z"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := mustBuild(t, "s", nil, tc.fields)
			at := utc(tc.after)
			for _, w := range tc.want {
				at = s.ticks.next(at)
				require.Equal(t, utc(w), at.UTC())
			}
		})
	}
}

// Bad fields are refused naming the field.
func TestConfigErrors(t *testing.T) {
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"neither":         {map[string]any{}, "fields.cron: give a cron expression or an interval"},
		"both":            {map[string]any{"cron": "* * * * *", "interval": "1s"}, "fields.interval: give a cron expression or an interval, not both"},
		"bad cron":        {map[string]any{"cron": "61 * * * *"}, "fields.cron"},
		"@every":          {map[string]any{"cron": "@every 5s"}, "fields.cron: \"@every 5s\": @every counts"},
		"never fires":     {map[string]any{"cron": "0 0 30 2 *"}, "never fires"},
		"short interval":  {map[string]any{"interval": "500ms"}, "fields.interval: 500ms: want whole seconds"},
		"odd interval":    {map[string]any{"interval": "1500ms"}, "fields.interval"},
		"unknown zone":    {map[string]any{"cron": "* * * * *", "timezone": "Mars/Olympus"}, "fields.timezone: \"Mars/Olympus\": unknown time zone"},
		"local zone":      {map[string]any{"cron": "* * * * *", "timezone": "Local"}, "fields.timezone"},
		"bad json":        {map[string]any{"interval": "1s", "data": "{nope"}, "fields.data: not valid JSON"},
		"too much data":   {map[string]any{"interval": "1s", "data": strings.Repeat("a", maxData+1), "data_content_type": "text/plain"}, "fields.data"},
		"negative window": {map[string]any{"interval": "1s", "catch_up": "-1s"}, "fields.catch_up"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := build(t, "s", nil, tc.fields)
			require.ErrorContains(t, err, tc.want)
		})
	}
	s := mustBuild(t, "s", nil, map[string]any{"interval": "1s", "data": "hello", "data_content_type": "text/plain", "subject": "x"})
	ev := s.event(utc("2026-12-06T10:00:00Z"))
	require.Equal(t, "s@2026-12-06T10:00:00Z", ev.GetId())
	require.Equal(t, "/switchyard/schedule/s", ev.GetSource())
	require.Equal(t, DefaultType, ev.GetType())
	require.Equal(t, "hello", ev.GetTextData())
	require.Equal(t, "x", ev.GetAttributes()["subject"].GetCeString())
}

type memOnce struct {
	mu        sync.Mutex
	last      map[string]int64
	published []int64
}

func (m *memOnce) LastOnce(_ context.Context, key string) (int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.last[key]
	return v, ok, nil
}

// PublishOnce makes memOnce an in-memory connectors.OnceSink with the
// store's rule: a number greater than the last one recorded is new.
func (m *memOnce) PublishOnce(_ context.Context, key string, seq int64, evs []*pb.CloudEvent) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.last[key]; ok && v >= seq {
		return false, nil
	}
	m.last[key] = seq
	m.published = append(m.published, seq)
	return true, nil
}

func (m *memOnce) Publish(context.Context, []*pb.CloudEvent) error {
	return errors.New("a schedule must publish once")
}

func readTick(t *testing.T, s *Source) (*connectors.Message, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := s.Read(ctx)
	require.NoError(t, err)
	return m, time.UnixMilli(m.Once.Seq).UTC()
}

// A source resumes after the last tick recorded; missed ticks within
// catch_up are read in order, older ones skipped; a tick refused (Ack with
// an error) is read again; a first start begins at the next tick.
func TestResumeAndCatchUp(t *testing.T) {
	now := utc("2026-12-06T10:00:00Z")
	once := &memOnce{last: map[string]int64{"s": now.Add(-10 * time.Second).UnixMilli()}}
	s := mustBuild(t, "s", once, map[string]any{"interval": "1s", "catch_up": "3s"})
	s.now = func() time.Time { return now }
	require.NoError(t, s.Connect(t.Context()))
	m, tick := readTick(t, s)
	require.Equal(t, now.Add(-4*time.Second), tick, "the oldest tick within catch_up and its second of grace")
	require.Equal(t, "s", m.Once.Key)
	require.Equal(t, "2026-12-06T09:59:56Z", m.Position)
	require.NoError(t, m.Ack(t.Context(), nil))
	m, tick = readTick(t, s)
	require.Equal(t, now.Add(-3*time.Second), tick)
	require.Equal(t, tick, s.NextFire(), "a tick read but not acknowledged is the next to fire")
	require.NoError(t, m.Ack(t.Context(), errors.New("not accepted")))
	m, again := readTick(t, s)
	require.Equal(t, tick, again, "a tick not accepted is read again")
	require.NoError(t, m.Ack(t.Context(), nil))
	require.Equal(t, now.Add(-2*time.Second), s.NextFire())

	first := mustBuild(t, "new", once, map[string]any{"interval": "1s"})
	first.now = func() time.Time { return now }
	require.NoError(t, first.Connect(t.Context()))
	require.Equal(t, now.Add(time.Second), first.NextFire(), "a first start fires from the next tick")
}

// Two runners, each with its own source of one schedule, share one sink
// that publishes at most once per tick: the ticks published are
// consecutive, each once, and each runner's count is its share.
func TestRunnersShareTheTicks(t *testing.T) {
	once := &memOnce{last: map[string]int64{}}
	var runners []*connectors.Runner
	for range 2 {
		r, err := connectors.NewRunner(connectors.RunnerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, connectors.Default, once,
			func(string) connectors.Env { return connectors.Env{Once: once} },
			[]connectors.SourceConfig{{Name: "tick", Kind: "schedule", Fields: map[string]any{"interval": "1s"}}})
		require.NoError(t, err)
		r.Start()
		runners = append(runners, r)
	}
	deadline := time.Now().Add(10 * time.Second)
	total := func() (n int64) {
		for _, r := range runners {
			n += r.Status()[0].Events
		}
		return n
	}
	taken := func() (n int64) {
		for _, r := range runners {
			n += r.Status()[0].Ticks.Taken
		}
		return n
	}
	for (total() < 3 || taken() < 1) && time.Now().Before(deadline) {
		require.False(t, runners[0].Status()[0].NextFire.IsZero(), "a running schedule knows its next tick")
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range runners {
		require.NoError(t, r.Stop(t.Context()))
	}
	require.Positive(t, taken(), "a runner saw a tick the other had published")
	for i, r := range runners {
		st := r.Status()[0]
		require.Equal(t, st.Events, st.Ticks.Fired, "runner %d: the ticks it fired are the events it published", i)
		require.Zero(t, st.Ticks.Skipped, "runner %d", i)
	}
	once.mu.Lock()
	defer once.mu.Unlock()
	require.GreaterOrEqual(t, len(once.published), 3)
	require.EqualValues(t, len(once.published), total(), "the runners count what they published, not what the other did")
	for i := 1; i < len(once.published); i++ {
		require.EqualValues(t, 1000, once.published[i]-once.published[i-1], "consecutive ticks")
	}
}

// A source counts its share of the ticks: those it fired (late ones too:
// published a second or more after their time), those another instance
// had fired, and those a resume skipped past catch_up.
func TestTickCounts(t *testing.T) {
	now := utc("2026-12-06T10:00:00Z")
	once := &memOnce{last: map[string]int64{"s": now.Add(-10 * time.Second).UnixMilli()}}
	s := mustBuild(t, "s", once, map[string]any{"interval": "1s", "catch_up": "3s"})
	s.now = func() time.Time { return now }
	require.NoError(t, s.Connect(t.Context()))
	m, tick := readTick(t, s)
	require.Equal(t, now.Add(-4*time.Second), tick)
	require.Equal(t, connectors.TickCounts{Skipped: 5}, s.TickCounts(), "09:59:51 to 09:59:55 skipped")
	m.Once.Published = true // as the runner says of a tick it wrote
	require.NoError(t, m.Ack(t.Context(), nil))
	m, _ = readTick(t, s)
	require.NoError(t, m.Ack(t.Context(), nil)) // another instance wrote it
	m, _ = readTick(t, s)
	require.NoError(t, m.Ack(t.Context(), errors.New("not accepted")))
	require.Equal(t, connectors.TickCounts{Fired: 1, Late: 1, Taken: 1, Skipped: 5}, s.TickCounts())

	// A tick fired on time is not late.
	s.now = func() time.Time { return now.Add(10 * time.Second) }
	s.cursor = now.Add(10*time.Second - time.Second)
	m, tick = readTick(t, s)
	require.Equal(t, now.Add(10*time.Second), tick)
	m.Once.Published = true
	require.NoError(t, m.Ack(t.Context(), nil))
	require.Equal(t, connectors.TickCounts{Fired: 2, Late: 1, Taken: 1, Skipped: 5}, s.TickCounts())
}

// countTicks counts an interval's ticks by arithmetic and a cron
// schedule's by stepping, bounded.
func TestCountTicks(t *testing.T) {
	from := utc("2026-12-06T10:00:00Z")
	require.EqualValues(t, 60, countTicks(interval{time.Minute}, from, from.Add(time.Hour)))
	require.EqualValues(t, 0, countTicks(interval{time.Minute}, from, from))
	c := mustBuild(t, "c", nil, map[string]any{"cron": "*/15 * * * *"})
	require.EqualValues(t, 4, countTicks(c.ticks, from, from.Add(time.Hour)))
	every := mustBuild(t, "e", nil, map[string]any{"cron": "* * * * * *"})
	require.EqualValues(t, maxSkipCount, countTicks(every.ticks, from, from.Add(1000*time.Hour)), "a lower bound past maxSkipCount")
}
