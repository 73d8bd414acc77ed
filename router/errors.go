package router

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrUnavailable means the store cannot be reached; retry later.
	ErrUnavailable = errors.New("store unavailable")
	// ErrStopping means the router is shutting down and takes no new events.
	ErrStopping = errors.New("shutting down")
)

// InvalidEventsError lists the events a publish refused; nothing was accepted.
// Each error is a *cloudevent.Error carrying the event's index.
type InvalidEventsError struct{ Errs []error }

func (e *InvalidEventsError) Error() string {
	if len(e.Errs) == 1 {
		return e.Errs[0].Error()
	}
	return fmt.Sprintf("%d invalid events: %v", len(e.Errs), errors.Join(e.Errs...))
}

// Unwrap returns the individual errors.
func (e *InvalidEventsError) Unwrap() []error { return e.Errs }

// PushbackError means a matching trigger's queue is full: nothing was
// accepted; the publisher should retry after RetryAfter. Undelivered counts what admission compares with max_queue: the
// trigger's events not yet delivered or dead-lettered (queued, in flight,
// waiting for a retry, or accepted and not yet fanned out), the figure
// `trigger stats` shows as UNDELIVERED.
type PushbackError struct {
	Trigger     string
	Undelivered int64
	MaxQueue    int64
	RetryAfter  time.Duration
}

func (e *PushbackError) Error() string {
	noun := "events"
	if e.Undelivered == 1 {
		noun = "event"
	}
	return fmt.Sprintf("trigger %q has %d undelivered %s (max_queue %d): retry after %s", e.Trigger, e.Undelivered, noun, e.MaxQueue, e.RetryAfter)
}

// Permanent marks invalid events as never acceptable (connectors skip them).
func (e *InvalidEventsError) Permanent() bool { return true }

// RetryDelay is how long the publisher should wait (connectors pause).
func (e *PushbackError) RetryDelay() time.Duration { return e.RetryAfter }
