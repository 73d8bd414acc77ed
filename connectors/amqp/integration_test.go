package amqp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	amqpsrc "github.com/switchyard-io/switchyard/connectors/amqp"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
)

// brokerURL is the real RabbitMQ these tests use.
func brokerURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// broker is a test's own connection to RabbitMQ, with a confirming
// publisher channel. Queues it declares are deleted when the test ends.
type broker struct {
	t    testing.TB
	conn *amqp091.Connection
	mu   sync.Mutex
	ch   *amqp091.Channel
}

func newBroker(t testing.TB) *broker {
	t.Helper()
	conn, err := amqp091.Dial(brokerURL())
	if err != nil {
		t.Fatalf("RabbitMQ at %s is not reachable: %v", brokerURL(), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, conn: conn, ch: ch}
	t.Cleanup(func() { _ = conn.Close() })
	return b
}

// queue declares a durable queue and deletes it when the test ends.
func (b *broker) queue(name string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { b.deleteQueue(name) })
}

func (b *broker) deleteQueue(name string) {
	conn, err := amqp091.Dial(brokerURL())
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_, _ = ch.QueueDelete(name, false, false, false)
	}
}

// publish publishes persistent messages and waits for the broker's confirms.
func (b *broker) publish(exchange, key string, msgs ...amqp091.Publishing) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	confs := make([]*amqp091.DeferredConfirmation, 0, len(msgs))
	for _, m := range msgs {
		m.DeliveryMode = amqp091.Persistent
		c, err := b.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, m)
		if err != nil {
			b.t.Fatal(err)
		}
		confs = append(confs, c)
	}
	for _, c := range confs {
		if ok, err := c.WaitContext(ctx); err != nil || !ok {
			b.t.Fatalf("publish not confirmed: %v", err)
		}
	}
}

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "amqp", env, fields)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestConformance(t *testing.T) {
	b := newBroker(t)
	prefix := randomName("sytest-amqp-")
	var mu sync.Mutex
	declared := map[string]bool{}
	seq := 0
	queueFor := func(name string) string {
		q := prefix + "-" + name
		mu.Lock()
		defer mu.Unlock()
		if !declared[q] { // messages produced before the source connects wait in the queue
			declared[q] = true
			b.queue(q)
		}
		return q
	}
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, env connectors.Env) connectors.Source {
			return build(t, env, map[string]any{"url": brokerURL(), "queue": queueFor(env.Name), "prefetch": 50})
		},
		Produce: func(t *testing.T, name string, _ *connectortest.Mux, n int) {
			q := queueFor(name)
			msgs := make([]amqp091.Publishing, n)
			for i := range msgs {
				mu.Lock()
				seq++
				msgs[i] = amqp091.Publishing{ContentType: "application/json", Body: fmt.Appendf(nil, `{"n":%d}`, seq)}
				mu.Unlock()
			}
			b.publish("", q, msgs...)
		},
	})
}

// TestEndToEnd checks the emitted events over the wire: message ids,
// CloudEvents in both modes, and a redelivered message keeping its id.
func TestEndToEnd(t *testing.T) {
	b := newBroker(t)
	q := randomName("sytest-amqp-e2e-")
	b.queue(q)
	b.publish("", q,
		amqp091.Publishing{MessageId: "order-1", ContentType: "application/json", Body: []byte(`{"order":1}`)},
		amqp091.Publishing{ContentType: "text/plain", Body: []byte("no id")},
		amqp091.Publishing{Headers: amqp091.Table{"cloudEvents:specversion": "1.0", "cloudEvents:id": "ce-bin", "cloudEvents:source": "/bin",
			"cloudEvents:type": "bin.type", "cloudEvents:myext": "v"}, ContentType: "application/json", Body: []byte(`{"b":1}`)},
		amqp091.Publishing{ContentType: "application/cloudevents+json",
			Body: []byte(`{"specversion":"1.0","id":"ce-str","source":"/str","type":"str.type","data":{"s":1}}`)},
	)
	src := build(t, connectortest.Env("e2e", &connectortest.MemCheckpoints{}, nil), map[string]any{"url": brokerURL(), "queue": q, "type": "com.example.msg"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	var got []*pb.CloudEvent
	var msgs []*connectors.Message
	for range 4 {
		m, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := cloudevent.Validate(m.Event); err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Event)
		msgs = append(msgs, m)
	}
	if got[0].Id != "order-1" || got[0].Type != "com.example.msg" || !strings.HasPrefix(got[0].Source, "amqp://127.0.0.1:5672/%2F/") {
		t.Errorf("message-id message: %v", got[0])
	}
	if len(got[1].Id) != 64 || got[1].GetTextData() != "no id" {
		t.Errorf("plain message: %v", got[1])
	}
	if got[2].Id != "ce-bin" || got[2].Type != "bin.type" || got[2].Attributes["myext"].GetCeString() != "v" || got[2].GetTextData() != `{"b":1}` {
		t.Errorf("binary-mode CloudEvent: %v", got[2])
	}
	if got[3].Id != "ce-str" || got[3].GetTextData() != `{"s":1}` {
		t.Errorf("structured-mode CloudEvent: %v", got[3])
	}
	// Acknowledge all but the plain message, which is refused: it comes
	// back, with the same id.
	for i, m := range msgs {
		var err error
		if i == 1 {
			err = fmt.Errorf("refused")
		}
		if aerr := m.Ack(ctx, err); aerr != nil {
			t.Fatal(aerr)
		}
	}
	m, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Event.Id != got[1].Id {
		t.Fatalf("redelivered message has id %s, want %s", m.Event.Id, got[1].Id)
	}
	if err := m.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Ack(ctx, nil); err == nil {
		t.Error("a second ack was not refused")
	}
}

// TestDeclareAndBindings declares a missing queue, binds it to a topic
// exchange and consumes what is published there.
func TestDeclareAndBindings(t *testing.T) {
	b := newBroker(t)
	q := randomName("sytest-amqp-decl-")
	t.Cleanup(func() { b.deleteQueue(q) })
	key := randomName("sytest.")
	env := connectortest.Env("decl", &connectortest.MemCheckpoints{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	missing := build(t, env, map[string]any{"url": brokerURL(), "queue": q})
	err := missing.Connect(ctx)
	_ = missing.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "declare") {
		t.Fatalf("consuming a missing queue without declare: %v", err)
	}

	src := build(t, env, map[string]any{"url": brokerURL(), "queue": q, "declare": true, "bindings": []any{"amq.topic:" + key + ".#"}})
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	b.publish("amq.topic", key+".created", amqp091.Publishing{Body: []byte(`{"x":1}`)})
	m, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Event.Attributes["subject"].GetCeString(); got != key+".created" {
		t.Errorf("subject %q", got)
	}
	if err := m.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// A second source finds the queue declared and durable.
	_ = src.Close(ctx)
	again := build(t, env, map[string]any{"url": brokerURL(), "queue": q, "declare": true})
	if err := again.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_ = again.Close(ctx)
}

// TestReadKeepsMessageWhenContextEnds: a Read that times out loses nothing.
func TestReadKeepsMessageWhenContextEnds(t *testing.T) {
	b := newBroker(t)
	q := randomName("sytest-amqp-ctx-")
	b.queue(q)
	src := build(t, connectortest.Env("ctx", &connectortest.MemCheckpoints{}, nil), map[string]any{"url": brokerURL(), "queue": q})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	short, c := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := src.Read(short); err == nil {
		t.Fatal("read from an empty queue returned a message")
	}
	c()
	b.publish("", q, amqp091.Publishing{MessageId: "kept", Body: []byte("x")})
	m, err := src.Read(ctx)
	if err != nil || m.Event.Id != "kept" {
		t.Fatalf("got %v, %v", m, err)
	}
	_ = m.Ack(ctx, nil)
}

func TestConnectFailure(t *testing.T) {
	src := build(t, connectortest.Env("down", &connectortest.MemCheckpoints{}, nil), map[string]any{"url": "amqp://guest:guest@127.0.0.1:1/", "queue": "q"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := src.Connect(ctx)
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	_ = src.Close(ctx)
	if _, err := src.Read(ctx); err == nil {
		t.Fatal("read without a connection succeeded")
	}
}

func TestConfigErrors(t *testing.T) {
	spec, _ := connectors.Default.Lookup(amqpsrc.Kind)
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"missing queue":     {map[string]any{}, "fields.queue: required"},
		"empty queue":       {map[string]any{"queue": ""}, "fields.queue"},
		"queue not string":  {map[string]any{"queue": 3}, "fields.queue"},
		"bad scheme":        {map[string]any{"queue": "q", "url": "http://x/"}, "fields.url"},
		"bad url":           {map[string]any{"queue": "q", "url": "amqp://u:se cret@h:x/"}, "fields.url"},
		"prefetch zero":     {map[string]any{"queue": "q", "prefetch": 0}, "fields.prefetch"},
		"prefetch too big":  {map[string]any{"queue": "q", "prefetch": 70000}, "fields.prefetch"},
		"binding no exch":   {map[string]any{"queue": "q", "bindings": []any{":key"}}, "fields.bindings[0]"},
		"bindings not list": {map[string]any{"queue": "q", "bindings": "x"}, "fields.bindings"},
		"bad source":        {map[string]any{"queue": "q", "source": "a b"}, "fields.source"},
		"bad type":          {map[string]any{"queue": "q", "type": ""}, "fields.type"},
		"declare not bool":  {map[string]any{"queue": "q", "declare": "yes"}, "fields.declare"},
		"unknown field":     {map[string]any{"queue": "q", "exchange": "x"}, "fields.exchange: unknown"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := spec.Build("fields", tc.fields)
			if err == nil {
				_, err = spec.New(connectors.Env{Name: "x", Logger: discard()}, cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "se cret") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// countingSink counts the events a sink accepted.
type countingSink struct {
	connectors.Sink
	n atomic.Int64
}

func (c *countingSink) Publish(ctx context.Context, evs []*pb.CloudEvent) error {
	err := c.Sink.Publish(ctx, evs)
	if err == nil {
		c.n.Add(int64(len(evs)))
	}
	return err
}

// BenchmarkIngest measures how fast messages waiting in a RabbitMQ queue
// are stored in Switchyard (real Redis) by a Runner.
func BenchmarkIngest(b *testing.B) {
	br := newBroker(b)
	q := randomName("sytest-amqp-bench-")
	br.queue(q)
	const chunk = 1000
	for i := 0; i < b.N; i += chunk {
		msgs := make([]amqp091.Publishing, min(chunk, b.N-i))
		for j := range msgs {
			msgs[j] = amqp091.Publishing{ContentType: "application/json", Body: fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i+j, strings.Repeat("x", 200))}
		}
		br.publish("", q, msgs...)
	}
	sink := &countingSink{Sink: connectortest.RouterSink(b)}
	r, err := connectors.NewRunner(connectors.RunnerConfig{Logger: discard()}, connectors.Default, sink,
		func(string) connectors.Env { return connectors.Env{Logger: discard()} },
		[]connectors.SourceConfig{{Name: "bench", Kind: amqpsrc.Kind, Fields: map[string]any{"url": brokerURL(), "queue": q, "prefetch": 500}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	r.Start()
	for sink.n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = r.Stop(ctx)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
