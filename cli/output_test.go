package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/sdk"
)

// syncBuffer is a bytes.Buffer safe for concurrent use, for the output of
// commands running in a goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is the outcome of one in-process run of the command tree.
type result struct {
	out, err string
	e        error
}

// runCLI runs the switchyard command tree in-process with args and stdin.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCLIContext(t, t.Context(), stdin, args...)
}

func runCLIContext(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	root := NewRoot()
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(ctx)
	return result{out: out.String(), err: errb.String(), e: err}
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// waitFor polls cond until it holds or the timeout expires.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParseOutputFormat(t *testing.T) {
	for in, want := range map[string]outputFormat{
		"table": formatTable, "TABLE": formatTable, "json": formatJSON, "Json": formatJSON,
		"yaml": formatYAML, "yml": formatYAML, " yaml ": formatYAML,
	} {
		got, err := parseOutputFormat(in)
		if err != nil || got != want {
			t.Errorf("parseOutputFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "xml", "wide", "jsonl"} {
		if _, err := parseOutputFormat(in); err == nil {
			t.Errorf("parseOutputFormat(%q): no error", in)
		}
	}
}

func TestOutputFlagRejectsUnknownFormat(t *testing.T) {
	for _, args := range [][]string{
		{"trigger", "list", "-o", "xml"},
		{"trigger", "get", "x", "--output=wide"},
		{"trigger", "stats", "-o", "csv"},
		{"dlq", "show", "t/1-0", "-o", "toml"},
	} {
		r := runCLI(t, "", append(args, "--server", closedAddr(t))...)
		if r.e == nil || !strings.Contains(r.e.Error(), "want table, json or yaml") {
			t.Errorf("%v: err = %v, want the output format error", args, r.e)
		}
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	tab := newTable(&b, "A", "LONGER")
	tab.row("x\ty", "1")
	tab.row("multi\nline", "22")
	if err := tab.flush(); err != nil {
		t.Fatal(err)
	}
	want := "A            LONGER\n" +
		"x y          1\n" +
		"multi line   22\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteJSONAndYAML(t *testing.T) {
	v := map[string]any{"a": "<b>&", "num": 1}
	var b bytes.Buffer
	if err := writeJSON(&b, v); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"a\": \"<b>&\",\n  \"num\": 1\n}\n"; b.String() != want {
		t.Errorf("writeJSON = %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := writeYAML(&b, v); err != nil {
		t.Fatal(err)
	}
	if want := "a: <b>&\nnum: 1\n"; b.String() != want {
		t.Errorf("writeYAML = %q, want %q", b.String(), want)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                    "0s",
		0:                               "0s",
		850 * time.Millisecond:          "850ms",
		42 * time.Second:                "42s",
		5 * time.Minute:                 "5m",
		5*time.Minute + 3*time.Second:   "5m3s",
		3*time.Hour + 12*time.Minute:    "3h12m",
		2 * time.Hour:                   "2h",
		30 * time.Hour:                  "30h",
		4*24*time.Hour + 5*time.Hour:    "4d5h",
		10 * 24 * time.Hour:             "10d",
		3*time.Hour + 59*time.Second:    "3h",
		47*time.Hour + 59*time.Minute:   "47h59m",
		2*24*time.Hour + 30*time.Minute: "2d",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseCode(t *testing.T) {
	for in, want := range map[string]codes.Code{
		"INVALID_ARGUMENT": codes.InvalidArgument,
		"invalid_argument": codes.InvalidArgument,
		"invalid-argument": codes.InvalidArgument,
		"InvalidArgument":  codes.InvalidArgument,
		"3":                codes.InvalidArgument,
		"unavailable":      codes.Unavailable,
		"14":               codes.Unavailable,
		"canceled":         codes.Canceled,
		"CANCELLED":        codes.Canceled,
		"codes.Internal":   codes.Internal,
		"ok":               codes.OK,
		"0":                codes.OK,
		"16":               codes.Unauthenticated,
	} {
		got, err := parseCode(in)
		if err != nil || got != want {
			t.Errorf("parseCode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "17", "-1", "nope", "INVALID ARG"} {
		if c, err := parseCode(in); err == nil {
			t.Errorf("parseCode(%q) = %v, want an error", in, c)
		}
	}
	for c, name := range codeNames {
		if got := codeName(c); got != name {
			t.Errorf("codeName(%d) = %q", c, got)
		}
		if back, err := parseCode(name); err != nil || back != c {
			t.Errorf("parseCode(codeName(%v)) = %v, %v", c, back, err)
		}
	}
	if got := codeName(codes.Code(99)); got != "CODE(99)" {
		t.Errorf("codeName(99) = %q", got)
	}
}

func TestExitCode(t *testing.T) {
	if got := ExitCode(nil); got != 0 {
		t.Errorf("ExitCode(nil) = %d", got)
	}
	if got := ExitCode(errors.New("x")); got != 1 {
		t.Errorf("ExitCode(plain) = %d", got)
	}
	wrapped := fmt.Errorf("wrapped: %w", &ExitError{Code: 3, Err: errors.New("full")})
	if got := ExitCode(wrapped); got != 3 {
		t.Errorf("ExitCode(wrapped ExitError 3) = %d", got)
	}
	if got := ExitCode(&ExitError{Err: errors.New("zero")}); got != 1 {
		t.Errorf("ExitCode(ExitError 0) = %d, want 1", got)
	}
}

func TestServerError(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "invalid trigger").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "filter.cel", Description: "1:5: Syntax error"},
			{Field: "delivery.max_attempts", Description: "must be between 1 and 1000, got -1"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// As the sdk returns it: a typed error wrapping the status error.
	typed := &sdk.InvalidTriggerError{Err: st.Err()}
	got := serverError("trigger/orders", typed)
	want := "trigger/orders: INVALID_ARGUMENT: invalid trigger\n" +
		"  filter.cel: 1:5: Syntax error\n" +
		"  delivery.max_attempts: must be between 1 and 1000, got -1"
	if got.Error() != want {
		t.Errorf("serverError:\n%s\nwant:\n%s", got, want)
	}
	var ite *sdk.InvalidTriggerError
	if !errors.As(got, &ite) {
		t.Error("serverError does not unwrap to the sdk error")
	}

	unavailable := fmt.Errorf("%w: %w", sdk.ErrUnavailable, status.Error(codes.Unavailable, "connection refused"))
	if got := serverError("", unavailable).Error(); got != "UNAVAILABLE: connection refused" {
		t.Errorf("serverError(unavailable) = %q", got)
	}
	if !errors.Is(serverError("", unavailable), sdk.ErrUnavailable) {
		t.Error("serverError(unavailable) lost ErrUnavailable")
	}
	plain := errors.New("plain")
	if got := serverError("", plain); got != plain {
		t.Errorf("serverError(plain) = %v", got)
	}
	if got := serverError("x", plain).Error(); got != "x: plain" {
		t.Errorf("serverError(x, plain) = %q", got)
	}
	if serverError("x", nil) != nil {
		t.Error("serverError(nil) != nil")
	}
}
