package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

// TestReplyEventsAreRoutedAndLoopsStop: a function's reply events are
// published to the bus with the hop counter incremented, reach the triggers
// that match them, and a function answering its own events stops at the hop
// limit instead of looping forever.
func TestReplyEventsAreRoutedAndLoopsStop(t *testing.T) {
	b := testenv.Embedded(t)
	rec := &received{}
	var loops atomic.Int64
	replier := func(ctx context.Context, ev event.Event) (function.Result, error) {
		out := event.New()
		out.SetID("reply-to-" + ev.ID())
		out.SetSource("/billing")
		out.SetType("com.example.invoice.created")
		return function.Reply(out), nil
	}
	looper := func(ctx context.Context, ev event.Event) (function.Result, error) {
		n := loops.Add(1)
		out := event.New()
		out.SetID(fmt.Sprintf("loop-%d", n))
		out.SetSource("/loop")
		out.SetType("loop")
		return function.Reply(out), nil
	}
	e := startServer(t, b, func(c *server.Config) { c.Router.MaxHops = 3 })
	e.apply(t, fmt.Sprintf(`
name: orders
filter: {attributes: {type: com.example.order.created}}
target: {grpc: "%s"}
---
name: invoices
filter: {attributes: {type: com.example.invoice.created}}
target: {grpc: "%s"}
---
name: loop
filter: {attributes: {type: loop}}
target: {grpc: "%s"}
`, startFunction(t, replier), startFunction(t, recorder(rec)), startFunction(t, looper)))
	require.NoError(t, e.client.Publish(context.Background(), newEvent("o1", "com.example.order.created")))
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() == 1 }, "reply delivered")
	got, _, ok := rec.byID("reply-to-o1")
	require.True(t, ok)
	require.EqualValues(t, 1, got.Extensions()[router.HopsExtension])

	require.NoError(t, e.client.Publish(context.Background(), newEvent("l0", "loop")))
	// l0 (hops 0) → loop-1 (1) → loop-2 (2) → loop-3 (3) → refused (4 > 3).
	testenv.Eventually(t, 10*time.Second, func() bool { return loops.Load() >= 4 }, "loop runs to the limit")
	time.Sleep(300 * time.Millisecond) // nothing more may come
	require.EqualValues(t, 4, loops.Load())
}
