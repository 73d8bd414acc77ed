package watermill_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/sdk"
	sywm "github.com/switchyard-io/switchyard/sdk/watermill"
	"github.com/switchyard-io/switchyard/server"
)

// features are what the Publisher and Subscriber promise; the package
// documentation says why each is set so.
var features = tests.Features{
	ConsumerGroups:                      true,
	ExactlyOnceDelivery:                 false,
	GuaranteedOrder:                     false,
	GuaranteedOrderWithSingleSubscriber: false,
	Persistent:                          true,
	RequireSingleInstance:               false,
	NewSubscriberReceivesOldMessages:    false,
	ContextPreserved:                    false,
	ForceShort:                          true,
}

// startSwitchyard runs a real server (in-process) on real Redis.
func startSwitchyard(t *testing.T) *sdk.Client {
	t.Helper()
	b := testenv.Real(t)
	s, err := server.New(context.Background(), server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", RedisURL: b.URL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Router: router.Config{Prefix: b.Prefix, SweepInterval: 100 * time.Millisecond},
	})
	require.NoError(t, err)
	s.Serve()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c, err := sdk.New(sdk.Config{Address: s.GRPCAddr()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// delivery keeps the suite's Nacks quick: the first retry comes within
// 20 ms.
var delivery = &switchyardv1.DeliveryPolicy{InitialBackoff: durationpb.New(10 * time.Millisecond), MaxBackoff: durationpb.New(50 * time.Millisecond), MaxAttempts: 1000}

func TestUniversalPubSub(t *testing.T) {
	c := startSwitchyard(t)
	start := time.Now()
	t.Cleanup(func() { t.Logf("universal Pub/Sub suite took %s", time.Since(start).Round(time.Millisecond)) })
	construct := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, err := sywm.NewPublisher(sywm.PublisherConfig{Client: c}, nil)
		require.NoError(t, err)
		sub, err := sywm.NewSubscriber(sywm.SubscriberConfig{Client: c, ConsumerGroup: group, Delivery: delivery, DrainTimeout: 5 * time.Second}, nil)
		require.NoError(t, err)
		return pub, sub
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return construct(t, "") },
		construct)
}

func TestPublisherWaitsOutPushback(t *testing.T) {
	c := startSwitchyard(t)
	sub, err := sywm.NewSubscriber(sywm.SubscriberConfig{Client: c, Delivery: &switchyardv1.DeliveryPolicy{MaxQueue: 5}}, nil)
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.SubscribeInitialize("bursty"))
	pub, err := sywm.NewPublisher(sywm.PublisherConfig{Client: c, BatchSize: 5}, nil)
	require.NoError(t, err)
	defer pub.Close()

	var msgs []*message.Message
	for i := range 20 {
		msgs = append(msgs, message.NewMessage(fmt.Sprintf("m-%02d", i), []byte("x")))
	}
	// 20 messages into a queue of 5: Publish waits while the queue is full
	// and returns nil once all are in, as the subscriber drains it.
	published := make(chan error, 1)
	go func() { published <- pub.Publish("bursty", msgs...) }()
	ch, err := sub.Subscribe(context.Background(), "bursty")
	require.NoError(t, err)
	got := map[string]bool{}
	for len(got) < 20 {
		select {
		case m := <-ch:
			got[m.UUID] = true
			m.Ack()
		case <-time.After(20 * time.Second):
			t.Fatalf("received %d of 20", len(got))
		}
	}
	require.NoError(t, <-published)

	// Nobody draining: past MaxPushbackWait the error says pushed back.
	require.NoError(t, sub.Close())
	for i := range 5 {
		require.NoError(t, pub.Publish("bursty", message.NewMessage(fmt.Sprintf("f-%d", i), nil)))
	}
	impatient, err := sywm.NewPublisher(sywm.PublisherConfig{Client: c, MaxPushbackWait: 100 * time.Millisecond}, nil)
	require.NoError(t, err)
	var pe *sdk.PushbackError
	require.ErrorAs(t, impatient.Publish("bursty", message.NewMessage("over", nil)), &pe)
}
