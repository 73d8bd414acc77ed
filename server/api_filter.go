package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/cloudevent"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// draftName stands in for the name of a trigger sent to TestFilter
// without one (a filter drafted in a UI): only its filter matters.
const draftName = "filter-test"

// TestFilter evaluates a trigger's filter, scope included, against the
// events of the request: what routing would decide for each, and why.
// Nothing is published, stored or audited (it reads).
func (s *triggerService) TestFilter(ctx context.Context, req *switchyardv1.TestFilterRequest) (*switchyardv1.TestFilterResponse, error) {
	var (
		t     *trigger.Trigger
		shown *switchyardv1.Trigger
		err   error
	)
	switch req.GetSubject().(type) {
	case *switchyardv1.TestFilterRequest_Name:
		t, shown, err = s.storedForTest(ctx, req.GetName())
	case *switchyardv1.TestFilterRequest_Trigger:
		t, shown, err = s.draftForTest(ctx, req.GetTrigger())
	default:
		return nil, invalidFields("the trigger to test is required: name (a stored trigger) or trigger", "name", "trigger")
	}
	if err != nil {
		return nil, err
	}
	if err := s.checkTestEvents(req.GetEvents()); err != nil {
		return nil, err
	}
	out := &switchyardv1.TestFilterResponse{Trigger: trigger.RedactProto(shown), Results: make([]*switchyardv1.FilterResult, len(req.GetEvents()))}
	in := filter.NewInput(nil)
	for i, ev := range req.GetEvents() {
		in.Reset(ev)
		out.Results[i] = trigger.ExplanationToProto(t.Explain(in))
	}
	return out, nil
}

// storedForTest returns a stored trigger the caller may read, compiled as
// the router compiles it (the router's own when it serves that
// generation). One outside the caller's scope answers NOT_FOUND, as
// GetTrigger does.
func (s *triggerService) storedForTest(ctx context.Context, name string) (*trigger.Trigger, *switchyardv1.Trigger, error) {
	if err := checkTriggerName("name", name); err != nil {
		return nil, nil, err
	}
	if err := allowTriggers(ctx, auth.PermTriggersRead, name); err != nil {
		return nil, nil, err
	}
	stored, err := s.r.Store().GetTrigger(ctx, name)
	if err != nil {
		return nil, nil, StatusFor(err)
	}
	if t := s.r.Trigger(name); t != nil && t.Generation == stored.GetGeneration() {
		return t, stored, nil
	}
	t, err := trigger.Compile(trigger.FromProto(stored))
	if err != nil {
		// The router skips such a trigger: it matches nothing.
		return nil, nil, status.Errorf(codes.FailedPrecondition, "stored trigger %q does not compile, so it matches no event: %v", name, err)
	}
	return t, stored, nil
}

// draftForTest validates a trigger sent with the request as an apply
// would, except for the server's target policy (the target plays no part
// in matching), and gives it the caller's event scope as a create by the
// caller would.
func (s *triggerService) draftForTest(ctx context.Context, p *switchyardv1.Trigger) (*trigger.Trigger, *switchyardv1.Trigger, error) {
	p = proto.Clone(p).(*switchyardv1.Trigger)
	name := p.GetName()
	if name == "" {
		p.Name = draftName
	} else if err := allowTriggerName(ctx, auth.PermTriggersRead, name); err != nil {
		return nil, nil, err
	}
	t, err := trigger.Compile(trigger.FromProto(p))
	if err != nil {
		return nil, nil, StatusFor(err)
	}
	nt := trigger.ToProto(t.Spec)
	if err := scopeTrigger(ctx, nt, auth.PermTriggersRead); err != nil {
		return nil, nil, err
	}
	if t, err = trigger.Compile(trigger.FromProto(nt)); err != nil {
		return nil, nil, StatusFor(err)
	}
	nt.Name = name
	return t, nt, nil
}

// checkTestEvents refuses an empty or oversized list of events, and
// invalid events, naming each ("events[3].source") as PublishBatch does.
func (s *triggerService) checkTestEvents(evs []*pb.CloudEvent) error {
	limit := s.maxTestEvents
	if limit <= 0 {
		limit = router.DefaultMaxBatchEvents
	}
	switch {
	case len(evs) == 0:
		return invalidField("events", "at least one event is required")
	case len(evs) > limit:
		return invalidField("events", "at most %d events, got %d", limit, len(evs))
	}
	var bad []error
	for i, ev := range evs {
		err := cloudevent.Validate(ev)
		if err == nil {
			continue
		}
		var ce *cloudevent.Error
		if errors.As(err, &ce) {
			c := *ce
			c.Index = i
			bad = append(bad, &c)
		} else {
			bad = append(bad, fmt.Errorf("event[%d]: %w", i, err))
		}
	}
	if len(bad) > 0 {
		return eventsStatus(&router.InvalidEventsError{Errs: bad}, "events", len(evs))
	}
	return nil
}
