package sdk

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// ErrDryRunUnsupported means the server predates dry runs: it would have
// ignored the request's dry_run field and applied the trigger, so the
// request was not sent.
var ErrDryRunUnsupported = errors.New("switchyard: the server does not support dry runs (nothing was sent)")

// TestFilter evaluates the filter of the stored trigger name, its event
// scope included, against evs, and returns one result per event: whether
// the trigger matches it, as routing decides, and the verdict of each
// clause with its reason. Nothing is published. A trigger the caller may
// not read answers NOT_FOUND; an invalid event is an [*InvalidTriggerError]
// whose violations name it ("events[2].source").
func (c *Client) TestFilter(ctx context.Context, name string, evs []event.Event) (*switchyardv1.TestFilterResponse, error) {
	return c.testFilter(ctx, &switchyardv1.TestFilterRequest{Subject: &switchyardv1.TestFilterRequest_Name{Name: name}}, evs)
}

// TestTriggerFilter is TestFilter for a trigger that need not be stored
// (a draft): the server validates it as an apply would and adds the
// caller's event scope as a create by the caller would.
func (c *Client) TestTriggerFilter(ctx context.Context, t *switchyardv1.Trigger, evs []event.Event) (*switchyardv1.TestFilterResponse, error) {
	if t == nil {
		return nil, &InvalidTriggerError{Violations: []Violation{{Field: "trigger", Description: "required"}}}
	}
	return c.testFilter(ctx, &switchyardv1.TestFilterRequest{Subject: &switchyardv1.TestFilterRequest_Trigger{Trigger: t}}, evs)
}

// TestFilterProto sends a prepared TestFilter request: its events, in
// the protobuf format, go as they are (the server validates them), for
// tools that read events in the CloudEvents formats themselves. Errors
// are as for TestFilter.
func (c *Client) TestFilterProto(ctx context.Context, req *switchyardv1.TestFilterRequest) (*switchyardv1.TestFilterResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.triggers.TestFilter(ctx, req)
	if err != nil {
		return nil, mapError(err, triggerCall)
	}
	return resp, nil
}

func (c *Client) testFilter(ctx context.Context, req *switchyardv1.TestFilterRequest, evs []event.Event) (*switchyardv1.TestFilterResponse, error) {
	req.Events = make([]*pb.CloudEvent, len(evs))
	for i := range evs {
		p, err := encode(&evs[i], fmt.Sprintf("events[%d]", i))
		if err != nil {
			return nil, err
		}
		req.Events[i] = p
	}
	return c.TestFilterProto(ctx, req)
}

// DryRunApplyTrigger asks what ApplyTrigger(t) would do, changing nothing:
// the response has the trigger as it would be stored (the server's
// defaults and the caller's scope applied), whether it would be created or
// changed, and the trigger stored now (Previous). The server checks it as
// it checks a real apply (validation, its target policy, authorization).
//
// A server that predates dry runs would ignore the request's dry_run field
// and apply the trigger, so DryRunApplyTrigger first makes sure the
// server knows TestFilter, which came with dry runs, and returns
// [ErrDryRunUnsupported] without sending the trigger when it does not.
func (c *Client) DryRunApplyTrigger(ctx context.Context, t *switchyardv1.Trigger) (*switchyardv1.ApplyTriggerResponse, error) {
	if t == nil {
		return nil, &InvalidTriggerError{Violations: []Violation{{Field: "trigger", Description: "required"}}}
	}
	if err := c.checkDryRun(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.triggers.ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{Trigger: t, DryRun: true})
	if err != nil {
		return nil, mapError(err, triggerCall)
	}
	if !resp.GetDryRun() {
		// Only a server that ignored the field answers so; the probe
		// should have caught it.
		return resp, fmt.Errorf("switchyard: the server did not treat the request as a dry run: trigger %q was applied", t.GetName())
	}
	return resp, nil
}

// checkDryRun makes sure the server supports dry runs: an empty TestFilter
// is refused as invalid by a server that has it, UNIMPLEMENTED by one
// that predates it. The answer is kept for the Client's lifetime.
func (c *Client) checkDryRun(ctx context.Context) error {
	if c.dryRunChecked.Load() {
		return nil
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	_, err := c.triggers.TestFilter(ctx, &switchyardv1.TestFilterRequest{})
	switch status.Code(err) {
	case codes.InvalidArgument:
		c.dryRunChecked.Store(true)
		return nil
	case codes.Unimplemented:
		return ErrDryRunUnsupported
	case codes.OK:
		return errors.New("switchyard: unexpected answer to an empty TestFilter; not sending a dry run")
	}
	return mapError(err, triggerCall)
}
