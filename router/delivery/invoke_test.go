package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// unaryOutcome is a function serving only Invoke, answering every call with
// outcome.
type unaryOutcome struct {
	functionv1.UnimplementedFunctionServiceServer
	outcome functionv1.Outcome
}

func (f *unaryOutcome) Invoke(context.Context, *functionv1.InvokeRequest) (*functionv1.InvokeResponse, error) {
	return &functionv1.InvokeResponse{Outcome: f.outcome}, nil
}

// logBuffer collects a logger's JSON lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// warnings returns the target attribute of every warning logged about an
// answer without an outcome.
func (b *logBuffer) warnings(t *testing.T) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var targets []string
	for line := range strings.Lines(b.buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["level"] == "WARN" && strings.HasPrefix(m["msg"].(string), "function answered without an outcome") {
			targets = append(targets, m["target"].(string))
		}
	}
	return targets
}

// An answer without a defined outcome (OUTCOME_UNSPECIFIED, or a number
// the contract does not define) acknowledges, on a stream and unary alike,
// and Switchyard warns once per function address, not once per call; an
// explicit OUTCOME_ACK is not warned about.
func TestAnswerWithoutOutcomeAcksAndWarnsOncePerFunction(t *testing.T) {
	logs := &logBuffer{}
	tg := NewTargets(TargetsConfig{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	defer tg.Close()
	raw, err := proto.Marshal(bench1KiB())
	require.NoError(t, err)
	key, err := ScanEvent(raw)
	require.NoError(t, err)

	empty := &streamFunc{answer: func(*functionv1.InvokeRequest) *functionv1.StreamAnswer {
		return &functionv1.StreamAnswer{Response: &functionv1.InvokeResponse{}}
	}}
	streamAddr, _ := serveFunc(t, empty)
	connected(t, tg, streamAddr)
	unknownAddr, _ := serveFunc(t, &unaryOutcome{outcome: 7})
	unspecifiedAddr, _ := serveFunc(t, &unaryOutcome{})
	ackAddr, _ := serveFunc(t, &unaryOutcome{outcome: functionv1.Outcome_OUTCOME_ACK})

	for _, addr := range []string{streamAddr, unknownAddr, unspecifiedAddr, ackAddr} {
		for range 3 {
			res := tg.Invoke(context.Background(), &Attempt{Trigger: "orders", GRPC: addr, Raw: raw, Key: key, Number: 1, Timeout: 10 * time.Second})
			require.Equal(t, Ack, res.Verdict, "%s: %s %s", addr, res.Code, res.Message)
			require.Equal(t, "OK", res.Code)
		}
	}
	require.Positive(t, empty.streams.Load(), "the stream path was taken")
	require.ElementsMatch(t, []string{streamAddr, unknownAddr, unspecifiedAddr}, logs.warnings(t))
}

// An HTTP target learns a replay's round from Switchyard-Round, absent in
// an event's first life.
func TestInvokeHTTPSendsRoundAndTrace(t *testing.T) {
	got := make(chan http.Header, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer srv.Close()
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	ev := bench1KiB()
	for _, round := range []int{0, 3} {
		a := &Attempt{Trigger: "orders", URL: srv.URL, Event: ev, Number: 2, Round: round, Timeout: 10 * time.Second}
		if round != 0 {
			a.Trace = traced
		}
		res := tg.Invoke(context.Background(), a)
		require.Equal(t, Ack, res.Verdict, res.Message)
		h := <-got
		require.Equal(t, "2", h.Get("Switchyard-Attempt"))
		// The event's own traceparent stays in ce-traceparent; the
		// attempt's goes in the standard headers, when traced.
		require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", h.Get("Ce-Traceparent"))
		if a.Trace == nil {
			require.NotContains(t, h, "Traceparent")
		} else {
			require.Equal(t, traced["traceparent"], h.Get("Traceparent"))
			require.Equal(t, traced["tracestate"], h.Get("Tracestate"))
		}
		if round == 0 {
			require.NotContains(t, h, "Switchyard-Round")
		} else {
			require.Equal(t, "3", h.Get("Switchyard-Round"))
		}
	}
}
