package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

func newEvent(id, typ string) event.Event {
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/test")
	ev.SetType(typ)
	_ = ev.SetData("application/json", []byte(`{"n":1}`))
	return ev
}

// failing answers with code for the first n attempts of each event, then acks.
type failing struct {
	mu       sync.Mutex
	attempts map[string][]int
	n        int
	code     codes.Code
	ok       atomic.Int64
}

func (f *failing) handle(ctx context.Context, ev event.Event) (function.Result, error) {
	info, _ := function.FromContext(ctx)
	f.mu.Lock()
	f.attempts[ev.ID()] = append(f.attempts[ev.ID()], info.Attempt)
	f.mu.Unlock()
	if f.n < 0 || info.Attempt <= f.n {
		return function.Result{}, status.Error(f.code, "injected failure")
	}
	f.ok.Add(1)
	return function.Result{}, nil
}

func deadLetters(t *testing.T, c *sdk.Client, trigger string) []*switchyardv1.DeadLetter {
	t.Helper()
	res, err := c.DeadLetters().ListDeadLetters(context.Background(), &switchyardv1.ListDeadLettersRequest{Trigger: trigger, PageSize: 1000})
	require.NoError(t, err)
	return res.GetDeadLetters()
}

func TestRetriesThenSuccessAndDeadLetters(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		flaky := &failing{attempts: map[string][]int{}, n: 2, code: codes.Unavailable}
		bad := &failing{attempts: map[string][]int{}, n: -1, code: codes.InvalidArgument}
		down := &failing{attempts: map[string][]int{}, n: -1, code: codes.Unavailable}
		e := startServer(t, b, nil)
		e.apply(t, fmt.Sprintf(`
name: flaky
filter: {attributes: {type: flaky}}
target: {grpc: "%s"}
delivery: {initial_backoff: 10ms, max_backoff: 50ms}
---
name: bad
filter: {attributes: {type: bad}}
target: {grpc: "%s"}
---
name: down
filter: {attributes: {type: down}}
target: {grpc: "%s"}
delivery: {max_attempts: 3, initial_backoff: 10ms, max_backoff: 20ms}
`, startFunction(t, flaky.handle), startFunction(t, bad.handle), startFunction(t, down.handle)))
		ctx := context.Background()
		for i := range 5 {
			require.NoError(t, e.client.Publish(ctx, newEvent(fmt.Sprintf("f%d", i), "flaky")))
		}
		require.NoError(t, e.client.Publish(ctx, newEvent("b1", "bad")))
		require.NoError(t, e.client.Publish(ctx, newEvent("d1", "down")))

		testenv.Eventually(t, 15*time.Second, func() bool { return flaky.ok.Load() == 5 }, "5 flaky events delivered on attempt 3")
		flaky.mu.Lock()
		for id, as := range flaky.attempts {
			require.Equal(t, []int{1, 2, 3}, as, "attempts of %s are exact and ordered", id)
		}
		flaky.mu.Unlock()

		testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, e.client, "bad")) == 1 }, "bad event dead-lettered")
		dl := deadLetters(t, e.client, "bad")[0]
		require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, dl.GetReason())
		require.Len(t, dl.GetAttempts(), 1, "INVALID_ARGUMENT is not retried")
		require.Equal(t, "INVALID_ARGUMENT", dl.GetAttempts()[0].GetCode())
		require.Equal(t, "b1", dl.GetEvent().GetId())
		require.Equal(t, []byte(`{"n":1}`), []byte(dl.GetEvent().GetTextData()+string(dl.GetEvent().GetBinaryData())))

		testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, e.client, "down")) == 1 }, "down event dead-lettered")
		dl = deadLetters(t, e.client, "down")[0]
		require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS, dl.GetReason())
		require.Len(t, dl.GetAttempts(), 3)
		for i, a := range dl.GetAttempts() {
			require.EqualValues(t, i+1, a.GetNumber())
			require.Equal(t, "UNAVAILABLE", a.GetCode())
			require.Equal(t, "injected failure", a.GetMessage())
		}
		require.Equal(t, "grpc://"+dl.GetTarget()[len("grpc://"):], dl.GetTarget())

		// Show, replay into a trigger whose function still fails: back in the
		// DLQ with both lives' attempts.
		got, err := e.client.DeadLetters().GetDeadLetter(ctx, &switchyardv1.GetDeadLetterRequest{Id: dl.GetId()})
		require.NoError(t, err)
		require.Equal(t, dl.GetId(), got.GetDeadLetter().GetId())
		st, err := e.client.DeadLetters().ReplayDeadLetters(ctx, &switchyardv1.ReplayDeadLettersRequest{Trigger: "down", All: true})
		require.NoError(t, err)
		var last *switchyardv1.ReplayDeadLettersResponse
		for {
			m, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			last = m
		}
		require.True(t, last.GetDone())
		require.EqualValues(t, 1, last.GetReplayed())
		testenv.Eventually(t, 10*time.Second, func() bool {
			d := deadLetters(t, e.client, "down")
			return len(d) == 1 && len(d[0].GetAttempts()) == 6
		}, "replayed event dead again with both histories")
		dl = deadLetters(t, e.client, "down")[0]
		require.EqualValues(t, 1, dl.GetReplays())
		require.EqualValues(t, 0, dl.GetAttempts()[2].GetRound())
		require.EqualValues(t, 1, dl.GetAttempts()[3].GetRound())
		require.EqualValues(t, 1, dl.GetAttempts()[3].GetNumber(), "fresh attempts after a replay")

		// Purge.
		pr, err := e.client.DeadLetters().PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "down", All: true})
		require.NoError(t, err)
		require.EqualValues(t, 1, pr.GetPurged())
		require.Empty(t, deadLetters(t, e.client, "down"))
		_, err = e.client.DeadLetters().PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "down", All: true, OlderThan: durationpb.New(time.Hour)})
		require.Equal(t, codes.InvalidArgument, status.Code(err))

		stats, err := e.client.TriggerStats(ctx, "down")
		require.NoError(t, err)
		require.EqualValues(t, 2, stats[0].GetDeadLettered())
		require.EqualValues(t, 6, stats[0].GetFailedAttempts())
	})
}

func TestTimeoutIsRetriedThenDeadLettered(t *testing.T) {
	b := testenv.Embedded(t)
	var calls atomic.Int64
	release := make(chan struct{})
	// The function hangs past the timeout whatever its context says.
	hang := func(ctx context.Context, ev event.Event) (function.Result, error) {
		calls.Add(1)
		<-release
		return function.Result{}, nil
	}
	e := startServer(t, b, nil)
	e.apply(t, fmt.Sprintf(`{"name":"hang","target":{"grpc":"%s"},"delivery":{"timeout":"100ms","max_attempts":2,"initial_backoff":"10ms","max_backoff":"20ms"}}`, startFunction(t, hang)))
	t.Cleanup(func() { close(release) }) // runs before the function server stops
	require.NoError(t, e.client.Publish(context.Background(), newEvent("h1", "x")))
	testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, e.client, "hang")) == 1 }, "dead letter")
	dl := deadLetters(t, e.client, "hang")[0]
	require.Len(t, dl.GetAttempts(), 2)
	require.Equal(t, "DEADLINE_EXCEEDED", dl.GetAttempts()[0].GetCode())
	// Each attempt was given up at its deadline; on a loaded machine an
	// attempt can time out before its call reaches the function, so the
	// function saw one or two of them, never more.
	require.LessOrEqual(t, calls.Load(), int64(2))
	require.GreaterOrEqual(t, calls.Load(), int64(1))
}

func TestQueueFullPushesBack(t *testing.T) {
	b := testenv.Embedded(t)
	block := make(chan struct{})
	stall := func(ctx context.Context, ev event.Event) (function.Result, error) {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return function.Result{}, nil
	}
	e := startServer(t, b, nil)
	e.apply(t, fmt.Sprintf(`{"name":"small","filter":{"attributes":{"type":"small"}},"target":{"grpc":"%s"},"delivery":{"max_queue":5,"max_concurrency":1}}`, startFunction(t, stall)))
	t.Cleanup(func() { close(block) }) // before the function server stops
	ctx := context.Background()
	accepted := 0
	var pushErr error
	for i := range 20 {
		err := e.client.Publish(ctx, newEvent(fmt.Sprintf("s%d", i), "small"))
		if err != nil {
			pushErr = err
			break
		}
		accepted++
	}
	require.Error(t, pushErr)
	var pe *sdk.PushbackError
	require.ErrorAs(t, pushErr, &pe)
	require.Equal(t, "small", pe.Trigger)
	require.Greater(t, pe.RetryAfter, time.Duration(0))
	require.Equal(t, 5, accepted)
	st, body := e.post(t, "application/cloudevents+json", nil, []byte(`{"specversion":"1.0","id":"h","source":"/s","type":"small"}`))
	require.Equal(t, http.StatusTooManyRequests, st)
	require.Contains(t, body["detail"], "small")
	// A batch that includes one event for the full trigger is refused whole.
	st, _ = e.post(t, "application/cloudevents-batch+json", nil, []byte(`[{"specversion":"1.0","id":"o1","source":"/s","type":"other"},{"specversion":"1.0","id":"o2","source":"/s","type":"small"}]`))
	require.Equal(t, http.StatusTooManyRequests, st)
	testenv.Eventually(t, 10*time.Second, func() bool {
		stats, err := e.client.TriggerStats(ctx, "small")
		return err == nil && stats[0].GetEnqueued() == 5
	}, "the 5 accepted events queued")
	logLen, err := e.srv.Router().Store().LogLength(ctx)
	require.NoError(t, err)
	require.Zero(t, logLen, "nothing beyond the cap was accepted")
	stats, err := e.client.TriggerStats(ctx, "small")
	require.NoError(t, err)
	require.EqualValues(t, 5, stats[0].GetEnqueued(), "nothing beyond the cap was accepted")
}

func TestBreakerOpensOnFailingTarget(t *testing.T) {
	b := testenv.Embedded(t)
	down := &failing{attempts: map[string][]int{}, n: -1, code: codes.Unavailable}
	e := startServer(t, b, nil)
	e.apply(t, fmt.Sprintf(`{"name":"brk","target":{"grpc":"%s"},"delivery":{"max_attempts":50,"initial_backoff":"1ms","max_backoff":"5ms","max_concurrency":1}}`, startFunction(t, down.handle)))
	for i := range 10 {
		require.NoError(t, e.client.Publish(context.Background(), newEvent(fmt.Sprintf("k%d", i), "x")))
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		st, err := e.client.TriggerStats(context.Background(), "brk")
		return err == nil && st[0].GetEnqueued() == 10
	}, "all 10 events queued")
	// The breaker half-opens after its cooldown (a probe), so the state is
	// checked on the one reading that shows it open, not on a later one.
	var st []*switchyardv1.TriggerStats
	testenv.Eventually(t, 10*time.Second, func() bool {
		var err error
		st, err = e.client.TriggerStats(context.Background(), "brk")
		return err == nil && st[0].GetBreaker() == switchyardv1.BreakerState_BREAKER_STATE_OPEN
	}, "breaker opens")
	require.GreaterOrEqual(t, st[0].GetConsecutiveFailures(), int64(5))
	require.Zero(t, st[0].GetDeadLettered())
	require.NotNil(t, st[0].GetBreakerRetryTime())
	require.EqualValues(t, 10, st[0].GetQueued()+st[0].GetRetriesScheduled()+st[0].GetInFlight(), "events wait, none dropped")
	require.Contains(t, strings.ToLower(st[0].GetBreaker().String()), "open")
}

func TestDeadLetterRetentionPerTrigger(t *testing.T) {
	b := testenv.Embedded(t)
	bad := &failing{attempts: map[string][]int{}, n: -1, code: codes.InvalidArgument}
	e := startServer(t, b, nil)
	e.apply(t, fmt.Sprintf(`{"name":"capped","target":{"grpc":"%s"},"delivery":{"dead_letter_max_entries":3}}`, startFunction(t, bad.handle)))
	for i := range 5 {
		require.NoError(t, e.client.Publish(context.Background(), newEvent(fmt.Sprintf("c%d", i), "x")))
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		st, err := e.client.TriggerStats(context.Background(), "capped")
		return err == nil && st[0].GetDeadLettered() == 5
	}, "5 dead-lettered")
	st, err := e.client.TriggerStats(context.Background(), "capped")
	require.NoError(t, err)
	require.EqualValues(t, 3, st[0].GetDeadLetters(), "the cap holds")
	require.EqualValues(t, 2, st[0].GetDeadLettersEvicted(), "evictions are counted, never silent")
	ids := map[string]bool{}
	for _, dl := range deadLetters(t, e.client, "capped") {
		ids[dl.GetEvent().GetId()] = true
	}
	require.Len(t, ids, 3)
}

// A retry goes out when its backoff is over, not when a sweep or a lease
// next looks at the queue: with both many minutes away, a function failing
// twice still gets its third attempt within the test's patience.
func TestRetryDueWakesTheDispatcher(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		flaky := &failing{attempts: map[string][]int{}, n: 2, code: codes.Unavailable}
		e := startServer(t, b, func(c *server.Config) { c.Router.SweepInterval = time.Hour })
		e.apply(t, fmt.Sprintf(`
name: soon
filter: {attributes: {type: soon}}
target: {grpc: "%s"}
delivery: {timeout: 15m, initial_backoff: 10ms, max_backoff: 50ms}
`, startFunction(t, flaky.handle)))
		require.NoError(t, e.client.Publish(context.Background(), newEvent("s1", "soon")))
		testenv.Eventually(t, 10*time.Second, func() bool { return flaky.ok.Load() == 1 }, "delivered on attempt 3")
		flaky.mu.Lock()
		defer flaky.mu.Unlock()
		require.Equal(t, []int{1, 2, 3}, flaky.attempts["s1"])
	})
}
