package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-io/switchyard/internal/logging"
)

func spanCtx(t *testing.T) context.Context {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	require.NoError(t, err)
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
}

// lines decodes every JSON line; a duplicated key fails the test.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		for _, k := range []string{logging.KeyTraceID, logging.KeySpanID, logging.KeyRequestID} {
			require.LessOrEqual(t, strings.Count(l, `"`+k+`"`), 1, "%s twice in %s", k, l)
		}
		m := map[string]any{}
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

// Lines logged with a span in the context carry its trace and span ids,
// those of an API call its request id; lines without either carry nothing
// more, and a trace id the line (or the logger) sets itself wins.
func TestHandlerAddsContextIDs(t *testing.T) {
	var buf bytes.Buffer
	log := logging.Wrap(slog.New(slog.NewJSONHandler(&buf, nil)))
	require.Same(t, log, logging.Wrap(log), "wrapped once")
	ctx := logging.WithRequestID(spanCtx(t), "req-1")
	log.InfoContext(ctx, "with both")
	log.InfoContext(logging.WithRequestID(context.Background(), "req-2"), "request only")
	log.Info("none")
	log.InfoContext(ctx, "own trace", "trace_id", "event-trace")
	log.With("trace_id", "logger-trace").InfoContext(ctx, "logger trace")
	log.WithGroup("g").InfoContext(ctx, "grouped")
	got := lines(t, &buf)
	require.Len(t, got, 6)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", got[0]["trace_id"])
	require.Equal(t, "00f067aa0ba902b7", got[0]["span_id"])
	require.Equal(t, "req-1", got[0]["request_id"])
	require.Equal(t, "req-2", got[1]["request_id"])
	require.NotContains(t, got[1], "trace_id")
	require.NotContains(t, got[2], "trace_id")
	require.NotContains(t, got[2], "request_id")
	require.Equal(t, "event-trace", got[3]["trace_id"])
	require.Equal(t, "00f067aa0ba902b7", got[3]["span_id"])
	require.Equal(t, "logger-trace", got[4]["trace_id"])
	g, ok := got[5]["g"].(map[string]any)
	require.True(t, ok, "ids land in the open group")
	require.Equal(t, "req-1", g["request_id"])
}

// The level of the wrapped handler decides.
func TestHandlerKeepsLevel(t *testing.T) {
	var buf bytes.Buffer
	log := logging.Wrap(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	log.InfoContext(spanCtx(t), "dropped")
	log.WarnContext(spanCtx(t), "kept")
	got := lines(t, &buf)
	require.Len(t, got, 1)
	require.Equal(t, "kept", got[0]["msg"])
}

func TestRequestIDs(t *testing.T) {
	for id, ok := range map[string]bool{
		"abc": true, "0f8fad5b-d9cb-469f-a165-70867728950e": true, "a.b:c/d+e=f@g_h": true,
		"": false, "has space": false, "line\nbreak": false, "quote\"": false, "é": false,
		strings.Repeat("a", logging.MaxRequestIDLen): true, strings.Repeat("a", logging.MaxRequestIDLen+1): false,
	} {
		require.Equal(t, ok, logging.CleanRequestID(id), "%q", id)
	}
	require.Equal(t, "kept", logging.RequestIDFrom("kept"))
	a, b := logging.RequestIDFrom("bad id"), logging.NewRequestID()
	require.True(t, logging.CleanRequestID(a))
	require.Len(t, a, 24)
	require.NotEqual(t, a, b)
	require.Equal(t, "x", logging.RequestID(logging.WithRequestID(context.Background(), "x")))
	require.Empty(t, logging.RequestID(context.Background()))
}

// An id a client sends is kept only when it is safe to echo and log.
func FuzzCleanRequestID(f *testing.F) {
	for _, s := range []string{"abc", "", "a b", "x\r\nSet-Cookie: y", strings.Repeat("z", 200), "\x00", "ü", "0f8fad5b-d9cb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id := logging.RequestIDFrom(s)
		if !logging.CleanRequestID(id) {
			t.Fatalf("RequestIDFrom(%q) = %q, not clean", s, id)
		}
		if logging.CleanRequestID(s) {
			if id != s {
				t.Fatalf("a clean id %q was replaced", s)
			}
			if len(s) > logging.MaxRequestIDLen || strings.ContainsAny(s, " \t\r\n\"\\\x00") {
				t.Fatalf("%q kept", s)
			}
		}
	})
}

// A key logs its burst, then one line per interval; what it suppressed is
// reported at most once per interval; keys do not share buckets; idle keys
// are forgotten.
func TestLimiter(t *testing.T) {
	l := logging.NewLimiter(10*time.Second, 3)
	now := time.Unix(1000, 0)
	allowed := 0
	for range 1000 {
		if l.Allow("t1/dead", now, "trigger", "t1") {
			allowed++
		}
	}
	require.Equal(t, 3, allowed, "the burst")
	require.True(t, l.Allow("t2/dead", now), "another key has its own bucket")
	require.Empty(t, l.Flush(now.Add(time.Second)), "reported at most once per interval")
	sup := l.Flush(now.Add(10 * time.Second))
	require.Len(t, sup, 1)
	require.Equal(t, logging.Suppressed{Key: "t1/dead", Count: 997, Attrs: []any{"trigger", "t1"}}, sup[0])
	require.Empty(t, l.Flush(now.Add(11*time.Second)), "counts reset")
	require.True(t, l.Allow("t1/dead", now.Add(10*time.Second)), "one token per interval")
	require.False(t, l.Allow("t1/dead", now.Add(11*time.Second)))
	require.Equal(t, 2, l.Len())
	l.Flush(now.Add(time.Hour))
	l.Flush(now.Add(2 * time.Hour))
	require.Zero(t, l.Len(), "idle keys forgotten")
}

// Beyond MaxLimitKeys keys, new keys share one overflow bucket.
func TestLimiterBoundsKeys(t *testing.T) {
	l := logging.NewLimiter(time.Second, 1)
	now := time.Unix(0, 0)
	for i := range logging.MaxLimitKeys + 10 {
		l.Allow(fmt.Sprint(i), now)
	}
	require.Equal(t, logging.MaxLimitKeys+1, l.Len())
}
