package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
	"github.com/switchyard-io/switchyard/server"
)

// Two HTTP triggers whose targets are Switchyard's own /events (the egress
// guard's loopback exemption on) make every event come back twice: each
// delivery carries the hop count in ce-switchyardhops, so the events posted
// back count one hop more, and a delivery that would pass the hop limit is
// dead-lettered with HOP_LIMIT instead of sent. The loop stops: with a
// limit of 4, exactly 2+4+8+16 deliveries are made, and the 16 events that
// came back a fourth time end as dead letters of both triggers.
func TestHTTPLoopStopsAtTheHopLimit(t *testing.T) {
	const maxHops = 4
	g, err := egress.New(egress.Config{AllowLoopback: true})
	require.NoError(t, err)
	e := startServer(t, testenv.Embedded(t), func(c *server.Config) {
		c.Router.Outbound = delivery.Outbound{Guard: g}
		c.Router.MaxHops = maxHops
	})
	ctx := context.Background()
	for _, name := range []string{"echo-a", "echo-b"} {
		e.apply(t, fmt.Sprintf(`
name: %s
filter: {attributes: {type: loop.ping}}
target: {url: "%s/events"}
delivery: {initial_backoff: 10ms}
`, name, e.http))
	}
	code, _ := e.post(t, "application/cloudevents+json", nil,
		[]byte(`{"specversion":"1.0","id":"ping-1","source":"/loop","type":"loop.ping","datacontenttype":"application/json","data":{"n":1}}`))
	require.Equal(t, 202, code)

	const deliveries = 2 * (1<<maxHops - 1) // 2 triggers × (1 + 2 + 4 + 8) events below the limit
	const lettersEach = 1 << maxHops        // the events at the limit, each matched by both triggers
	stats := func() (delivered, undelivered int64) {
		ss, err := e.client.TriggerStats(ctx, "")
		require.NoError(t, err)
		for _, s := range ss {
			delivered += s.GetDelivered()
			undelivered += s.GetUndelivered()
		}
		return delivered, undelivered
	}
	testenv.Eventually(t, 30*time.Second, func() bool {
		d, u := stats()
		// Nothing undelivered (queued, in flight or waiting for a retry):
		// the loop is over, not paused.
		return d == deliveries && u == 0 && len(deadLetters(t, e.client, "echo-a")) == lettersEach && len(deadLetters(t, e.client, "echo-b")) == lettersEach
	}, "the loop stopped at the hop limit")
	for _, name := range []string{"echo-a", "echo-b"} {
		for _, dl := range deadLetters(t, e.client, name) {
			require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT, dl.GetReason())
			require.Empty(t, dl.GetAttempts(), "dead-lettered without being sent")
			require.Equal(t, "ping-1", dl.GetEvent().GetId())
			require.Equal(t, fmt.Sprint(maxHops), dl.GetEvent().GetAttributes()[router.HopsExtension].GetCeString(),
				"the count came back in the ce-switchyardhops header")
		}
	}
}

// A pull consumer is not given an event whose delivery would pass the hop
// limit either: it is dead-lettered (HOP_LIMIT), and the consumer gets the
// next one.
func TestPullHonoursTheHopLimit(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), func(c *server.Config) { c.Router.MaxHops = 2 })
	e.apply(t, pullTrigger("hops", "hops", "timeout: 1m"))
	p := openPull(t, e.client, "hops", 10)
	over := newEvent("over", "hops")
	over.SetExtension(router.HopsExtension, 2)
	require.NoError(t, e.client.Publish(context.Background(), over))
	within := newEvent("within", "hops")
	within.SetExtension(router.HopsExtension, 1)
	require.NoError(t, e.client.Publish(context.Background(), within))
	ev := p.next(10 * time.Second)
	require.Equal(t, "within", ev.GetEvent().GetId())
	var dls []*switchyardv1.DeadLetter
	testenv.Eventually(t, 10*time.Second, func() bool { dls = deadLetters(t, e.client, "hops"); return len(dls) == 1 }, "dead-lettered")
	require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT, dls[0].GetReason())
	require.Equal(t, "over", dls[0].GetEvent().GetId())
}
