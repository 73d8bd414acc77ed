package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/internal/panics"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/store"
)

// pullService serves PullService: one router.Consumer per stream. The
// handler's goroutine runs the stream's lifecycle; one goroutine receives
// (credits, answers, extensions go to the consumer) and one sends what the
// consumer's Next returns.
type pullService struct {
	switchyardv1.UnimplementedPullServiceServer
	r *router.Router
	// quit is closed when the server starts shutting down: streams stop
	// receiving events, wait up to drain for the answers of those leased,
	// then end with UNAVAILABLE.
	quit  <-chan struct{}
	drain time.Duration
	log   *slog.Logger
}

// Limits of one PullRequest.
const (
	maxPullConsumerName = 128
	maxPullItems        = 10_000 // answers, extensions
)

// pullDrain is how long a stopping server waits for the answers of the
// events its pull streams hold (bounded by the shutdown timeout).
func pullDrain(shutdown time.Duration) time.Duration { return min(shutdown/2, 10*time.Second) }

func (s *pullService) Pull(stream switchyardv1.PullService_PullServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	name := first.GetTrigger()
	if err := checkTriggerName("trigger", name); err != nil {
		return err
	}
	if len(first.GetConsumer()) > maxPullConsumerName {
		return invalidField("consumer", "at most %d bytes, got %d", maxPullConsumerName, len(first.GetConsumer()))
	}
	if err := allowTriggers(ctx, auth.PermConsume, name); err != nil {
		return err
	}
	if err := checkPullRequest(first, name); err != nil {
		return err
	}
	c, err := s.r.Consume(ctx, name, router.ConsumerConfig{Name: first.GetConsumer()})
	if err != nil {
		return pullStatus(err)
	}
	// ended stops the receiver from applying requests once the stream's
	// end is decided, so that Close sees every answer recorded or none.
	var mu sync.Mutex
	ended := false
	apply := func(req *switchyardv1.PullRequest) bool {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return false
		}
		applyPull(ctx, c, req)
		return true
	}
	end := func() {
		mu.Lock()
		ended = true
		mu.Unlock()
	}
	apply(first)

	sendCtx, stopSend := context.WithCancel(ctx)
	defer stopSend()
	sent := make(chan error, 1)
	// A panic in either goroutine ends the stream as an error (the
	// consumer's leased events are handed back), never the process.
	internal := status.Error(codes.Internal, "internal error")
	go func() {
		defer panics.Catch(s.log, "server.pull.send", func(any) { sent <- internal })
		sent <- s.send(sendCtx, stream, c, name)
	}()
	// The receiver ends once Recv fails, at the latest when this handler
	// returns (gRPC then cancels the stream).
	received := make(chan error, 1)
	go func() {
		defer panics.Catch(s.log, "server.pull.receive", func(any) { received <- internal })
		for {
			req, err := stream.Recv()
			if err == nil {
				err = checkPullRequest(req, name)
			}
			if err != nil {
				received <- err
				return
			}
			if !apply(req) {
				received <- nil
				return
			}
		}
	}()
	var expiry <-chan time.Time
	if id := caller(ctx); id != nil && !id.Expires.IsZero() {
		t := time.NewTimer(time.Until(id.Expires))
		defer t.Stop()
		expiry = t.C
	}
	finish := func(err error) error {
		end()
		stopSend()
		if serr := <-sent; err == nil && serr != nil && !errors.Is(serr, context.Canceled) {
			err = pullStatus(serr)
		}
		c.Close()
		return err
	}
	select {
	case err := <-received:
		if errors.Is(err, io.EOF) {
			// The consumer closed its side: every answer it sent is
			// recorded; what it still holds is handed back.
			return finish(nil)
		}
		return finish(err)
	case err := <-sent:
		sent <- err // for finish
		return finish(pullStatus(err))
	case <-expiry:
		return finish(status.Error(codes.Unauthenticated, "the credential expired: reconnect with a valid one"))
	case <-s.quit:
		c.Drain()
		deadline := time.NewTimer(s.drain)
		defer deadline.Stop()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for c.Leased() > 0 {
			select {
			case err := <-received:
				if errors.Is(err, io.EOF) {
					return finish(nil)
				}
				return finish(err)
			case <-deadline.C:
				return finish(status.Error(codes.Unavailable, "switchyard is shutting down: reconnect"))
			case <-tick.C:
			}
		}
		return finish(status.Error(codes.Unavailable, "switchyard is shutting down: reconnect"))
	}
}

// send sends what the consumer's Next returns until it fails.
func (s *pullService) send(ctx context.Context, stream switchyardv1.PullService_PullServer, c *router.Consumer, name string) error {
	for {
		p, err := c.Next(ctx)
		if err != nil {
			return err
		}
		resp := &switchyardv1.PullResponse{}
		for _, e := range p.Events {
			ev := &pb.CloudEvent{}
			if err := proto.Unmarshal(e.Event, ev); err != nil {
				// The router scanned it before leasing it: not reached.
				s.log.Error("pulled event does not decode", "trigger", name, "delivery_id", e.ID, "err", err)
			}
			resp.Events = append(resp.Events, &switchyardv1.PulledEvent{
				Event: ev, DeliveryId: e.ID, Attempt: int32(e.Attempt), LeaseDeadline: timestamppb.New(e.Deadline),
				IdempotencyKey: e.Key, Round: int32(e.Round), Trigger: name,
			})
		}
		for _, u := range p.Leases {
			lu := &switchyardv1.LeaseUpdate{DeliveryId: u.ID, Attempt: int32(u.Attempt)}
			if !u.Deadline.IsZero() {
				lu.LeaseDeadline = timestamppb.New(u.Deadline)
			}
			resp.Leases = append(resp.Leases, lu)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// checkPullRequest refuses a request that breaks the protocol, naming the
// field; nothing of it is applied.
func checkPullRequest(req *switchyardv1.PullRequest, name string) error {
	if t := req.GetTrigger(); t != "" && t != name {
		return invalidField("trigger", "the stream consumes %q; a later request names it or leaves it empty, got %q", name, t)
	}
	if req.GetCredits() < 0 {
		return invalidField("credits", "must not be negative, got %d", req.GetCredits())
	}
	if len(req.GetAnswers()) > maxPullItems {
		return invalidField("answers", "at most %d per request, got %d", maxPullItems, len(req.GetAnswers()))
	}
	if len(req.GetExtensions()) > maxPullItems {
		return invalidField("extensions", "at most %d per request, got %d", maxPullItems, len(req.GetExtensions()))
	}
	for i, a := range req.GetAnswers() {
		p := fmt.Sprintf("answers[%d]", i)
		switch {
		case a.GetDeliveryId() == "":
			return invalidField(p+".delivery_id", "required")
		case a.GetAttempt() < 1:
			return invalidField(p+".attempt", "must be at least 1, got %d", a.GetAttempt())
		case a.GetOutcome() < switchyardv1.PullOutcome_PULL_OUTCOME_ACK || a.GetOutcome() > switchyardv1.PullOutcome_PULL_OUTCOME_RELEASE:
			return invalidField(p+".outcome", "want ACK, RETRY, DEAD or RELEASE, got %v", a.GetOutcome())
		case a.GetRetryAfter() != nil && (a.GetRetryAfter().CheckValid() != nil || a.GetRetryAfter().AsDuration() < 0):
			return invalidField(p+".retry_after", "must be a valid, non-negative duration")
		case a.GetCode() < 0 || a.GetCode() > int32(codes.Unauthenticated):
			return invalidField(p+".code", "not a google.rpc.Code: %d", a.GetCode())
		}
	}
	for i, e := range req.GetExtensions() {
		p := fmt.Sprintf("extensions[%d]", i)
		switch {
		case e.GetDeliveryId() == "":
			return invalidField(p+".delivery_id", "required")
		case e.GetAttempt() < 1:
			return invalidField(p+".attempt", "must be at least 1, got %d", e.GetAttempt())
		case e.GetExtendBy() != nil && (e.GetExtendBy().CheckValid() != nil || e.GetExtendBy().AsDuration() < 0 || e.GetExtendBy().AsDuration() > router.MaxLeaseExtension):
			return invalidField(p+".extend_by", "must be between 0 (the trigger's timeout) and %s", router.MaxLeaseExtension)
		}
	}
	return nil
}

// applyPull hands a checked request to the consumer: answers first (they
// free slots), then extensions, then credits.
func applyPull(ctx context.Context, c *router.Consumer, req *switchyardv1.PullRequest) {
	if as := req.GetAnswers(); len(as) > 0 {
		answers := make([]router.Answer, len(as))
		for i, a := range as {
			answers[i] = router.Answer{
				AttemptRef: store.AttemptRef{ID: a.GetDeliveryId(), Attempt: int(a.GetAttempt())},
				Outcome:    router.PullOutcome(a.GetOutcome()),
				RetryAfter: a.GetRetryAfter().AsDuration(),
				Reason:     a.GetReason(),
				Code:       codes.Code(a.GetCode()),
			}
		}
		c.Answer(answers)
	}
	if es := req.GetExtensions(); len(es) > 0 {
		reqs := make([]router.LeaseRequest, len(es))
		for i, e := range es {
			reqs[i] = router.LeaseRequest{AttemptRef: store.AttemptRef{ID: e.GetDeliveryId(), Attempt: int(e.GetAttempt())}, By: e.GetExtendBy().AsDuration()}
		}
		c.Extend(ctx, reqs)
	}
	c.Grant(int(req.GetCredits()))
}

// pullStatus maps the router's errors of a pull stream to statuses.
func pullStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, router.ErrNotPullTrigger):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, router.ErrConsumerClosed), errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return StatusFor(err)
}
