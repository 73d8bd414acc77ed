package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/sdk/function"
)

func init() {
	extraCommands = append(extraCommands, newSinkCmd)
}

func newSinkCmd() *cobra.Command {
	var (
		listen    string
		failFirst int
		failCode  string
		delay     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sink",
		Short: "Run a sample function endpoint that prints the events it receives",
		Long: `Run a function endpoint (switchyard.function.v1.FunctionService over gRPC,
with gRPC health) that prints one JSON line per received event on standard
output: the context attributes, the extensions (under "extensions"), the data,
and the invocation metadata (attempt, trigger, idempotency_key, deadline, and
round for a replayed event),
received_at and the answer given ("OK" or a gRPC code name).

The data is printed as a JSON value when the datacontenttype is JSON (or
absent, the CloudEvents JSON format's default) and the data parses (white space outside strings removed, to keep one line), as a
"data" string when it is valid UTF-8, and as "data_base64" otherwise.

The listen address is printed on standard error ("sink listening on ADDR"), so
--listen 127.0.0.1:0 can be used. The sink stops on SIGINT or SIGTERM.

Failure injection:
  --fail-first N          answer UNAVAILABLE (retried) to attempts 1 to N of each event
  --fail-code CODE        answer CODE to every attempt (e.g. INVALID_ARGUMENT, which
                          dead-letters, or a number)
  --fail-first N --fail-code CODE
                          answer CODE to attempts 1 to N, then acknowledge
  --delay D               wait D before answering (an attempt cancelled by
                          switchyard meanwhile ends early)`,
		Example: `  switchyard sink --listen 127.0.0.1:7070
  switchyard sink --listen 127.0.0.1:0 --fail-first 2 --delay 100ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := newSink(cmd.OutOrStdout(), cmd.ErrOrStderr(), failFirst, failCode, cmd.Flags().Changed("fail-code"), delay)
			if err != nil {
				return err
			}
			lis, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "sink listening on %s\n", lis.Addr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = s.serve(ctx, lis)
			fmt.Fprintln(cmd.ErrOrStderr(), "sink stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:7070", "gRPC listen address (port 0 picks a free port)")
	f.IntVar(&failFirst, "fail-first", 0, "answer an error (UNAVAILABLE unless --fail-code) to attempts 1 to N of each event")
	f.StringVar(&failCode, "fail-code", "", "gRPC code of the failures, by name (case-insensitive) or number; alone, every attempt fails")
	f.DurationVar(&delay, "delay", 0, "wait this long in every call before answering")
	return cmd
}

// sink is the event printer behind the sink command.
type sink struct {
	out, errOut io.Writer
	mu          sync.Mutex // serializes writes to out and errOut

	failFirst int        // fail attempts 1..failFirst; 0 with failAll unset: never
	failAll   bool       // fail every attempt
	code      codes.Code // code of the failures
	delay     time.Duration
	now       func() time.Time
}

// newSink checks the failure flags and returns a sink printing to out.
func newSink(out, errOut io.Writer, failFirst int, failCode string, codeSet bool, delay time.Duration) (*sink, error) {
	if failFirst < 0 {
		return nil, invalidf("--fail-first must not be negative, got %d", failFirst)
	}
	if delay < 0 {
		return nil, invalidf("--delay must not be negative, got %v", delay)
	}
	s := &sink{out: out, errOut: errOut, failFirst: failFirst, code: codes.Unavailable, delay: delay, now: time.Now}
	if codeSet {
		c, err := parseCode(failCode)
		if err != nil {
			return nil, invalidf("--fail-code: %w", err)
		}
		if c == codes.OK {
			return nil, invalidf("--fail-code: OK is not a failure")
		}
		s.code = c
		s.failAll = failFirst == 0
	}
	return s, nil
}

// fails reports whether the attempt is to be answered with an error.
func (s *sink) fails(attempt int) bool {
	if s.failAll {
		return true
	}
	return max(attempt, 1) <= s.failFirst
}

// serve serves the sink with function.ServeListener (FunctionService and
// gRPC health) until ctx is done, then stops gracefully. It closes lis. The
// handler answers failures with gRPC status errors, which sdk/function
// passes through so that switchyard classifies them by code.
func (s *sink) serve(ctx context.Context, lis net.Listener) error {
	return function.ServeListener(ctx, lis, s.handle)
}

// handle prints the event and decides the answer.
func (s *sink) handle(ctx context.Context, ev event.Event) (function.Result, error) {
	received := s.now()
	info, _ := function.FromContext(ctx)
	var answer error
	if s.delay > 0 {
		t := time.NewTimer(s.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			answer = status.FromContextError(ctx.Err()).Err()
		}
	}
	if answer == nil && s.fails(info.Attempt) {
		answer = status.Errorf(s.code, "sink: failing attempt %d as asked", info.Attempt)
	}
	if err := s.print(sinkLineOf(ev, info, received, answer)); err != nil {
		s.mu.Lock()
		fmt.Fprintf(s.errOut, "sink: cannot print event %q: %v\n", ev.ID(), err)
		s.mu.Unlock()
	}
	return function.Result{}, answer
}

// print writes one line atomically.
func (s *sink) print(l sinkLine) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.out.Write(buf.Bytes())
	return err
}

// sinkLine is the JSON line printed per received event.
type sinkLine struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Subject         string         `json:"subject,omitempty"`
	Time            string         `json:"time,omitempty"`
	DataContentType string         `json:"datacontenttype,omitempty"`
	DataSchema      string         `json:"dataschema,omitempty"`
	Extensions      map[string]any `json:"extensions,omitempty"`
	// Data is a json.RawMessage, a string, or nil.
	Data           any    `json:"data,omitempty"`
	DataBase64     string `json:"data_base64,omitempty"`
	Attempt        int    `json:"attempt"`
	Trigger        string `json:"trigger"`
	IdempotencyKey string `json:"idempotency_key"`
	// Round is the event's replay round, left out in its first life.
	Round      int    `json:"round,omitempty"`
	Deadline   string `json:"deadline,omitempty"`
	ReceivedAt string `json:"received_at"`
	// Answer is "OK" or the name of the gRPC code answered.
	Answer string `json:"answer"`
}

// sinkLineOf builds the printed line of one call.
func sinkLineOf(ev event.Event, info function.Info, received time.Time, answer error) sinkLine {
	l := sinkLine{
		SpecVersion:     ev.SpecVersion(),
		ID:              ev.ID(),
		Source:          ev.Source(),
		Type:            ev.Type(),
		Subject:         ev.Subject(),
		DataContentType: ev.DataContentType(),
		DataSchema:      ev.DataSchema(),
		Attempt:         info.Attempt,
		Trigger:         info.Trigger,
		IdempotencyKey:  info.IdempotencyKey,
		Round:           info.Round,
		ReceivedAt:      received.UTC().Format(time.RFC3339Nano),
		Answer:          "OK",
	}
	if t := ev.Time(); !t.IsZero() {
		l.Time = t.UTC().Format(time.RFC3339Nano)
	}
	if !info.Deadline.IsZero() {
		l.Deadline = info.Deadline.UTC().Format(time.RFC3339Nano)
	}
	if answer != nil {
		l.Answer = codeName(status.Code(answer))
	}
	if exts := ev.Extensions(); len(exts) > 0 {
		l.Extensions = make(map[string]any, len(exts))
		for k, v := range exts {
			l.Extensions[k] = extensionJSON(v)
		}
	}
	if data := ev.Data(); data != nil {
		switch {
		case (ev.DataContentType() == "" || isJSONType(ev.DataContentType())) && json.Valid(data):
			l.Data = json.RawMessage(data)
		case utf8.Valid(data):
			l.Data = string(data)
		default:
			l.DataBase64 = base64.StdEncoding.EncodeToString(data)
		}
	}
	return l
}

// extensionJSON maps an extension value to JSON as the CloudEvents JSON
// format does: booleans and integers natively, everything else as its
// canonical string.
func extensionJSON(v any) any {
	switch v := v.(type) {
	case bool, int32, string:
		return v
	}
	s, err := types.Format(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

// isJSONType reports whether a datacontenttype declares JSON:
// application/json, text/json or a +json suffix.
func isJSONType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}
