package delivery

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/switchyard-io/switchyard/targets"
)

func TestClassifyCode(t *testing.T) {
	retry := []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Unknown, codes.Canceled}
	dead := []codes.Code{codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented, codes.NotFound, codes.OutOfRange, codes.DataLoss}
	for _, c := range retry {
		if v, _ := ClassifyCode(c); v != Retry {
			t.Errorf("%v: %v, want retry", c, v)
		}
	}
	for _, c := range dead {
		if v, _ := ClassifyCode(c); v != DeadNow {
			t.Errorf("%v: %v, want dead", c, v)
		}
	}
	for _, c := range []codes.Code{codes.OK, codes.AlreadyExists} {
		if v, _ := ClassifyCode(c); v != Ack {
			t.Errorf("%v: %v, want ack", c, v)
		}
	}
}

func TestClassifyHTTP(t *testing.T) {
	cases := map[int]Verdict{200: Ack, 202: Ack, 204: Ack, 409: Ack, 408: Retry, 429: Retry, 500: Retry, 503: Retry, 301: DeadNow, 400: DeadNow, 401: DeadNow, 404: DeadNow, 413: DeadNow}
	for st, want := range cases {
		if v, _ := ClassifyHTTP(st); v != want {
			t.Errorf("%d: %v, want %v", st, v, want)
		}
	}
}

func TestBackoffIsCappedJitteredAndHonoursHints(t *testing.T) {
	for attempt := 1; attempt <= 40; attempt++ {
		for range 50 {
			d := Backoff(attempt, 500*time.Millisecond, 5*time.Minute, 0)
			ceil := min(5*time.Minute, 500*time.Millisecond<<min(attempt-1, 30))
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: %v outside [0, %v]", attempt, d, ceil)
			}
		}
	}
	if d := Backoff(1, time.Millisecond, time.Minute, 10*time.Second); d < 10*time.Second {
		t.Errorf("hint not honoured: %v", d)
	}
	if d := Backoff(1, time.Millisecond, time.Second, time.Hour); d != time.Second {
		t.Errorf("hint not capped: %v", d)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := RetryAfterHeader("7", now); d != 7*time.Second {
		t.Error(d)
	}
	if d := RetryAfterHeader(now.Add(time.Minute).Format(http.TimeFormat), now); d != time.Minute {
		t.Error(d)
	}
	if d := RetryAfterHeader("soon", now); d != 0 {
		t.Error(d)
	}
}

func TestCodeName(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.OK: "OK", codes.InvalidArgument: "INVALID_ARGUMENT", codes.Unavailable: "UNAVAILABLE", codes.Canceled: "CANCELLED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED"} {
		if got := CodeName(c); got != want {
			t.Errorf("%v: %q", c, got)
		}
	}
}

func TestClassifyPublish(t *testing.T) {
	cases := map[targets.Failure]struct {
		v      Verdict
		health bool
	}{
		targets.Unreachable:   {Retry, true},
		targets.Timeout:       {Retry, true},
		targets.Unavailable:   {Retry, true},
		targets.Misconfigured: {Retry, true},
		targets.Unauthorized:  {DeadNow, true},
		targets.NotFound:      {DeadNow, true},
		targets.Rejected:      {DeadNow, false},
		targets.Duplicate:     {Ack, false},
		targets.Failure(99):   {Retry, false},
	}
	for f, want := range cases {
		v, health := ClassifyPublish(f)
		if v != want.v || health != want.health {
			t.Errorf("%s: got %s/%v, want %s/%v", f, v, health, want.v, want.health)
		}
	}
}
