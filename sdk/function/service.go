package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// NewService returns the FunctionService implementation that calls h for
// every invocation, for registration on a grpc.Server of the caller's own:
//
//	functionv1.RegisterFunctionServiceServer(srv, function.NewService(h))
//
// It serves both Invoke and InvokeStream, with the same semantics per
// invocation.
// It maps the handler's result to the contract's outcomes as described in the
// package documentation. An event that cannot be decoded is answered with
// INVALID_ARGUMENT, which Switchyard dead-letters; a handler panic is
// recovered, logged with its stack through log/slog's default logger, and
// answered with INTERNAL, which Switchyard retries. NewService panics if h is
// nil.
func NewService(h Handler) functionv1.FunctionServiceServer {
	if h == nil {
		panic("function: NewService called with a nil Handler")
	}
	return &service{h: h, tr: newTracing()}
}

type service struct {
	functionv1.UnimplementedFunctionServiceServer
	h  Handler
	tr tracing // see tracing.go
}

// Invoke implements functionv1.FunctionServiceServer.
func (s *service) Invoke(ctx context.Context, req *functionv1.InvokeRequest) (*functionv1.InvokeResponse, error) {
	resp, st := s.invoke(ctx, req)
	if st != nil {
		return nil, st.Err()
	}
	return resp, nil
}

// invoke handles one invocation, for Invoke and InvokeStream alike: it
// validates and decodes the request, runs the handler with the invocation's
// Info in ctx, and returns either the response or the non-OK status to answer
// with.
func (s *service) invoke(ctx context.Context, req *functionv1.InvokeRequest) (*functionv1.InvokeResponse, *status.Status) {
	if req.GetEvent() == nil {
		return nil, status.New(codes.InvalidArgument, "function: request has no event")
	}
	ev, err := fromProto(req.GetEvent())
	if err != nil {
		return nil, status.Newf(codes.InvalidArgument, "function: cannot decode event: %v", err)
	}
	info := Info{
		Attempt:        int(req.GetAttempt()),
		Trigger:        req.GetTrigger(),
		IdempotencyKey: req.GetIdempotencyKey(),
		Round:          int(req.GetRound()),
	}
	if req.GetDeadline() != nil {
		info.Deadline = req.GetDeadline().AsTime()
	} else if d, ok := ctx.Deadline(); ok {
		info.Deadline = d
	}
	ctx, span := s.tr.start(ctx, req)
	resp, st := s.call(NewContext(ctx, info), ev)
	s.tr.end(ctx, span, resp, st)
	return resp, st
}

// call runs the handler and maps its result; a panic becomes an INTERNAL
// status.
func (s *service) call(ctx context.Context, ev event.Event) (resp *functionv1.InvokeResponse, st *status.Status) {
	defer func() {
		if p := recover(); p != nil {
			slog.ErrorContext(ctx, "function: handler panicked",
				"panic", fmt.Sprint(p), "event_id", ev.ID(), "event_source", ev.Source(),
				"stack", string(debug.Stack()))
			resp, st = nil, status.Newf(codes.Internal, "function: handler panicked: %v", p)
		}
	}()
	res, herr := s.h(ctx, ev)
	if hst, ok := statusOf(herr); ok {
		return nil, hst
	}
	return response(res, herr), nil
}

// statusOf reports a handler error that is a gRPC status (and not a Dead or
// RetryAfter outcome): it is answered as that status, so Switchyard
// classifies it by code (UNAVAILABLE retried, INVALID_ARGUMENT dead-lettered…).
func statusOf(err error) (*status.Status, bool) {
	if err == nil {
		return nil, false
	}
	var dead *DeadError
	var retry *RetryError
	if errors.As(err, &dead) || errors.As(err, &retry) {
		return nil, false
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return nil, false
	}
	st := se.GRPCStatus()
	if st == nil || st.Code() == codes.OK {
		return nil, false
	}
	return st, true
}

// response maps a handler's return values to an InvokeResponse.
func response(res Result, err error) *functionv1.InvokeResponse {
	if err != nil {
		var dead *DeadError
		if errors.As(err, &dead) {
			return &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_DEAD, Reason: err.Error()}
		}
		resp := &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_RETRY, Reason: err.Error()}
		var retry *RetryError
		if errors.As(err, &retry) && retry.After > 0 {
			resp.RetryAfter = durationpb.New(retry.After)
		}
		return resp
	}
	resp := &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_ACK}
	if len(res.Replies) > 0 {
		replies, rerr := replies(res.Replies)
		if rerr != nil {
			// A reply that cannot even be encoded: retry, so that a fixed
			// deployment gets the event again, and say why.
			return &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_RETRY, Reason: rerr.Error()}
		}
		resp.Replies = replies
	}
	return resp
}

// replies converts reply events. They are not validated here: Switchyard
// validates every reply, keeps an invalid one as a dead letter (reason
// REPLY_INVALID, naming the field) and acknowledges the event, which a
// retry from here would run again, repeating the handler's side effects.
func replies(evs []event.Event) ([]*pb.CloudEvent, error) {
	out := make([]*pb.CloudEvent, len(evs))
	for i := range evs {
		p, err := toProto(&evs[i])
		if err != nil {
			return nil, fmt.Errorf("function: cannot encode reply %d: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}
