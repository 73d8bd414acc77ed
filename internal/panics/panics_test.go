package panics_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/panics"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

// syncBuffer is a log destination safe for concurrent writes.
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

func TestRunRecoversCountsAndLogsWithStack(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	before := panics.Count("test.run")
	require.True(t, panics.Run(log, "test.run", func() { panic("boom") }))
	require.False(t, panics.Run(log, "test.run", func() {}))
	require.Equal(t, before+1, panics.Count("test.run"))
	out := buf.String()
	require.Contains(t, out, `"where":"test.run"`)
	require.Contains(t, out, `"panic":"boom"`)
	require.Contains(t, out, "panics_test.go", "the stack names the panicking function")
}

func TestCatchCallsThenWithTheValue(t *testing.T) {
	var got any
	func() {
		defer panics.Catch(nil, "test.catch", func(v any) { got = v })
		store(nil, "x") // a runtime panic, not only panic(value)
	}()
	require.NotNil(t, got)
	require.Contains(t, got.(error).Error(), "nil map")
}

// store writes into m, which panics when m is nil.
func store(m map[string]int, k string) { m[k] = 1 }

// A loop that panics is run again, with a growing delay, until it returns
// normally; a loop stopped by its context is not restarted.
func TestLoopRestartsAfterAPanic(t *testing.T) {
	var runs atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		panics.Loop(context.Background(), nil, "test.loop", func(context.Context) {
			if runs.Add(1) < 3 {
				panic("again")
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not finish")
	}
	require.EqualValues(t, 3, runs.Load())

	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		panics.Loop(ctx, nil, "test.loop", func(context.Context) {
			n.Add(1)
			panic("always")
		})
	}()
	testenv.Eventually(t, 5*time.Second, func() bool { return n.Load() >= 1 }, "first run")
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled loop was restarted")
	}
}

func TestHook(t *testing.T) {
	var seen []string
	restore := panics.SetHook(func(where string) { seen = append(seen, where) })
	panics.Hook("a")
	panics.Hook("b")
	restore()
	panics.Hook("c")
	require.Equal(t, []string{"a", "b"}, seen)
	require.False(t, strings.Contains(strings.Join(seen, ","), "c"))
}
