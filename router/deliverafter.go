package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/router/store"
)

// DeliverAfterExtension is the CloudEvents extension attribute by which a
// publisher asks for later delivery: every trigger the event matches makes
// its first attempt no earlier than that time. Its value is either a time
// (an RFC 3339 string, or a CloudEvents timestamp) or a duration counted
// from the acceptance ("90s", "1h30m": Go's duration syntax, which a
// publisher retrying a publish restarts). A time in the past, or a zero
// duration, asks for nothing. The event is stored and delivered as
// published, the attribute included, so a target sees what was asked (and
// a function that republishes the event with it delays it again).
const DeliverAfterExtension = "deliverafter"

// DefaultMaxDeliverAfter is Config.MaxDeliverAfter's default.
const DefaultMaxDeliverAfter = 7 * 24 * time.Hour

// ErrInvalidDeliverAfter is wrapped by the errors of DeliverAfter.
var ErrInvalidDeliverAfter = errors.New("invalid deliverafter")

// DeliverAfter returns when ev's first delivery may happen, given that it
// is accepted at now, or the zero time when it carries no deliverafter (or
// one already past). A value that does not parse, a negative duration, or
// one asking for more than max past now fails with ErrInvalidDeliverAfter,
// saying why.
func DeliverAfter(ev *pb.CloudEvent, now time.Time, max time.Duration) (time.Time, error) {
	v, ok := ev.GetAttributes()[DeliverAfterExtension]
	if !ok {
		return time.Time{}, nil
	}
	var due time.Time
	switch a := v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeTimestamp:
		if err := a.CeTimestamp.CheckValid(); err != nil {
			return time.Time{}, fmt.Errorf("%w: %s is not a valid timestamp", ErrInvalidDeliverAfter, DeliverAfterExtension)
		}
		due = a.CeTimestamp.AsTime()
	case *pb.CloudEventAttributeValue_CeString:
		s := a.CeString
		if len(s) > 64 {
			return time.Time{}, fmt.Errorf("%w: %s is longer than 64 characters", ErrInvalidDeliverAfter, DeliverAfterExtension)
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			due = t
			break
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s is %s, want an RFC 3339 time (2026-12-24T18:00:00Z) or a duration (90s, 1h30m)",
				ErrInvalidDeliverAfter, DeliverAfterExtension, strconv.Quote(s))
		}
		if d < 0 {
			return time.Time{}, fmt.Errorf("%w: %s is a negative duration (%s)", ErrInvalidDeliverAfter, DeliverAfterExtension, s)
		}
		if d > max {
			return time.Time{}, tooLate(d, max)
		}
		due = now.Add(d)
	default:
		return time.Time{}, fmt.Errorf("%w: %s must be a string (an RFC 3339 time or a duration) or a timestamp", ErrInvalidDeliverAfter, DeliverAfterExtension)
	}
	if !due.After(now) {
		return time.Time{}, nil
	}
	if d := due.Sub(now); d > max {
		return time.Time{}, tooLate(d, max)
	}
	return due, nil
}

func tooLate(d, max time.Duration) error {
	return fmt.Errorf("%w: %s asks for delivery %s from now, beyond the server's max_deliver_after (%s)",
		ErrInvalidDeliverAfter, DeliverAfterExtension, d.Round(time.Second), max)
}

// wakePeersForDelayed tells the other instances about triggers that got
// delayed events, when queued (which tells them only while this instance
// knows of peers, learnt by the sweep) did not: their dispatchers then
// claim and learn the due time, so the events leave on time even if this
// instance is gone by then. It costs a PUBLISH per write of delayed
// events, which are few.
func (r *Router) wakePeersForDelayed(ctx context.Context, batches map[string][]store.Item) {
	if r.peers.Load() {
		return // queued published the wake-up
	}
	var names []string
	for t, items := range batches {
		if anyDue(items) {
			names = append(names, t)
		}
	}
	if len(names) > 0 {
		r.store.Client().Publish(ctx, r.store.Keys().WakeChannel(), strings.Join(names, ","))
	}
}
