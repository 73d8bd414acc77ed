package natsjs_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	_ "github.com/switchyard-io/switchyard/connectors/natsjs"
)

const natsURL = "nats://127.0.0.1:4222"

func spec(t testing.TB) connectors.Spec {
	t.Helper()
	s, ok := connectors.Default.Lookup("nats_jetstream")
	if !ok {
		t.Fatal("nats_jetstream not registered")
	}
	return s
}

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "nats_jetstream", env, fields)
}

func quietEnv(name string) connectors.Env {
	return connectortest.Env(name, &connectortest.MemCheckpoints{}, nil)
}

func random() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// client talks to the real NATS server and deletes the test's streams at
// the end.
type client struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	mu      sync.Mutex
	streams map[string]testStream // by source name
}

type testStream struct{ name, subject string }

func newClient(t testing.TB) *client {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatalf("NATS at %s is not reachable: %v", natsURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{nc: nc, js: js, streams: map[string]testStream{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.streams {
			_ = js.DeleteStream(context.Background(), s.name)
		}
		nc.Close()
	})
	return c
}

// stream returns the test's stream for a source name, created on first use.
func (c *client) stream(t testing.TB, name string) testStream {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.streams[name]
	if ok {
		return s
	}
	r := random()
	s = testStream{name: "SYTEST_NJS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_" + r, subject: "sytest." + r}
	if _, err := c.js.CreateStream(context.Background(), jetstream.StreamConfig{Name: s.name, Subjects: []string{s.subject + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	c.streams[name] = s
	return s
}

// publish stores n messages (waiting for each store ack).
func (c *client) publish(t testing.TB, subject string, n int, msg func(i int) *nats.Msg) {
	t.Helper()
	ctx := context.Background()
	var futures []jetstream.PubAckFuture
	for i := range n {
		m := msg(i)
		m.Subject = subject
		f, err := c.js.PublishMsgAsync(m)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		case <-ctx.Done():
		}
	}
}

func TestConformance(t *testing.T) {
	c := newClient(t)
	var seq atomic.Int64
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, env connectors.Env) connectors.Source {
			return build(t, env, map[string]any{"stream": c.stream(t, env.Name).name, "ack_wait": "5s"})
		},
		Produce: func(t *testing.T, name string, _ *connectortest.Mux, n int) {
			c.publish(t, c.stream(t, name).subject+".orders", n, func(int) *nats.Msg {
				return &nats.Msg{Data: []byte(fmt.Sprintf(`{"n":%d}`, seq.Add(1)))}
			})
		},
	})
}

func TestConfigErrors(t *testing.T) {
	s := spec(t)
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"missing stream":      {map[string]any{}, "fields.stream: required"},
		"dotted stream":       {map[string]any{"stream": "a.b"}, "fields.stream"},
		"bad durable":         {map[string]any{"stream": "S", "durable": "x y"}, "fields.durable"},
		"bad policy":          {map[string]any{"stream": "S", "deliver_policy": "last"}, "fields.deliver_policy"},
		"short ack wait":      {map[string]any{"stream": "S", "ack_wait": "10ms"}, "fields.ack_wait"},
		"zero max pending":    {map[string]any{"stream": "S", "max_ack_pending": 0}, "fields.max_ack_pending"},
		"blank subject":       {map[string]any{"stream": "S", "subjects": []any{""}}, "fields.subjects"},
		"spaced filter":       {map[string]any{"stream": "S", "filter_subjects": []any{"a b"}}, "fields.filter_subjects"},
		"bad source":          {map[string]any{"stream": "S", "source": "%zz"}, "fields.source"},
		"empty type":          {map[string]any{"stream": "S", "type": ""}, "fields.type"},
		"wrong type":          {map[string]any{"stream": "S", "create_stream": "yes"}, "fields.create_stream"},
		"unknown field":       {map[string]any{"stream": "S", "group": "g"}, "fields.group: unknown field"},
		"subjects not a list": {map[string]any{"stream": "S", "subjects": "a.>"}, "fields.subjects"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := s.Build("fields", tc.fields)
			if err == nil {
				_, err = s.New(quietEnv("cfg"), cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func read(t *testing.T, src connectors.Source) *connectors.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func connect(t *testing.T, src connectors.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
}

func TestMessageShapes(t *testing.T) {
	c := newClient(t)
	s := c.stream(t, "shapes")
	structured := `{"specversion":"1.0","id":"s-1","source":"/orders","type":"order.created","data":{"a":1}}`
	msgs := []*nats.Msg{
		{Data: []byte(`{"order":1}`)},
		{Data: []byte("a,b"), Header: nats.Header{"Content-Type": {"text/csv"}}},
		{Data: []byte{0xff, 0x00}},
		{Data: []byte(structured), Header: nats.Header{"Content-Type": {"application/cloudevents+json; charset=utf-8"}}},
		{Data: []byte(structured)}, // binding 1.0.2: no headers
		{Data: []byte("hi"), Header: nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"b-1"}, "Ce-Source": {"/orders"}, "ce-type": {"order.paid"},
			"ce-subject": {"caf%C3%A9 au lait"}, "ce-time": {"2024-05-01T10:00:00Z"}, "Content-Type": {"text/plain"}}},
		{Data: []byte("x"), Header: nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"b-2"}}}, // no source/type: wrapped
	}
	c.publish(t, s.subject+".orders", len(msgs), func(i int) *nats.Msg { return msgs[i] })
	src := build(t, quietEnv("shapes"), map[string]any{"stream": s.name, "source": "/shop"})
	connect(t, src)
	attr := func(ev *pb.CloudEvent, n string) string { v, _ := cloudevent.Attribute(ev, n); return v }
	var evs []*pb.CloudEvent
	for range msgs {
		m := read(t, src)
		if err := cloudevent.Validate(m.Event); err != nil {
			t.Errorf("invalid %v: %v", m.Event, err)
		}
		evs = append(evs, m.Event)
		_ = m.Ack(context.Background(), nil)
	}
	if e := evs[0]; e.GetId() != s.name+":1" || e.GetSource() != "/shop" || e.GetType() != "com.switchyard.nats_jetstream.message" ||
		attr(e, "subject") != s.subject+".orders" || attr(e, "datacontenttype") != "application/json" || e.GetTextData() != `{"order":1}` || attr(e, "time") == "" {
		t.Errorf("wrapped JSON: %v", e)
	}
	if e := evs[1]; attr(e, "datacontenttype") != "text/csv" || e.GetTextData() != "a,b" {
		t.Errorf("wrapped CSV: %v", e)
	}
	if e := evs[2]; attr(e, "datacontenttype") != "application/octet-stream" || string(e.GetBinaryData()) != "\xff\x00" {
		t.Errorf("wrapped bytes: %v", e)
	}
	for i := 3; i <= 4; i++ {
		if e := evs[i]; e.GetId() != "s-1" || e.GetType() != "order.created" || e.GetTextData() != `{"a":1}` {
			t.Errorf("structured %d: %v", i, e)
		}
	}
	if e := evs[5]; e.GetId() != "b-1" || e.GetSource() != "/orders" || attr(e, "subject") != "café au lait" || attr(e, "datacontenttype") != "text/plain" ||
		attr(e, "time") != "2024-05-01T10:00:00Z" || e.GetTextData() != "hi" {
		t.Errorf("binary: %v", e)
	}
	if e := evs[6]; e.GetId() != s.name+":7" {
		t.Errorf("invalid binary event not wrapped: %v", e)
	}
}

func TestCreateStreamAndFilter(t *testing.T) {
	c := newClient(t)
	name := "SYTEST_NJS_CREATE_" + random()
	subj := "sytest." + random()
	t.Cleanup(func() { _ = c.js.DeleteStream(context.Background(), name) })
	missing := build(t, quietEnv("create"), map[string]any{"stream": name})
	if err := missing.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "stream not found") {
		t.Fatalf("connect to a missing stream: %v", err)
	}
	_ = missing.Close(context.Background())
	src := build(t, quietEnv("create"), map[string]any{"stream": name, "create_stream": true, "subjects": []any{subj + ".>"},
		"filter_subjects": []any{subj + ".keep"}})
	connect(t, src)
	c.publish(t, subj+".drop", 2, func(int) *nats.Msg { return &nats.Msg{Data: []byte("drop")} })
	c.publish(t, subj+".keep", 1, func(int) *nats.Msg { return &nats.Msg{Data: []byte("keep")} })
	m := read(t, src)
	if m.Event.GetTextData() != "keep" || m.Event.GetId() != name+":3" {
		t.Fatalf("got %v, want the message on .keep", m.Event)
	}
}

func TestNakRedelivers(t *testing.T) {
	c := newClient(t)
	s := c.stream(t, "nak")
	c.publish(t, s.subject+".x", 2, func(i int) *nats.Msg { return &nats.Msg{Data: []byte(fmt.Sprint(i))} })
	src := build(t, quietEnv("nak"), map[string]any{"stream": s.name, "ack_wait": "1m"})
	connect(t, src)
	ctx := context.Background()
	first := read(t, src)
	_ = first.Ack(ctx, fmt.Errorf("refused"))
	start := time.Now()
	var again *connectors.Message
	for again == nil || again.Event.GetId() != first.Event.GetId() {
		if again != nil {
			_ = again.Ack(ctx, nil)
		}
		again = read(t, src)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("redelivery took %s: the Nak did not work", time.Since(start))
	}
	_ = again.Ack(ctx, nil)
}

func TestDeliverNew(t *testing.T) {
	c := newClient(t)
	s := c.stream(t, "new")
	c.publish(t, s.subject+".x", 3, func(int) *nats.Msg { return &nats.Msg{Data: []byte("old")} })
	src := build(t, quietEnv("new"), map[string]any{"stream": s.name, "deliver_policy": "new"})
	connect(t, src)
	c.publish(t, s.subject+".x", 1, func(int) *nats.Msg { return &nats.Msg{Data: []byte("new")} })
	if m := read(t, src); m.Event.GetTextData() != "new" {
		t.Fatalf("got %v, want the new message", m.Event)
	}
}

type countingSink struct {
	connectors.Sink
	n atomic.Int64
}

func (s *countingSink) Publish(ctx context.Context, evs []*pb.CloudEvent) error {
	if err := s.Sink.Publish(ctx, evs); err != nil {
		return err
	}
	s.n.Add(int64(len(evs)))
	return nil
}

// BenchmarkIngest measures messages/s from a real JetStream stream into a
// real Switchyard router.
func BenchmarkIngest(b *testing.B) {
	c := newClient(b)
	s := c.stream(b, "bench")
	payload := []byte(`{"payload":"` + strings.Repeat("x", 200) + `"}`)
	for i := 0; i < b.N; i += 1000 {
		c.publish(b, s.subject+".x", min(1000, b.N-i), func(int) *nats.Msg { return &nats.Msg{Data: payload} })
	}
	sink := &countingSink{Sink: connectortest.RouterSink(b)}
	src := build(b, quietEnv("bench"), map[string]any{"stream": s.name})
	reg := connectors.NewRegistry()
	if err := reg.Register(connectors.Spec{Kind: "bench", Summary: "bench", New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }}); err != nil {
		b.Fatal(err)
	}
	r, err := connectors.NewRunner(connectors.RunnerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, reg, sink,
		func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "bench", Kind: "bench"}})
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
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.Stop(ctx)
}

// TestCloseNaksPrefetched: messages pulled but not handed over when the
// source closes come again at once to the next source, not after ack_wait.
func TestCloseNaksPrefetched(t *testing.T) {
	c := newClient(t)
	s := c.stream(t, "prefetch")
	c.publish(t, s.subject+".x", 50, func(i int) *nats.Msg { return &nats.Msg{Data: []byte(fmt.Sprint(i))} })
	ctx := context.Background()
	first := build(t, quietEnv("prefetch"), map[string]any{"stream": s.name, "ack_wait": "1m"})
	if err := first.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	m := read(t, first)
	_ = m.Ack(ctx, nil)
	time.Sleep(100 * time.Millisecond) // let the pull fill the buffer
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	second := build(t, quietEnv("prefetch"), map[string]any{"stream": s.name, "ack_wait": "1m"})
	connect(t, second)
	seen := map[string]bool{}
	start := time.Now()
	for len(seen) < 49 {
		m := read(t, second)
		seen[m.Event.GetId()] = true
		_ = m.Ack(ctx, nil)
	}
	if seen[s.name+":1"] {
		t.Errorf("the acked message came again")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s: prefetched messages were not Nak'ed", d)
	}
}
