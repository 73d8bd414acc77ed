package delivery

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/targets"
)

// Verdict is what happens to an event after an attempt.
type Verdict int

// Verdicts.
const (
	// Ack: the target handled the event.
	Ack Verdict = iota
	// Retry: try again later, within the policy's limits.
	Retry
	// DeadNow: never retry; dead-letter at once.
	DeadNow
)

func (v Verdict) String() string {
	switch v {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	}
	return "dead"
}

// ClassifyCode maps a gRPC status code returned by a function (or by the
// transport) to a verdict, and says whether the failure speaks of the
// target's health (counted by the circuit breaker) rather than of the event.
func ClassifyCode(c codes.Code) (v Verdict, health bool) {
	switch c {
	case codes.OK:
		return Ack, false
	case codes.Unavailable:
		// The server is down, restarting or unreachable: transient by definition.
		return Retry, true
	case codes.DeadlineExceeded:
		// The attempt outlived its timeout; the function may be slow or overloaded.
		return Retry, true
	case codes.ResourceExhausted:
		// The function is shedding load or out of quota: back off and retry.
		return Retry, true
	case codes.Aborted:
		// A concurrency conflict (e.g. a transaction aborted): retrying is the cure.
		return Retry, false
	case codes.Internal:
		// A bug or crash inside the function; it may pass on another instance.
		return Retry, true
	case codes.Unknown:
		// An error the function did not classify (also panics in some servers).
		return Retry, true
	case codes.Canceled:
		// The call was cancelled, by us on shutdown or by the function's server:
		// the event was not handled.
		return Retry, false
	case codes.InvalidArgument:
		// The function says the event itself is bad: retrying cannot help.
		return DeadNow, false
	case codes.FailedPrecondition:
		// The function refuses the event in its current state; the gRPC guide
		// says not to retry until the state is fixed, which we cannot know.
		return DeadNow, false
	case codes.PermissionDenied, codes.Unauthenticated:
		// Credentials are a configuration problem; retries would be rejected alike.
		return DeadNow, true
	case codes.Unimplemented:
		// The target does not serve FunctionService/Invoke: a wrong target.
		return DeadNow, true
	case codes.NotFound:
		// The function says what the event refers to does not exist.
		return DeadNow, false
	case codes.OutOfRange:
		// The event asks for something outside the function's valid range.
		return DeadNow, false
	case codes.DataLoss:
		// Unrecoverable corruption reported by the function.
		return DeadNow, false
	case codes.AlreadyExists:
		// The function already holds what this event would create: most likely
		// an earlier attempt succeeded and its answer was lost. Treating it as
		// handled is what an idempotent function means by it, so acknowledge.
		return Ack, false
	}
	return Retry, false
}

// ClassifyHTTP maps an HTTP target's status code to a verdict: 2xx
// acknowledge; 429 and 5xx (and 408 Request Timeout) retry; other 4xx,
// redirects and anything else dead-letter. 409 Conflict is treated like gRPC
// ALREADY_EXISTS (handled).
func ClassifyHTTP(status int) (v Verdict, health bool) {
	switch {
	case status >= 200 && status < 300:
		return Ack, false
	case status == http.StatusConflict:
		return Ack, false
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return Retry, true
	case status >= 500:
		return Retry, status != http.StatusNotImplemented
	}
	return DeadNow, false
}

// ClassifyPublish maps the failure of a publish to a broker target
// (targets.Failure) to a verdict, and says whether it speaks of the
// target's health (counted by the circuit breaker).
func ClassifyPublish(f targets.Failure) (v Verdict, health bool) {
	switch f {
	case targets.Unreachable:
		// No connection: the broker is down, restarting or cut off. The
		// event is fine; the next attempt may find the broker back.
		return Retry, true
	case targets.Timeout:
		// No confirmation in time: the broker is slow or the link stalled.
		// It may have stored the event (at least once; kinds that can
		// deduplicate do).
		return Retry, true
	case targets.Unavailable:
		// The broker answered that it cannot take the event now (no
		// leader, no quorum, a negative confirm, a deadlock): transient.
		return Retry, true
	case targets.Misconfigured:
		// A secret missing or malformed, a kind this program lacks: the
		// operator fixes it, and the breaker holds the queue meanwhile.
		return Retry, true
	case targets.Unauthorized:
		// Credentials refused, or no right to write there: configuration,
		// and every retry would be refused alike (as PERMISSION_DENIED).
		return DeadNow, true
	case targets.NotFound:
		// The exchange, subject, table or topic does not exist, or nothing
		// is bound to receive the message: a wrong target, as
		// UNIMPLEMENTED is for a function. The breaker counts it, so a
		// mistyped exchange does not drain the whole queue into the DLQ.
		return DeadNow, true
	case targets.Rejected:
		// The broker refuses this event (a constraint, a size, a value a
		// column cannot hold): retrying sends the same event again.
		return DeadNow, false
	case targets.Duplicate:
		// The broker already holds this event: an earlier attempt
		// succeeded and its answer was lost.
		return Ack, false
	}
	// An unclassified error: retried, within the policy's limits.
	return Retry, false
}

// RetryInfoDelay returns the delay a gRPC status asks for in a
// google.rpc.RetryInfo detail, or 0.
func RetryInfoDelay(err error) time.Duration {
	st, ok := status.FromError(err)
	if !ok {
		return 0
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// RetryAfterHeader parses an HTTP Retry-After header (seconds or an HTTP
// date) relative to now; 0 when absent or invalid.
func RetryAfterHeader(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// CodeOf returns the gRPC code of err (codes.Unknown for a non-status error,
// codes.DeadlineExceeded / Canceled for context errors).
func CodeOf(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, errDeadline):
		return codes.DeadlineExceeded
	}
	return status.Code(err)
}

var errDeadline = errors.New("attempt timed out")
