package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

// pullServer starts a real server on real Redis and returns a client.
func pullServer(t *testing.T) (*server.Server, *sdk.Client) {
	t.Helper()
	b := testenv.Real(t)
	s, err := server.New(context.Background(), server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", RedisURL: b.URL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Router: router.Config{Prefix: b.Prefix, SweepInterval: 100 * time.Millisecond},
	})
	require.NoError(t, err)
	s.Serve()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c, err := sdk.New(sdk.Config{Address: s.GRPCAddr()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return s, c
}

func applyPull(t *testing.T, c *sdk.Client, name, delivery string) {
	t.Helper()
	specs, err := trigger.Parse(fmt.Appendf(nil, "name: %s\nfilter: {attributes: {type: %s}}\ntarget: {pull: {}}\ndelivery: {%s}\n", name, name, delivery))
	require.NoError(t, err)
	_, err = c.ApplyTrigger(context.Background(), trigger.ToProto(specs[0]))
	require.NoError(t, err)
}

func publish(t *testing.T, c *sdk.Client, typ string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		ev := event.New()
		ev.SetID(id)
		ev.SetSource("/sdk-test")
		ev.SetType(typ)
		require.NoError(t, ev.SetData("application/json", []byte(`{"id":"`+id+`"}`)))
		require.NoError(t, c.Publish(context.Background(), ev))
	}
}

func triggerStats(t *testing.T, c *sdk.Client, name string) *switchyardv1.TriggerStats {
	t.Helper()
	st, err := c.TriggerStats(context.Background(), name)
	require.NoError(t, err)
	return st[0]
}

// subscribe runs Subscribe in the background; stop cancels it and returns
// its error.
func subscribe(t *testing.T, c *sdk.Client, name string, h sdk.PullHandler, opts sdk.SubscribeOptions) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Subscribe(ctx, name, h, opts) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestSubscribeHandlerOutcomes(t *testing.T) {
	_, c := pullServer(t)
	applyPull(t, c, "outcomes", "timeout: 1m, initial_backoff: 10ms, max_backoff: 20ms")
	var mu sync.Mutex
	attempts := map[string][]int{}
	bodies := map[string]string{}
	h := func(ctx context.Context, ev event.Event) error {
		info, ok := function.FromContext(ctx)
		require.True(t, ok)
		require.Equal(t, "outcomes", info.Trigger)
		require.Equal(t, "/sdk-test "+ev.ID(), info.IdempotencyKey)
		mu.Lock()
		attempts[ev.ID()] = append(attempts[ev.ID()], info.Attempt)
		bodies[ev.ID()] = string(ev.Data())
		mu.Unlock()
		switch {
		case ev.ID() == "retry" && info.Attempt == 1:
			return function.RetryAfter(20*time.Millisecond, errors.New("not yet"))
		case ev.ID() == "dead":
			return function.Dead(errors.New("malformed"))
		case ev.ID() == "code":
			return status.Error(codes.InvalidArgument, "no such customer")
		case ev.ID() == "panic" && info.Attempt == 1:
			panic("boom")
		case ev.ID() == "plain" && info.Attempt == 1:
			return errors.New("flaky")
		}
		return nil
	}
	subscribe(t, c, "outcomes", h, sdk.SubscribeOptions{Concurrency: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	publish(t, c, "outcomes", "ok", "retry", "dead", "code", "panic", "plain")
	testenv.Eventually(t, 15*time.Second, func() bool {
		st := triggerStats(t, c, "outcomes")
		return st.GetDelivered() == 4 && st.GetDeadLettered() == 2
	}, "4 delivered, 2 dead-lettered")
	mu.Lock()
	require.Equal(t, map[string][]int{"ok": {1}, "retry": {1, 2}, "dead": {1}, "code": {1}, "panic": {1, 2}, "plain": {1, 2}}, attempts)
	require.Equal(t, `{"id":"ok"}`, bodies["ok"], "data byte-exact")
	mu.Unlock()
	res, err := c.DeadLetters().ListDeadLetters(context.Background(), &switchyardv1.ListDeadLettersRequest{Trigger: "outcomes"})
	require.NoError(t, err)
	reasons := map[string]switchyardv1.DeadLetterReason{}
	for _, d := range res.GetDeadLetters() {
		reasons[d.GetEvent().GetId()] = d.GetReason()
	}
	require.Equal(t, map[string]switchyardv1.DeadLetterReason{
		"dead": switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REJECTED,
		"code": switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE,
	}, reasons)
}

func TestSubscribeBoundsConcurrency(t *testing.T) {
	_, c := pullServer(t)
	applyPull(t, c, "bounded", "timeout: 1m")
	var running, peak, done atomic.Int64
	h := func(ctx context.Context, ev event.Event) error {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		running.Add(-1)
		done.Add(1)
		return nil
	}
	subscribe(t, c, "bounded", h, sdk.SubscribeOptions{Concurrency: 3})
	ids := make([]string, 15)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	publish(t, c, "bounded", ids...)
	testenv.Eventually(t, 15*time.Second, func() bool { return done.Load() == 15 }, "all handled")
	require.EqualValues(t, 3, peak.Load(), "at most Concurrency at once, and that many")
	testenv.Eventually(t, 5*time.Second, func() bool { return triggerStats(t, c, "bounded").GetDelivered() == 15 }, "all acknowledged")
}

func TestSubscribeExtendsTheLeaseOfALongHandler(t *testing.T) {
	_, c := pullServer(t)
	applyPull(t, c, "long", "timeout: 300ms, initial_backoff: 10ms")
	var calls atomic.Int64
	h := func(ctx context.Context, ev event.Event) error {
		calls.Add(1)
		select {
		case <-time.After(1200 * time.Millisecond): // four leases long
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	subscribe(t, c, "long", h, sdk.SubscribeOptions{})
	publish(t, c, "long", "l1")
	testenv.Eventually(t, 15*time.Second, func() bool { return triggerStats(t, c, "long").GetDelivered() == 1 }, "acknowledged")
	require.EqualValues(t, 1, calls.Load())
	require.EqualValues(t, 0, triggerStats(t, c, "long").GetFailedAttempts(), "the lease never ran out")
}

func TestSubscribeLeaseLostCancelsTheHandler(t *testing.T) {
	_, c := pullServer(t)
	applyPull(t, c, "lost", "timeout: 200ms, initial_backoff: 10ms, max_attempts: 2")
	cancelled := make(chan int, 2)
	h := func(ctx context.Context, ev event.Event) error {
		info, _ := function.FromContext(ctx)
		<-ctx.Done()
		cancelled <- info.Attempt
		return ctx.Err()
	}
	subscribe(t, c, "lost", h, sdk.SubscribeOptions{MaxLeaseExtension: -1})
	publish(t, c, "lost", "x")
	for want := 1; want <= 2; want++ {
		select {
		case got := <-cancelled:
			require.Equal(t, want, got)
		case <-time.After(10 * time.Second):
			t.Fatal("the handler's context was not cancelled when its lease ran out")
		}
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return triggerStats(t, c, "lost").GetDeadLettered() == 1 }, "dead-lettered after 2 lost leases")
	res, err := c.DeadLetters().ListDeadLetters(context.Background(), &switchyardv1.ListDeadLettersRequest{Trigger: "lost"})
	require.NoError(t, err)
	for _, a := range res.GetDeadLetters()[0].GetAttempts() {
		require.Equal(t, router.CodeLeaseExpired, a.GetCode())
	}
}

func TestSubscribeGracefulStop(t *testing.T) {
	_, c := pullServer(t)
	applyPull(t, c, "graceful", "timeout: 1m, initial_backoff: 10ms")
	started := make(chan string, 2)
	h := func(ctx context.Context, ev event.Event) error {
		started <- ev.ID()
		if ev.ID() == "quick" {
			time.Sleep(100 * time.Millisecond) // finishes within the drain
			return nil
		}
		<-ctx.Done() // outlives the drain: cancelled, its event handed back
		return ctx.Err()
	}
	stop := subscribe(t, c, "graceful", h, sdk.SubscribeOptions{Concurrency: 2, DrainTimeout: 500 * time.Millisecond})
	publish(t, c, "graceful", "quick", "stuck")
	for range 2 {
		<-started
	}
	require.NoError(t, stop())
	st := triggerStats(t, c, "graceful")
	require.EqualValues(t, 1, st.GetDelivered(), "the handler that finished in time was acknowledged")
	require.EqualValues(t, 0, st.GetLeased(), "nothing is left leased")
	require.EqualValues(t, 1, st.GetQueued()+st.GetRetriesScheduled(), "the cancelled one is back in the queue, due at once")
	require.EqualValues(t, 0, st.GetConsumers())

	// The next consumer gets it as attempt 2: the cancelled attempt counts.
	got := make(chan int, 1)
	subscribe(t, c, "graceful", func(ctx context.Context, ev event.Event) error {
		info, _ := function.FromContext(ctx)
		got <- info.Attempt
		return nil
	}, sdk.SubscribeOptions{})
	select {
	case a := <-got:
		require.Equal(t, 2, a)
	case <-time.After(10 * time.Second):
		t.Fatal("not redelivered")
	}
}

func TestSubscribeStopReleasesEventsNotStarted(t *testing.T) {
	_, c := pullServer(t)
	applyPull(t, c, "release", "timeout: 1m")
	gate := make(chan struct{})
	var calls atomic.Int64
	h := func(ctx context.Context, ev event.Event) error {
		if calls.Add(1) == 1 {
			return sdk.Release(errors.New("not now"))
		}
		<-gate
		return nil
	}
	subscribe(t, c, "release", h, sdk.SubscribeOptions{})
	publish(t, c, "release", "r")
	testenv.Eventually(t, 10*time.Second, func() bool { return calls.Load() == 2 }, "handed back and delivered again")
	close(gate)
	testenv.Eventually(t, 10*time.Second, func() bool { return triggerStats(t, c, "release").GetDelivered() == 1 }, "acknowledged")
	require.EqualValues(t, 0, triggerStats(t, c, "release").GetFailedAttempts(), "a release is not an attempt")
}

func TestSubscribePermanentErrors(t *testing.T) {
	_, c := pullServer(t)
	err := c.Subscribe(context.Background(), "nope", func(context.Context, event.Event) error { return nil }, sdk.SubscribeOptions{})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = c.ApplyTrigger(context.Background(), &switchyardv1.Trigger{Name: "pushed",
		Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: "127.0.0.1:1"}}})
	require.NoError(t, err)
	err = c.Subscribe(context.Background(), "pushed", func(context.Context, event.Event) error { return nil }, sdk.SubscribeOptions{})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.Error(t, c.Subscribe(context.Background(), "x", func(context.Context, event.Event) error { return nil }, sdk.SubscribeOptions{Concurrency: -1}))
}
