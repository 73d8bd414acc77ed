package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors returned by the Client's methods.
//
// Every error that comes from the server keeps the gRPC status error in its
// chain, so status.Code and status.FromError work on all of them, and the
// typed errors below are matched with errors.As / errors.Is:
//
//	RESOURCE_EXHAUSTED → *PushbackError
//	INVALID_ARGUMENT   → *InvalidEventError (Publish, PublishBatch)
//	                     *InvalidTriggerError (trigger methods)
//	UNAVAILABLE        → an error wrapping ErrUnavailable
//	anything else      → the gRPC status error itself (e.g. NOT_FOUND)
//
// Events that fail client-side validation are reported as
// *InvalidEventError too, before anything is sent.

// ErrUnavailable is wrapped by the errors of calls that failed because
// Switchyard (or its store) was unreachable: gRPC UNAVAILABLE. Nothing was
// accepted; the call can be retried.
var ErrUnavailable = errors.New("switchyard: unavailable")

// Violation is one invalid field of a request.
type Violation struct {
	// Field is the path of the offending field in the request, with the
	// proto's field names: "events[2].source", "event.spec_version",
	// `events[0].attributes["subject"]` (see cloudevent.ProtoField) or
	// "trigger.filter.all[0].cel".
	Field string
	// Description says what is wrong with it.
	Description string
}

// String returns "field: description".
func (v Violation) String() string {
	if v.Field == "" {
		return v.Description
	}
	return v.Field + ": " + v.Description
}

// InvalidEventError reports events Switchyard refused, or that the client
// refused to send, because they are not valid CloudEvents. Nothing in the call
// was accepted; retrying the same events fails again.
//
// Server-side it comes from INVALID_ARGUMENT, with Violations taken from the
// google.rpc.BadRequest detail (empty when the server sent none). Both sides
// name the field the way the request does: "event.source" for Publish,
// "events[3].id" for the fourth event of PublishBatch.
type InvalidEventError struct {
	// Violations lists every invalid field.
	Violations []Violation
	// Err is the gRPC status error, or the client-side validation error.
	Err error
}

// Error implements error.
func (e *InvalidEventError) Error() string {
	return invalidMessage("switchyard: invalid event", e.Violations, e.Err)
}

// Unwrap returns Err.
func (e *InvalidEventError) Unwrap() error { return e.Err }

// GRPCStatus returns the server's status, or an INVALID_ARGUMENT status for
// an error detected client-side, so that status.Code reports
// INVALID_ARGUMENT either way.
func (e *InvalidEventError) GRPCStatus() *status.Status {
	return invalidStatus(e.Err, e.Error())
}

func invalidStatus(err error, msg string) *status.Status {
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return st
		}
	}
	return status.New(codes.InvalidArgument, msg)
}

// InvalidTriggerError reports a trigger Switchyard refused (INVALID_ARGUMENT
// from a TriggerService call), with the field violations of the
// google.rpc.BadRequest detail, such as "filter.cel" with the position of a
// syntax error.
type InvalidTriggerError struct {
	// Violations lists every invalid field; empty when the server sent no
	// BadRequest detail.
	Violations []Violation
	// Err is the gRPC status error.
	Err error
}

// Error implements error.
func (e *InvalidTriggerError) Error() string {
	return invalidMessage("switchyard: invalid trigger", e.Violations, e.Err)
}

// Unwrap returns Err.
func (e *InvalidTriggerError) Unwrap() error { return e.Err }

// GRPCStatus returns the server's status, or an INVALID_ARGUMENT status for
// an error detected client-side.
func (e *InvalidTriggerError) GRPCStatus() *status.Status {
	return invalidStatus(e.Err, e.Error())
}

func invalidMessage(prefix string, vs []Violation, err error) string {
	var b strings.Builder
	b.WriteString(prefix)
	if len(vs) == 0 {
		if err != nil {
			b.WriteString(": ")
			b.WriteString(message(err))
		}
		return b.String()
	}
	for i, v := range vs {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	return b.String()
}

// PushbackError reports that Switchyard pushed the publisher back
// (RESOURCE_EXHAUSTED): the queue of a trigger the events match is full.
// Nothing in the call was accepted; publish again after RetryAfter.
//
// RetryAfter comes from the google.rpc.RetryInfo detail. Trigger comes from
// the "trigger" metadata of a google.rpc.ErrorInfo detail or, failing that,
// from the subject of the first google.rpc.QuotaFailure violation (with a
// "trigger:", "trigger/" or "triggers/" prefix removed).
type PushbackError struct {
	// RetryAfter is the delay the server asked for; 0 when it gave none.
	RetryAfter time.Duration
	// Trigger is the name of the full trigger, when the server said.
	Trigger string
	// Err is the gRPC status error.
	Err error
}

// Error implements error.
func (e *PushbackError) Error() string {
	var b strings.Builder
	b.WriteString("switchyard: pushed back")
	if e.Trigger != "" {
		fmt.Fprintf(&b, " by trigger %q", e.Trigger)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %v", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(message(e.Err))
	}
	return b.String()
}

// Unwrap returns Err.
func (e *PushbackError) Unwrap() error { return e.Err }

// IsRetryable reports whether the call that returned err may succeed if made
// again with the same arguments: pushback (RESOURCE_EXHAUSTED), unavailability,
// ABORTED and DEADLINE_EXCEEDED. Invalid events, unknown triggers, a
// cancelled context and other errors are not retryable. It accepts the errors
// of the generated clients too. The caller should still check its own
// context, whose expiry also shows as DEADLINE_EXCEEDED.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var pe *PushbackError
	if errors.As(err, &pe) || errors.Is(err, ErrUnavailable) {
		return true
	}
	var ie *InvalidEventError
	var te *InvalidTriggerError
	if errors.As(err, &ie) || errors.As(err, &te) || errors.Is(err, context.Canceled) {
		return false
	}
	switch status.Code(err) {
	case codes.ResourceExhausted:
		return !messageTooLarge(status.Convert(err))
	case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded:
		return true
	}
	return false
}

// messageTooLarge reports gRPC's own refusal of a message over the
// receiver's (or the sender's) size bound: RESOURCE_EXHAUSTED like a
// pushback, but the same message can never pass, so it is invalid input.
// gRPC says so only in its message.
func messageTooLarge(st *status.Status) bool {
	m := st.Message()
	return st.Code() == codes.ResourceExhausted &&
		(strings.HasPrefix(m, "grpc: received message larger than max") || strings.HasPrefix(m, "grpc: trying to send message larger than max"))
}

// callKind tells mapError which INVALID_ARGUMENT error type to build.
type callKind int

const (
	eventCall callKind = iota
	triggerCall
)

// mapError converts a gRPC error of a call to the SDK's typed errors.
func mapError(err error, kind callKind) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch {
	case messageTooLarge(st):
		if kind == triggerCall {
			return &InvalidTriggerError{Err: err}
		}
		return &InvalidEventError{Err: err}
	case st.Code() == codes.ResourceExhausted:
		return pushback(st, err)
	case st.Code() == codes.InvalidArgument:
		vs := violations(st)
		if kind == triggerCall {
			return &InvalidTriggerError{Violations: vs, Err: err}
		}
		return &InvalidEventError{Violations: vs, Err: err}
	case st.Code() == codes.Unavailable:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func pushback(st *status.Status, err error) *PushbackError {
	pe := &PushbackError{Err: err}
	var quotaTrigger string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			pe.RetryAfter = max(d.GetRetryDelay().AsDuration(), 0)
		case *errdetails.ErrorInfo:
			if t := d.GetMetadata()["trigger"]; t != "" && pe.Trigger == "" {
				pe.Trigger = t
			}
		case *errdetails.QuotaFailure:
			for _, v := range d.GetViolations() {
				if quotaTrigger == "" && v.GetSubject() != "" {
					quotaTrigger = triggerFromSubject(v.GetSubject())
				}
			}
		}
	}
	if pe.Trigger == "" {
		pe.Trigger = quotaTrigger
	}
	return pe
}

func triggerFromSubject(s string) string {
	for _, p := range []string{"trigger:", "triggers/", "trigger/"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return rest
		}
	}
	return s
}

func violations(st *status.Status) []Violation {
	var vs []Violation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				vs = append(vs, Violation{Field: fv.GetField(), Description: fv.GetDescription()})
			}
		}
	}
	return vs
}

// message returns a status error's message without the "rpc error: code =
// ... desc =" decoration.
func message(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}
