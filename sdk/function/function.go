package function

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Handler processes one event delivered by Switchyard.
//
// The returned error decides the outcome of the attempt: nil acknowledges the
// event, an error made with [Dead] dead-letters it, an error made with
// [RetryAfter] asks for a retry after a delay, a gRPC status error answers
// with its code (classified by Switchyard), and any other error asks for a
// retry after the trigger's backoff. As usual in Go, the [Result] is ignored
// when the error is not nil, so reply events are only emitted on success.
//
// The context carries the attempt's deadline (cancelled when Switchyard stops
// waiting) and the invocation metadata returned by [FromContext]. A handler
// may be called concurrently, for different events and for the same event.
type Handler func(ctx context.Context, ev event.Event) (Result, error)

// Result is what a successful [Handler] returns. The zero Result acknowledges
// the event and emits nothing.
type Result struct {
	// Replies are events published to the bus by Switchyard before the
	// acknowledgement takes effect; Switchyard increments their hop counter.
	// A reply that is not a valid CloudEvent, or that would exceed the hop
	// limit, is not published: it is kept in the trigger's dead-letter
	// queue (reason REPLY_INVALID or HOP_LIMIT) and the event is
	// acknowledged all the same, so the handler does not run again.
	Replies []event.Event
}

// Reply returns a Result that acknowledges the event and emits evs.
func Reply(evs ...event.Event) Result {
	return Result{Replies: evs}
}

// Info is the invocation metadata of one attempt, see [FromContext].
type Info struct {
	// Attempt is the attempt number, starting at 1.
	Attempt int
	// Trigger is the name of the trigger that routed the event.
	Trigger string
	// Deadline is when Switchyard stops waiting for this attempt: the
	// request's deadline field, else the gRPC deadline; zero when neither
	// was sent.
	Deadline time.Time
	// IdempotencyKey is stable across attempts and redeliveries of the event
	// to the trigger, replays included (the event's source and id joined by
	// a space); use it to deduplicate side effects.
	IdempotencyKey string
	// Round is the event's life: 0 until it is first dead-lettered, n once it
	// has been replayed n times from a dead-letter queue. Attempt starts
	// again at 1 with each replay and IdempotencyKey stays the same, so Round
	// tells a replay from a first delivery: deduplicate on (IdempotencyKey,
	// Round) to run a replay's side effects again. Exact across restarts of
	// Switchyard.
	Round int
}

type infoKey struct{}

// FromContext returns the invocation metadata stored in the context passed to
// a [Handler]. The boolean is false for any other context.
func FromContext(ctx context.Context) (Info, bool) {
	info, ok := ctx.Value(infoKey{}).(Info)
	return info, ok
}

// NewContext returns a copy of ctx carrying info, as seen by [FromContext].
// It is meant for unit tests of handlers.
func NewContext(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// RetryError asks Switchyard for another attempt after a delay. Handlers
// create it with [RetryAfter]; tests can detect it with errors.As.
type RetryError struct {
	// After is the least delay before the next attempt. Switchyard caps it
	// with the trigger's max_backoff.
	After time.Duration
	// Err is the cause, recorded as the attempt's reason. It may be nil.
	Err error
}

// RetryAfter returns an error that makes the attempt end with OUTCOME_RETRY
// and asks Switchyard to wait at least d before the next attempt (a zero or
// negative d means the trigger's backoff). err, which may be nil, becomes the
// attempt's reason. The result may be wrapped further.
func RetryAfter(d time.Duration, err error) error {
	return &RetryError{After: max(d, 0), Err: err}
}

// Error implements error.
func (e *RetryError) Error() string {
	msg := "retry after " + e.After.String()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *RetryError) Unwrap() error { return e.Err }

// DeadError makes Switchyard move the event to the dead-letter queue without
// further attempts. Handlers create it with [Dead]; tests can detect it with
// errors.As.
type DeadError struct {
	// Err is the cause, recorded as the dead letter's reason. It may be nil.
	Err error
}

// Dead returns an error that makes the attempt end with OUTCOME_DEAD: the
// event goes to the trigger's dead-letter queue at once, with err (which may
// be nil) as the reason. Use it for events that can never succeed, such as
// malformed payloads. The result may be wrapped further; when an error chain
// holds both a [DeadError] and a [RetryError], the DeadError wins.
func Dead(err error) error {
	return &DeadError{Err: err}
}

// Error implements error.
func (e *DeadError) Error() string {
	if e.Err == nil {
		return "dead"
	}
	return "dead: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *DeadError) Unwrap() error { return e.Err }
