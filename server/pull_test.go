package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/server"
)

// puller is one raw PullService stream: a goroutine receives into events
// and leases until the stream ends (end then holds its error).
type puller struct {
	t      *testing.T
	stream switchyardv1.PullService_PullClient
	cancel context.CancelFunc
	events chan *switchyardv1.PulledEvent
	leases chan *switchyardv1.LeaseUpdate
	done   chan struct{}
	end    error
}

func openPull(t *testing.T, c *sdk.Client, trigger string, credits int32) *puller {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.Pulls().Pull(ctx)
	require.NoError(t, err)
	p := &puller{t: t, stream: stream, cancel: cancel, events: make(chan *switchyardv1.PulledEvent, 1000),
		leases: make(chan *switchyardv1.LeaseUpdate, 1000), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				p.end = err
				return
			}
			for _, e := range resp.GetEvents() {
				p.events <- e
			}
			for _, l := range resp.GetLeases() {
				p.leases <- l
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	// A stream the server refused at once fails the Send with io.EOF; the
	// status is what Recv reads.
	if err := stream.Send(&switchyardv1.PullRequest{Trigger: trigger, Credits: credits, Consumer: t.Name()}); !errors.Is(err, io.EOF) {
		require.NoError(t, err)
	}
	return p
}

func (p *puller) send(req *switchyardv1.PullRequest) {
	p.t.Helper()
	require.NoError(p.t, p.stream.Send(req))
}

func (p *puller) answer(e *switchyardv1.PulledEvent, o switchyardv1.PullOutcome, credits int32) {
	p.t.Helper()
	p.send(&switchyardv1.PullRequest{Credits: credits, Answers: []*switchyardv1.PullAnswer{{DeliveryId: e.GetDeliveryId(), Attempt: e.GetAttempt(), Outcome: o}}})
}

// next waits for the next event, failing after timeout.
func (p *puller) next(timeout time.Duration) *switchyardv1.PulledEvent {
	p.t.Helper()
	select {
	case e := <-p.events:
		return e
	case <-p.done:
		p.t.Fatalf("stream ended before an event came: %v", p.end)
	case <-time.After(timeout):
		p.t.Fatalf("no event within %s", timeout)
	}
	return nil
}

// ended waits for the stream's end and returns its status code.
func (p *puller) ended(timeout time.Duration) *status.Status {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("stream did not end within %s", timeout)
	}
	return status.Convert(p.end)
}

func publishN(t *testing.T, c *sdk.Client, typ string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%d", typ, i)
		require.NoError(t, c.Publish(context.Background(), newEvent(ids[i], typ)))
	}
	return ids
}

func stats(t *testing.T, c *sdk.Client, name string) *switchyardv1.TriggerStats {
	t.Helper()
	st, err := c.TriggerStats(context.Background(), name)
	require.NoError(t, err)
	require.Len(t, st, 1)
	return st[0]
}

func pullTrigger(name, typ, delivery string) string {
	return fmt.Sprintf("name: %s\nfilter: {attributes: {type: %s}}\ntarget: {pull: {}}\ndelivery: {%s}\n", name, typ, delivery)
}

func TestPullCompetingConsumersShareTheEvents(t *testing.T) {
	b := testenv.Real(t)
	e := startServer(t, b, nil)
	e.apply(t, pullTrigger("jobs", "job", "timeout: 1m"))
	a := openPull(t, e.client, "jobs", 5)
	c := openPull(t, e.client, "jobs", 5)
	ids := publishN(t, e.client, "job", 30)

	// Each holds at most its 5 credits unanswered, so the other must get
	// the next 5: they compete for one queue.
	seen := map[string]string{}
	var held []*switchyardv1.PulledEvent
	for _, p := range []*puller{a, c} {
		for range 5 {
			ev := p.next(10 * time.Second)
			require.Empty(t, seen[ev.GetEvent().GetId()], "an event went to two consumers")
			seen[ev.GetEvent().GetId()] = fmt.Sprint(p == a)
			require.EqualValues(t, 1, ev.GetAttempt())
			require.Equal(t, "jobs", ev.GetTrigger())
			require.Equal(t, "/test "+ev.GetEvent().GetId(), ev.GetIdempotencyKey())
			require.WithinDuration(t, time.Now().Add(time.Minute), ev.GetLeaseDeadline().AsTime(), 5*time.Second)
			held = append(held, ev)
		}
	}
	st := stats(t, e.client, "jobs")
	require.EqualValues(t, 10, st.GetLeased())
	require.EqualValues(t, 2, st.GetConsumers())
	require.EqualValues(t, 20, st.GetQueued())

	// Answering frees credits: the rest arrives, each event once.
	ackAll := func(p *puller, first []*switchyardv1.PulledEvent, total *int, mu *sync.Mutex, wg *sync.WaitGroup) {
		defer wg.Done()
		for _, ev := range first {
			p.answer(ev, switchyardv1.PullOutcome_PULL_OUTCOME_ACK, 1)
		}
		for {
			select {
			case ev := <-p.events:
				mu.Lock()
				if _, dup := seen[ev.GetEvent().GetId()]; dup {
					mu.Unlock()
					t.Errorf("event %s delivered twice", ev.GetEvent().GetId())
					return
				}
				seen[ev.GetEvent().GetId()] = "later"
				*total++
				mu.Unlock()
				p.answer(ev, switchyardv1.PullOutcome_PULL_OUTCOME_ACK, 1)
			case <-time.After(300 * time.Millisecond):
				mu.Lock()
				n := len(seen)
				mu.Unlock()
				if n == len(ids) {
					return
				}
			}
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var na, nc int
	wg.Add(2)
	go ackAll(a, held[:5], &na, &mu, &wg)
	go ackAll(c, held[5:], &nc, &mu, &wg)
	wg.Wait()
	require.Len(t, seen, len(ids))
	testenv.Eventually(t, 10*time.Second, func() bool { return stats(t, e.client, "jobs").GetDelivered() == int64(len(ids)) }, "every event acknowledged")
	st = stats(t, e.client, "jobs")
	require.EqualValues(t, 0, st.GetLeased())
	require.EqualValues(t, 0, st.GetFailedAttempts())
}

func TestPullLeaseExpiryHandsTheEventToAnotherConsumer(t *testing.T) {
	b := testenv.Real(t)
	e := startServer(t, b, nil)
	e.apply(t, pullTrigger("slow", "slow", "timeout: 300ms, initial_backoff: 10ms, max_backoff: 20ms, max_attempts: 3"))
	a := openPull(t, e.client, "slow", 1)
	publishN(t, e.client, "slow", 1)
	first := a.next(10 * time.Second)
	require.EqualValues(t, 1, first.GetAttempt())

	// a neither answers nor extends: its lease is lost, it is told, and
	// the attempt is recorded.
	select {
	case l := <-a.leases:
		require.Equal(t, first.GetDeliveryId(), l.GetDeliveryId())
		require.Nil(t, l.GetLeaseDeadline(), "lost")
	case <-time.After(10 * time.Second):
		t.Fatal("no lease update")
	}
	// a has no credit left; another consumer gets attempt 2.
	c := openPull(t, e.client, "slow", 1)
	second := c.next(10 * time.Second)
	require.Equal(t, first.GetDeliveryId(), second.GetDeliveryId())
	require.EqualValues(t, 2, second.GetAttempt())
	// a's late answer changes nothing; c's death dead-letters with both attempts.
	a.answer(first, switchyardv1.PullOutcome_PULL_OUTCOME_ACK, 0)
	c.send(&switchyardv1.PullRequest{Answers: []*switchyardv1.PullAnswer{{DeliveryId: second.GetDeliveryId(), Attempt: 2,
		Outcome: switchyardv1.PullOutcome_PULL_OUTCOME_DEAD, Reason: "cannot parse"}}})
	var dls []*switchyardv1.DeadLetter
	testenv.Eventually(t, 10*time.Second, func() bool { dls = deadLetters(t, e.client, "slow"); return len(dls) == 1 }, "dead-lettered")
	require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REJECTED, dls[0].GetReason())
	require.Equal(t, "pull", dls[0].GetTarget())
	var codes []string
	for _, at := range dls[0].GetAttempts() {
		codes = append(codes, fmt.Sprintf("%d:%s", at.GetNumber(), at.GetCode()))
	}
	require.Equal(t, []string{"1:" + router.CodeLeaseExpired, "2:DEAD"}, codes)
	require.Equal(t, "cannot parse", dls[0].GetAttempts()[1].GetMessage())
	st := stats(t, e.client, "slow")
	require.EqualValues(t, 0, st.GetDelivered(), "the late ack of attempt 1 was ignored")
}

func TestPullAttemptsAreExactAcrossRetriesStreamEndsAndReleases(t *testing.T) {
	b := testenv.Real(t)
	e := startServer(t, b, nil)
	e.apply(t, pullTrigger("exact", "exact", "timeout: 1m, initial_backoff: 10ms, max_backoff: 20ms, max_attempts: 4"))
	publishN(t, e.client, "exact", 1)

	a := openPull(t, e.client, "exact", 10)
	ev := a.next(10 * time.Second)
	require.EqualValues(t, 1, ev.GetAttempt())
	a.send(&switchyardv1.PullRequest{Answers: []*switchyardv1.PullAnswer{{DeliveryId: ev.GetDeliveryId(), Attempt: 1,
		Outcome: switchyardv1.PullOutcome_PULL_OUTCOME_RETRY, RetryAfter: durationpb.New(time.Millisecond), Reason: "busy"}}})
	ev = a.next(10 * time.Second)
	require.EqualValues(t, 2, ev.GetAttempt())
	// Released: not counted, the same number comes again.
	a.answer(ev, switchyardv1.PullOutcome_PULL_OUTCOME_RELEASE, 0)
	ev = a.next(10 * time.Second)
	require.EqualValues(t, 2, ev.GetAttempt())
	// The stream ends unanswered: attempt 2 counts and the event is ready
	// again at once for the next consumer.
	a.cancel()
	a.ended(10 * time.Second)
	c := openPull(t, e.client, "exact", 10)
	ev = c.next(10 * time.Second)
	require.EqualValues(t, 3, ev.GetAttempt())
	// A failure with a permanent code dead-letters at once.
	c.send(&switchyardv1.PullRequest{Answers: []*switchyardv1.PullAnswer{{DeliveryId: ev.GetDeliveryId(), Attempt: 3,
		Outcome: switchyardv1.PullOutcome_PULL_OUTCOME_RETRY, Code: int32(codes.InvalidArgument), Reason: "bad payload"}}})
	var dls []*switchyardv1.DeadLetter
	testenv.Eventually(t, 10*time.Second, func() bool { dls = deadLetters(t, e.client, "exact"); return len(dls) == 1 }, "dead-lettered")
	require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, dls[0].GetReason())
	var got []string
	for _, at := range dls[0].GetAttempts() {
		got = append(got, fmt.Sprintf("%d:%s", at.GetNumber(), at.GetCode()))
	}
	require.Equal(t, []string{"1:RETRY", "2:" + router.CodeStreamEnded, "3:INVALID_ARGUMENT"}, got)
	st := stats(t, e.client, "exact")
	require.EqualValues(t, 3, st.GetFailedAttempts(), "attempts 1, 2 and 3; the release is not an attempt")
}

func TestPullMaxAttemptsDeadLettersWithTheWholeHistory(t *testing.T) {
	b := testenv.Real(t)
	e := startServer(t, b, nil)
	e.apply(t, pullTrigger("tries", "tries", "timeout: 1m, initial_backoff: 5ms, max_backoff: 10ms, max_attempts: 3"))
	p := openPull(t, e.client, "tries", 1)
	publishN(t, e.client, "tries", 1)
	for want := int32(1); want <= 3; want++ {
		ev := p.next(10 * time.Second)
		require.Equal(t, want, ev.GetAttempt())
		p.answer(ev, switchyardv1.PullOutcome_PULL_OUTCOME_RETRY, 1)
	}
	var dls []*switchyardv1.DeadLetter
	testenv.Eventually(t, 10*time.Second, func() bool { dls = deadLetters(t, e.client, "tries"); return len(dls) == 1 }, "dead-lettered")
	require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS, dls[0].GetReason())
	require.Len(t, dls[0].GetAttempts(), 3)
	require.Equal(t, "tries-0", dls[0].GetEvent().GetId())
}

func TestPullLeaseExtension(t *testing.T) {
	b := testenv.Real(t)
	e := startServer(t, b, nil)
	e.apply(t, pullTrigger("long", "long", "timeout: 200ms, initial_backoff: 10ms"))
	p := openPull(t, e.client, "long", 1)
	publishN(t, e.client, "long", 1)
	ev := p.next(10 * time.Second)
	p.send(&switchyardv1.PullRequest{Extensions: []*switchyardv1.LeaseExtension{
		{DeliveryId: ev.GetDeliveryId(), Attempt: 1, ExtendBy: durationpb.New(time.Minute)},
		{DeliveryId: ev.GetDeliveryId(), Attempt: 7}, // not held: lost
	}})
	got := map[int32]*switchyardv1.LeaseUpdate{}
	for len(got) < 2 {
		select {
		case l := <-p.leases:
			got[l.GetAttempt()] = l
		case <-time.After(10 * time.Second):
			t.Fatal("no lease updates")
		}
	}
	require.WithinDuration(t, time.Now().Add(time.Minute), got[1].GetLeaseDeadline().AsTime(), 5*time.Second)
	require.Nil(t, got[7].GetLeaseDeadline())
	// Well past the first lease, the event is still this consumer's: no
	// loss is reported and nobody else gets it.
	c := openPull(t, e.client, "long", 1)
	testenv.Eventually(t, 5*time.Second, func() bool { return stats(t, e.client, "long").GetConsumers() == 2 }, "second consumer registered")
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case l := <-p.leases:
			t.Fatalf("unexpected lease update %v", l)
		case x := <-c.events:
			t.Fatalf("the extended event went to another consumer: %v", x)
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.answer(ev, switchyardv1.PullOutcome_PULL_OUTCOME_ACK, 0)
	testenv.Eventually(t, 10*time.Second, func() bool { return stats(t, e.client, "long").GetDelivered() == 1 }, "acknowledged")
	require.EqualValues(t, 0, stats(t, e.client, "long").GetFailedAttempts())
}

func TestPullMaxConcurrencyAcrossInstances(t *testing.T) {
	b := testenv.Real(t)
	named := func(id string) func(*server.Config) { return func(c *server.Config) { c.Router.InstanceID = id } }
	x := startServer(t, b, named("x"))
	y := startServer(t, b, named("y"))
	x.apply(t, pullTrigger("capped", "capped", "timeout: 1m, max_concurrency: 3"))
	px := openPull(t, x.client, "capped", 100)
	py := openPull(t, y.client, "capped", 100)
	ids := publishN(t, x.client, "capped", 12)

	// Outstanding (received, not yet answered) never exceeds 3 across
	// both instances; each consumer holds what it received a little and
	// answers the oldest, so the cap is reached.
	var mu sync.Mutex
	outstanding, peak, done := 0, 0, map[string]bool{}
	var wg sync.WaitGroup
	for _, p := range []*puller{px, py} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []*switchyardv1.PulledEvent
			take := func(ev *switchyardv1.PulledEvent) {
				mu.Lock()
				outstanding++
				peak = max(peak, outstanding)
				mu.Unlock()
				held = append(held, ev)
			}
			for {
				if len(held) == 0 {
					select {
					case ev := <-p.events:
						take(ev)
					case <-p.done:
						return
					case <-time.After(200 * time.Millisecond):
						mu.Lock()
						n := len(done)
						mu.Unlock()
						if n == len(ids) {
							return
						}
						continue
					}
				}
				time.Sleep(30 * time.Millisecond) // hold them a little, so the cap is exercised
				for drained := false; !drained; {
					select {
					case ev := <-p.events:
						take(ev)
					default:
						drained = true
					}
				}
				ev := held[0]
				held = held[1:]
				mu.Lock()
				outstanding--
				done[ev.GetEvent().GetId()] = true
				mu.Unlock()
				p.answer(ev, switchyardv1.PullOutcome_PULL_OUTCOME_ACK, 0)
			}
		}()
	}
	wg.Wait()
	require.Len(t, done, len(ids))
	require.LessOrEqual(t, peak, 3)
	require.Equal(t, 3, peak, "the cap was reached")
	testenv.Eventually(t, 10*time.Second, func() bool { return stats(t, x.client, "capped").GetDelivered() == int64(len(ids)) }, "all acknowledged")
}

func TestPullPushbackAndNoDispatcher(t *testing.T) {
	b := testenv.Real(t)
	e := startServer(t, b, nil)
	e.apply(t, pullTrigger("full", "full", "max_queue: 3"))
	publishN(t, e.client, "full", 3)
	err := e.client.Publish(context.Background(), newEvent("x", "full"))
	var pe *sdk.PushbackError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "full", pe.Trigger)
	// Nothing was pushed or claimed by the server itself.
	st := stats(t, e.client, "full")
	require.EqualValues(t, 3, st.GetQueued())
	require.EqualValues(t, 0, st.GetInFlight())
	require.EqualValues(t, 0, st.GetConsumers())
	// A consumer drains it and the publisher gets through.
	p := openPull(t, e.client, "full", 3)
	for range 3 {
		p.answer(p.next(10*time.Second), switchyardv1.PullOutcome_PULL_OUTCOME_ACK, 0)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return e.client.Publish(context.Background(), newEvent("y", "full")) == nil }, "publish accepted again")
}

func TestPullStreamErrors(t *testing.T) {
	b := testenv.Real(t)
	e := startServer(t, b, nil)
	e.apply(t, pullTrigger("p1", "p1", "timeout: 1m")+"---\nname: pushed\ntarget: {grpc: \"127.0.0.1:1\"}\n")
	cases := map[string]struct {
		trigger string
		next    *switchyardv1.PullRequest
		code    codes.Code
		field   string
	}{
		"unknown trigger":  {trigger: "nope", code: codes.NotFound},
		"push trigger":     {trigger: "pushed", code: codes.FailedPrecondition},
		"bad name":         {trigger: "Bad_Name", code: codes.InvalidArgument, field: "trigger"},
		"negative credits": {trigger: "p1", next: &switchyardv1.PullRequest{Credits: -1}, code: codes.InvalidArgument, field: "credits"},
		"other trigger":    {trigger: "p1", next: &switchyardv1.PullRequest{Trigger: "p2"}, code: codes.InvalidArgument, field: "trigger"},
		"no outcome": {trigger: "p1", next: &switchyardv1.PullRequest{Answers: []*switchyardv1.PullAnswer{{DeliveryId: "x", Attempt: 1}}},
			code: codes.InvalidArgument, field: "answers[0].outcome"},
		"long extension": {trigger: "p1", next: &switchyardv1.PullRequest{Extensions: []*switchyardv1.LeaseExtension{{DeliveryId: "x", Attempt: 1, ExtendBy: durationpb.New(time.Hour)}}},
			code: codes.InvalidArgument, field: "extensions[0].extend_by"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := openPull(t, e.client, tc.trigger, 1)
			if tc.next != nil {
				p.send(tc.next)
			}
			st := p.ended(10 * time.Second)
			require.Equal(t, tc.code, st.Code(), st.Message())
			if tc.field != "" {
				require.Equal(t, tc.field, badRequestField(st))
			}
		})
	}

	t.Run("trigger deleted or changed meanwhile", func(t *testing.T) {
		e.apply(t, pullTrigger("gone", "gone", "")+"---\n"+pullTrigger("moved", "moved", ""))
		g := openPull(t, e.client, "gone", 1)
		m := openPull(t, e.client, "moved", 1)
		testenv.Eventually(t, 5*time.Second, func() bool { return stats(t, e.client, "moved").GetConsumers() == 1 }, "consumer registered")
		_, err := e.client.DeleteTrigger(context.Background(), "gone", true)
		require.NoError(t, err)
		e.apply(t, "name: moved\ntarget: {grpc: \"127.0.0.1:1\"}\n")
		require.Equal(t, codes.NotFound, g.ended(10*time.Second).Code())
		require.Equal(t, codes.FailedPrecondition, m.ended(10*time.Second).Code())
	})
}

func TestPullAuthorization(t *testing.T) {
	b := testenv.Real(t)
	e := startAuthServer(t, b, nil)
	admin := e.as(t, adminToken)
	for _, n := range []string{"shop-jobs", "bank-jobs"} {
		_, err := admin.ApplyTrigger(context.Background(), &switchyardv1.Trigger{Name: n,
			Filter: &switchyardv1.Filter{Attributes: map[string]string{"type": n}},
			Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Pull{Pull: &switchyardv1.PullTarget{}}}})
		require.NoError(t, err)
	}
	require.NoError(t, admin.Publish(context.Background(), newEvent("s1", "shop-jobs")))
	shop := e.as(t, e.key(t, "shop-worker", []string{"consumer"}, &switchyardv1.TokenScope{Triggers: []string{"shop-"}}))
	pub := e.as(t, e.key(t, "shop-pub", []string{"publisher"}, nil))

	p := openPull(t, shop, "shop-jobs", 1)
	ev := p.next(10 * time.Second)
	require.Equal(t, "s1", ev.GetEvent().GetId())
	p.answer(ev, switchyardv1.PullOutcome_PULL_OUTCOME_ACK, 0)

	other := openPull(t, shop, "bank-jobs", 1)
	st := other.ended(10 * time.Second)
	require.Equal(t, codes.NotFound, st.Code(), "another tenant's trigger looks missing")
	require.Equal(t, `trigger "bank-jobs": not found`, st.Message())
	missing := openPull(t, shop, "shop-nope", 1)
	require.Equal(t, st.Message(), `trigger "bank-jobs": not found`)
	require.Equal(t, `trigger "shop-nope": not found`, missing.ended(10*time.Second).Message())

	pp := openPull(t, pub, "shop-jobs", 1)
	require.Equal(t, codes.PermissionDenied, pp.ended(10*time.Second).Code(), "a publisher cannot pull")
	anon, err := sdk.New(sdk.Config{Address: e.srv.GRPCAddr()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = anon.Close() })
	require.Equal(t, codes.Unauthenticated, openPull(t, anon, "shop-jobs", 1).ended(10*time.Second).Code())
}

func TestPullStreamsEndWhenTheServerStops(t *testing.T) {
	b := testenv.Real(t)
	e := startServer(t, b, func(c *server.Config) { c.ShutdownTimeout = 4 * time.Second })
	e.apply(t, pullTrigger("stop", "stop", "timeout: 1m, initial_backoff: 10ms"))
	p := openPull(t, e.client, "stop", 2)
	publishN(t, e.client, "stop", 2)
	answered := p.next(10 * time.Second)
	held := p.next(10 * time.Second)
	stopped := make(chan error, 1)
	go func() { stopped <- e.srv.Shutdown(context.Background()) }()
	// While it drains, the consumer's answer is still recorded.
	p.answer(answered, switchyardv1.PullOutcome_PULL_OUTCOME_ACK, 0)
	require.Equal(t, codes.Unavailable, p.ended(10*time.Second).Code())
	require.NoError(t, <-stopped)

	// On a new instance the held event comes back as attempt 2 at once.
	e2 := startServer(t, b, nil)
	st := stats(t, e2.client, "stop")
	require.EqualValues(t, 1, st.GetDelivered())
	q := openPull(t, e2.client, "stop", 1)
	ev := q.next(10 * time.Second)
	require.Equal(t, held.GetDeliveryId(), ev.GetDeliveryId())
	require.EqualValues(t, 2, ev.GetAttempt())
}
