package redisstreams_test

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
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	_ "github.com/switchyard-io/switchyard/connectors/redisstreams"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

func spec(t testing.TB) connectors.Spec {
	t.Helper()
	s, ok := connectors.Default.Lookup("redis_streams")
	if !ok {
		t.Fatal("redis_streams not registered")
	}
	return s
}

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "redis_streams", env, fields)
}

// client connects to the real Redis and deletes the test's streams at the end.
type client struct {
	*redis.Client
	mu      sync.Mutex
	streams map[string]string // by source name
}

func newClient(t testing.TB) *client {
	t.Helper()
	testenv.Real(t)
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	c := &client{Client: redis.NewClient(opt), streams: map[string]string{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.streams {
			c.Del(context.Background(), s)
		}
		_ = c.Close()
	})
	return c
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// stream returns the test's stream for a source name.
func (c *client) stream(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.streams[name]
	if !ok {
		s = randomName("sytest-rs-" + name + "-")
		c.streams[name] = s
	}
	return s
}

func (c *client) add(t testing.TB, stream string, n int, fields func(i int) map[string]any) {
	t.Helper()
	ctx := context.Background()
	p := c.Pipeline()
	for i := range n {
		p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: fields(i)})
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func quietEnv(name string) connectors.Env {
	return connectortest.Env(name, &connectortest.MemCheckpoints{}, nil)
}

func TestConformance(t *testing.T) {
	c := newClient(t)
	var seq atomic.Int64
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, env connectors.Env) connectors.Source {
			return build(t, env, map[string]any{"url": testenv.RedisURL(), "stream": c.stream(env.Name), "block": "200ms"})
		},
		Produce: func(t *testing.T, name string, _ *connectortest.Mux, n int) {
			c.add(t, c.stream(name), n, func(int) map[string]any {
				return map[string]any{"n": seq.Add(1), "source": name}
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
		"missing stream":   {map[string]any{}, "fields.stream: required"},
		"bad url":          {map[string]any{"stream": "s", "url": "http://x"}, "fields.url"},
		"bad start":        {map[string]any{"stream": "s", "start": ">"}, "fields.start"},
		"zero count":       {map[string]any{"stream": "s", "count": 0}, "fields.count"},
		"tiny block":       {map[string]any{"stream": "s", "block": "100us"}, "fields.block"},
		"negative claim":   {map[string]any{"stream": "s", "claim_idle": "-1s"}, "fields.claim_idle"},
		"bad duration":     {map[string]any{"stream": "s", "block": "soon"}, "fields.block"},
		"control in key":   {map[string]any{"stream": "a\nb"}, "fields.stream"},
		"bad source":       {map[string]any{"stream": "s", "source": "not a uri ref %zz"}, "fields.source"},
		"empty type":       {map[string]any{"stream": "s", "type": ""}, "fields.type"},
		"unknown field":    {map[string]any{"stream": "s", "topic": "x"}, "fields.topic: unknown field"},
		"wrong field type": {map[string]any{"stream": "s", "count": "ten"}, "fields.count"},
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

// read reads one message within a second.
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

func TestEntryShapes(t *testing.T) {
	c := newClient(t)
	stream := c.stream("shapes")
	ctx := context.Background()
	structured := `{"specversion":"1.0","id":"s-1","source":"/orders","type":"order.created","datacontenttype":"application/json","data":{"a":1}}`
	adds := []map[string]any{
		{"order_id": "o-1", "total": "12.5"},
		{"cloudevent": structured},
		{"ce_specversion": "1.0", "ce_id": "b-1", "ce_source": "/orders", "ce_type": "order.paid", "ce_time": "2024-05-01T10:00:00Z", "ce_tenant": "acme", "content-type": "text/plain", "data": "hello"},
		{"ce_specversion": "1.0", "ce_id": "", "ce_source": "/x", "ce_type": "t"}, // not a valid CloudEvent: wrapped
		{"cloudevent": "{not json"}, // idem
	}
	var ids []string
	for _, v := range adds {
		id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: v}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	src := build(t, quietEnv("shapes"), map[string]any{"stream": stream, "subject_field": "order_id", "source": "/shop/orders"})
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	var evs []*pb.CloudEvent
	for range adds {
		m := read(t, src)
		if err := cloudevent.Validate(m.Event); err != nil {
			t.Errorf("invalid event %v: %v", m.Event, err)
		}
		evs = append(evs, m.Event)
		_ = m.Ack(ctx, nil)
	}
	attr := func(ev *pb.CloudEvent, n string) string { s, _ := cloudevent.Attribute(ev, n); return s }
	if e := evs[0]; e.GetId() != stream+":"+ids[0] || e.GetType() != "com.switchyard.redis_streams.entry" || e.GetSource() != "/shop/orders" ||
		attr(e, "subject") != "o-1" || attr(e, "datacontenttype") != "application/json" || e.GetTextData() != `{"order_id":"o-1","total":"12.5"}` || attr(e, "time") == "" {
		t.Errorf("wrapped entry: %v", e)
	}
	if e := evs[1]; e.GetId() != "s-1" || e.GetType() != "order.created" || e.GetTextData() != `{"a":1}` {
		t.Errorf("structured entry: %v", e)
	}
	if e := evs[2]; e.GetId() != "b-1" || e.GetType() != "order.paid" || attr(e, "tenant") != "acme" || attr(e, "datacontenttype") != "text/plain" ||
		e.GetTextData() != "hello" || attr(e, "time") != "2024-05-01T10:00:00Z" {
		t.Errorf("binary entry: %v", e)
	}
	for i := 3; i < 5; i++ {
		if e := evs[i]; e.GetId() != stream+":"+ids[i] || e.GetType() != "com.switchyard.redis_streams.entry" {
			t.Errorf("invalid CloudEvent entry %d not wrapped: %v", i, e)
		}
	}
}

func TestDataField(t *testing.T) {
	c := newClient(t)
	stream := c.stream("datafield")
	ctx := context.Background()
	c.add(t, stream, 1, func(int) map[string]any { return map[string]any{"payload": "\xff\x00raw", "k": "v"} })
	c.add(t, stream, 1, func(int) map[string]any { return map[string]any{"payload": `{"x":true}`} })
	c.add(t, stream, 1, func(int) map[string]any { return map[string]any{"payload": "a,b", "content-type": "text/csv"} })
	src := build(t, quietEnv("datafield"), map[string]any{"stream": stream, "data_field": "payload"})
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	want := []struct{ ct, data string }{{"application/octet-stream", "\xff\x00raw"}, {"application/json", `{"x":true}`}, {"text/csv", "a,b"}}
	for _, w := range want {
		m := read(t, src)
		ct, _ := cloudevent.Attribute(m.Event, "datacontenttype")
		if ct != w.ct || string(cloudevent.Data(m.Event)) != w.data {
			t.Errorf("got %q %q, want %q %q", ct, cloudevent.Data(m.Event), w.ct, w.data)
		}
		_ = m.Ack(ctx, nil)
	}
}

// TestNackRedeliversWithoutReconnect: a refused entry comes again from the
// same source, with the same id, before newer ones.
func TestNackRedeliversWithoutReconnect(t *testing.T) {
	c := newClient(t)
	stream := c.stream("nack")
	ctx := context.Background()
	c.add(t, stream, 3, func(i int) map[string]any { return map[string]any{"i": i} })
	src := build(t, quietEnv("nack"), map[string]any{"stream": stream, "block": "100ms"})
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	a, b := read(t, src), read(t, src)
	_ = a.Ack(ctx, nil)
	_ = b.Ack(ctx, fmt.Errorf("no"))
	again := read(t, src)
	if again.Event.GetId() != b.Event.GetId() {
		t.Fatalf("after a nack got %s, want %s again", again.Event.GetId(), b.Event.GetId())
	}
	_ = again.Ack(ctx, nil)
	third := read(t, src)
	_ = third.Ack(ctx, nil)
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pending, err := c.XPending(ctx, stream, "switchyard-nack").Result()
	if err != nil {
		t.Fatal(err)
	}
	if pending.Count != 0 {
		t.Fatalf("%d entries still pending after acking all", pending.Count)
	}
}

// TestClaimsFromDeadConsumer: entries left pending by a consumer that died
// are taken over once idle for claim_idle; that consumer is not deleted.
func TestClaimsFromDeadConsumer(t *testing.T) {
	c := newClient(t)
	stream := c.stream("claim")
	ctx := context.Background()
	c.add(t, stream, 5, func(i int) map[string]any { return map[string]any{"i": i} })
	dead := build(t, quietEnv("claim"), map[string]any{"stream": stream, "consumer": "dead"})
	if err := dead.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var deadIDs []string
	for range 5 {
		deadIDs = append(deadIDs, read(t, dead).Event.GetId()) // never acknowledged
	}
	// The dead consumer's connection stays open: it just stops answering.
	live := build(t, quietEnv("claim"), map[string]any{"stream": stream, "consumer": "live", "claim_idle": "300ms", "block": "100ms"})
	if err := live.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer live.Close(ctx)
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 5 && time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := live.Read(rctx)
		cancel()
		if err != nil {
			continue
		}
		got = append(got, m.Event.GetId())
		_ = m.Ack(ctx, nil)
	}
	if strings.Join(got, ",") != strings.Join(deadIDs, ",") {
		t.Fatalf("claimed %v, want %v", got, deadIDs)
	}
	_ = live.Close(ctx)
	consumers, err := c.XInfoConsumers(ctx, stream, "switchyard-claim").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(consumers) != 2 {
		t.Fatalf("consumers %v: the dead one must not be deleted", consumers)
	}
	_ = dead.Close(ctx)
}

// TestStartDollar: a group created with start $ skips older entries.
func TestStartDollar(t *testing.T) {
	c := newClient(t)
	stream := c.stream("dollar")
	ctx := context.Background()
	c.add(t, stream, 3, func(i int) map[string]any { return map[string]any{"old": i} })
	src := build(t, quietEnv("dollar"), map[string]any{"stream": stream, "start": "$", "block": "50ms"})
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	c.add(t, stream, 1, func(int) map[string]any { return map[string]any{"new": "yes"} })
	m := read(t, src)
	if !strings.Contains(m.Event.GetTextData(), `"new"`) {
		t.Fatalf("first event %v, want the new entry", m.Event)
	}
}

// countingSink counts the events published through it.
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

// BenchmarkIngest measures entries/s from a real Redis stream into a real
// Switchyard router.
func BenchmarkIngest(b *testing.B) {
	c := newClient(b)
	stream := c.stream("bench")
	payload := strings.Repeat("x", 200)
	for i := 0; i < b.N; i += 1000 {
		c.add(b, stream, min(1000, b.N-i), func(j int) map[string]any { return map[string]any{"i": i + j, "payload": payload} })
	}
	sink := &countingSink{Sink: connectortest.RouterSink(b)}
	src := build(b, quietEnv("bench"), map[string]any{"stream": stream})
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
