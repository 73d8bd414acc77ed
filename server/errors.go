package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Status     int             `json:"status"`
	Detail     string          `json:"detail,omitempty"`
	Errors     []ProblemDetail `json:"errors,omitempty"`
	RetryAfter float64         `json:"retry_after_seconds,omitempty"`
}

// ProblemDetail is one specific problem: a bad event of a batch, a bad attribute.
type ProblemDetail struct {
	Index     *int   `json:"index,omitempty"`
	Attribute string `json:"attribute,omitempty"`
	Field     string `json:"field,omitempty"`
	Detail    string `json:"detail"`
}

// The catalogue: every error an API client can see, by kind.
var (
	probMalformed   = Problem{Type: "/problems/malformed-event", Title: "Malformed event", Status: http.StatusBadRequest}
	probMissing     = Problem{Type: "/problems/missing-attribute", Title: "Missing required attribute", Status: http.StatusBadRequest}
	probInvalidAttr = Problem{Type: "/problems/invalid-attribute", Title: "Invalid attribute", Status: http.StatusBadRequest}
	probInvalid     = Problem{Type: "/problems/invalid-events", Title: "Invalid events", Status: http.StatusBadRequest}
	probEmptyBatch  = Problem{Type: "/problems/empty-batch", Title: "Empty batch", Status: http.StatusBadRequest}
	probMediaType   = Problem{Type: "/problems/unsupported-media-type", Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType}
	probTooLarge    = Problem{Type: "/problems/too-large", Title: "Payload too large", Status: http.StatusRequestEntityTooLarge}
	probBodyTimeout = Problem{Type: "/problems/body-timeout", Title: "Request body timeout", Status: http.StatusRequestTimeout}
	probPushback    = Problem{Type: "/problems/queue-full", Title: "Trigger queue full", Status: http.StatusTooManyRequests}
	probUnavailable = Problem{Type: "/problems/store-unavailable", Title: "Store unavailable", Status: http.StatusServiceUnavailable}
	probNotReady    = Problem{Type: "/problems/not-ready", Title: "Not ready", Status: http.StatusServiceUnavailable}
	probStoreFull   = Problem{Type: "/problems/store-full", Title: "Store full", Status: http.StatusInsufficientStorage}
	probStopping    = Problem{Type: "/problems/shutting-down", Title: "Shutting down", Status: http.StatusServiceUnavailable}
	probMethod      = Problem{Type: "/problems/method-not-allowed", Title: "Method not allowed", Status: http.StatusMethodNotAllowed}
	probInternal    = Problem{Type: "/problems/internal", Title: "Internal error", Status: http.StatusInternalServerError}
)

// storeFullDetail is what a caller refused for want of memory in Redis
// reads (HTTP 507, gRPC RESOURCE_EXHAUSTED with reason STORE_FULL); the
// memory figures are for the operator (/readyz, the logs).
const storeFullDetail = "store full: the event store is out of memory; nothing was accepted, retry once deliveries have freed memory"

// storeFullRetry is the retry delay suggested to a caller refused for want
// of memory: freeing it takes deliveries, not a moment.
const storeFullRetry = 5 * time.Second

// ceKindProblem maps a cloudevent error kind to its problem.
func ceKindProblem(err error) Problem {
	switch {
	case errors.Is(err, cloudevent.ErrTooLarge):
		return probTooLarge
	case errors.Is(err, cloudevent.ErrUnsupportedMediaType):
		return probMediaType
	case errors.Is(err, cloudevent.ErrEmptyBatch):
		return probEmptyBatch
	case errors.Is(err, cloudevent.ErrMissingAttribute):
		return probMissing
	case errors.Is(err, cloudevent.ErrInvalidAttribute):
		return probInvalidAttr
	}
	return probMalformed
}

// leafErrors flattens joined errors.
func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

func ceDetail(e error) ProblemDetail {
	var ce *cloudevent.Error
	if errors.As(e, &ce) {
		d := ProblemDetail{Attribute: ce.Attribute, Detail: e.Error()}
		if ce.Index >= 0 {
			i := ce.Index
			d.Index = &i
		}
		return d
	}
	return ProblemDetail{Detail: e.Error()}
}

// ProblemFor maps an ingest error to its problem document.
func ProblemFor(err error) Problem {
	var pe *router.PushbackError
	var ie *router.InvalidEventsError
	switch {
	case errors.As(err, &pe):
		p := probPushback
		p.Detail = pe.Error()
		p.RetryAfter = pe.RetryAfter.Seconds()
		return p
	case errors.Is(err, router.ErrStopping):
		p := probStopping
		p.Detail = "this instance is shutting down; retry on another"
		p.RetryAfter = 1
		return p
	case errors.Is(err, router.ErrStoreFull), store.IsFull(err):
		p := probStoreFull
		p.Detail = storeFullDetail
		p.RetryAfter = storeFullRetry.Seconds()
		return p
	case errors.Is(err, router.ErrUnavailable):
		p := probUnavailable
		p.Detail = "the event store cannot be reached; nothing was accepted, retry later"
		p.RetryAfter = 1
		return p
	case errors.As(err, &ie):
		return ceProblem(ie.Errs)
	}
	var ce *cloudevent.Error
	if errors.As(err, &ce) || errors.Is(err, cloudevent.ErrMalformed) {
		return ceProblem(leafErrors(err))
	}
	p := probInternal
	p.Detail = err.Error()
	return p
}

func ceProblem(errs []error) Problem {
	if len(errs) == 1 {
		p := ceKindProblem(errs[0])
		p.Detail = errs[0].Error()
		d := ceDetail(errs[0])
		if d.Attribute != "" || d.Index != nil {
			p.Errors = []ProblemDetail{d}
		}
		return p
	}
	p := probInvalid
	for _, e := range errs {
		p.Errors = append(p.Errors, ceDetail(e))
	}
	p.Detail = fmt.Sprintf("%d events are invalid; nothing was accepted", len(errs))
	// A batch whose every problem has one kind reports that kind's status.
	first := ceKindProblem(errs[0])
	same := true
	for _, e := range errs[1:] {
		if ceKindProblem(e).Status != first.Status {
			same = false
		}
	}
	if same {
		p.Status = first.Status
	}
	return p
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, p Problem) {
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, p.RetryAfter+0.999))))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// StatusFor maps an API error to a gRPC status with details. Invalid events
// are named as EventService/Publish names its event ("event.source"); see
// eventsStatus.
func StatusFor(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var pe *router.PushbackError
	var ie *router.InvalidEventsError
	var fe trigger.FieldErrors
	var le *router.LimitError
	switch {
	case errors.As(err, &le):
		return invalidField(le.Field, "%s", le.Msg)
	case errors.As(err, &pe):
		st := status.New(codes.ResourceExhausted, pe.Error())
		st2, derr := st.WithDetails(
			&errdetails.RetryInfo{RetryDelay: durationpb.New(pe.RetryAfter)},
			&errdetails.ErrorInfo{Reason: "QUEUE_FULL", Domain: "switchyard.io", Metadata: map[string]string{"trigger": pe.Trigger, "undelivered": strconv.FormatInt(pe.Undelivered, 10), "max_queue": strconv.FormatInt(pe.MaxQueue, 10)}},
		)
		if derr == nil {
			st = st2
		}
		return st.Err()
	case errors.Is(err, router.ErrStoreFull), store.IsFull(err):
		return withDetails(codes.ResourceExhausted, storeFullDetail,
			&errdetails.RetryInfo{RetryDelay: durationpb.New(storeFullRetry)},
			&errdetails.ErrorInfo{Reason: "STORE_FULL", Domain: "switchyard.io"})
	case errors.Is(err, router.ErrStopping), errors.Is(err, router.ErrUnavailable):
		st := status.New(codes.Unavailable, err.Error())
		if st2, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}); derr == nil {
			st = st2
		}
		return st.Err()
	case errors.As(err, &ie):
		return eventsStatus(ie, "event", 1)
	case errors.As(err, &fe):
		br := &errdetails.BadRequest{}
		for _, f := range fe {
			desc := f.Msg
			if f.Line > 0 {
				desc = fmt.Sprintf("%d:%d: %s", f.Line, f.Column, f.Msg)
			}
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: "trigger." + f.Path, Description: desc})
		}
		return withDetails(codes.InvalidArgument, fe.Error(), br)
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, store.ErrConflict), errors.Is(err, router.ErrLaneNotBlocked):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, cloudevent.ErrMalformed), errors.Is(err, cloudevent.ErrMissingAttribute), errors.Is(err, cloudevent.ErrInvalidAttribute):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.Unavailable, "store error: "+err.Error())
}

// eventsStatus maps the invalid events of a publish to INVALID_ARGUMENT with
// one BadRequest field violation per problem, each naming the proto field of
// the event in the request (cloudevent.ProtoField): root is "event" for
// Publish, "events" for PublishBatch, whose n events are named by index
// ("events[3].attributes[\"subject\"]") and which itself is "events" when
// empty or too long.
func eventsStatus(ie *router.InvalidEventsError, root string, n int) error {
	br := &errdetails.BadRequest{}
	for _, e := range ie.Errs {
		var ce *cloudevent.Error
		if !errors.As(e, &ce) {
			br.FieldViolations = append(br.FieldViolations, violation(root, e.Error()))
			continue
		}
		field := root
		if root == "events" {
			switch {
			case ce.Index >= 0:
				field = fmt.Sprintf("events[%d]", ce.Index)
			case n == 1 && !errors.Is(ce.Kind, cloudevent.ErrEmptyBatch):
				// The router names the event of a one-event publish by no
				// index.
				field = "events[0]"
			}
		}
		if f := cloudevent.ProtoField(ce.Attribute); f != "" {
			field += "." + f
		}
		bare := *ce
		bare.Index = -1 // the field names the event
		br.FieldViolations = append(br.FieldViolations, violation(field, bare.Error()))
	}
	return withDetails(codes.InvalidArgument, ie.Error(), br)
}

// violation is one field violation of a BadRequest.
func violation(field, description string) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: description}
}

// invalidField returns INVALID_ARGUMENT for one bad field of a request, with
// a BadRequest detail naming it: "field: description" is also the message.
func invalidField(field, format string, a ...any) error {
	desc := fmt.Sprintf(format, a...)
	return withDetails(codes.InvalidArgument, field+": "+desc, &errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{violation(field, desc)}})
}

// invalidFields returns INVALID_ARGUMENT for a request whose fields conflict:
// one violation per field, all with the same description.
func invalidFields(desc string, fields ...string) error {
	br := &errdetails.BadRequest{}
	for _, f := range fields {
		br.FieldViolations = append(br.FieldViolations, violation(f, desc))
	}
	return withDetails(codes.InvalidArgument, desc, br)
}

// checkTriggerName refuses a trigger name the trigger rules do not allow
// (INVALID_ARGUMENT naming field), before it can be looked up or reach a
// store key: a name such as "a}:x" would move the keys out of the trigger's
// hash tag.
func checkTriggerName(field, name string) error {
	if err := trigger.CheckName(name); err != nil {
		return invalidField(field, "%v", err)
	}
	return nil
}

func withDetails(c codes.Code, msg string, details ...protoMessage) error {
	st := status.New(c, msg)
	if st2, err := st.WithDetails(details...); err == nil {
		st = st2
	}
	return st.Err()
}

type protoMessage = protoadapt.MessageV1
