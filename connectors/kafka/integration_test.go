package kafka_test

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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	_ "github.com/switchyard-io/switchyard/connectors/kafka"
)

func spec(t testing.TB) connectors.Spec {
	t.Helper()
	s, ok := connectors.Default.Lookup("kafka")
	if !ok {
		t.Fatal("kafka not registered")
	}
	return s
}

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "kafka", env, fields)
}

func quietEnv(name string) connectors.Env {
	return connectortest.Env(name, &connectortest.MemCheckpoints{}, nil)
}

func random() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cluster is an in-process kfake cluster with a producer and an admin client.
type cluster struct {
	addrs  []string
	prod   *kgo.Client
	adm    *kadm.Client
	mu     sync.Mutex
	topics map[string]string // by source name
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// Records say their partition (Record.Partition).
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &cluster{addrs: c.ListenAddrs(), prod: prod, adm: kadm.NewClient(prod), topics: map[string]string{}}
}

// topic returns the test's topic for a source name, created with three
// partitions on first use.
func (c *cluster) topic(t testing.TB, name string) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if tp, ok := c.topics[name]; ok {
		return tp
	}
	tp := "sytest-kafka-" + name + "-" + random()
	if _, err := c.adm.CreateTopic(context.Background(), 3, 1, nil, tp); err != nil {
		t.Fatal(err)
	}
	c.topics[name] = tp
	return tp
}

func (c *cluster) produce(t testing.TB, recs ...*kgo.Record) {
	t.Helper()
	if err := c.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) fields(topic string, more map[string]any) map[string]any {
	f := map[string]any{"brokers": c.addrs, "topics": []string{topic}}
	for k, v := range more {
		f[k] = v
	}
	return f
}

func TestConformance(t *testing.T) {
	c := newCluster(t)
	var seq atomic.Int64
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, env connectors.Env) connectors.Source {
			return build(t, env, c.fields(c.topic(t, env.Name), nil))
		},
		Produce: func(t *testing.T, name string, _ *connectortest.Mux, n int) {
			topic := c.topic(t, name)
			var recs []*kgo.Record
			for range n {
				i := seq.Add(1)
				recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 3), Key: []byte(fmt.Sprint("k", i%7)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))})
			}
			c.produce(t, recs...)
		},
	})
}

func TestConfigErrors(t *testing.T) {
	s := spec(t)
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"missing topics": {map[string]any{}, "fields.topics: required"},
		"empty topics":   {map[string]any{"topics": []any{}}, "fields.topics"},
		"bad topic":      {map[string]any{"topics": []any{"a b"}}, "fields.topics"},
		"no brokers":     {map[string]any{"topics": []any{"t"}, "brokers": []any{}}, "fields.brokers"},
		"bad broker":     {map[string]any{"topics": []any{"t"}, "brokers": []any{"localhost"}}, "fields.brokers"},
		"bad start":      {map[string]any{"topics": []any{"t"}, "start": "oldest"}, "fields.start"},
		"empty client":   {map[string]any{"topics": []any{"t"}, "client_id": ""}, "fields.client_id"},
		"bad source":     {map[string]any{"topics": []any{"t"}, "source": "%zz"}, "fields.source"},
		"empty type":     {map[string]any{"topics": []any{"t"}, "type": ""}, "fields.type"},
		"unknown field":  {map[string]any{"topics": []any{"t"}, "tls": true}, "fields.tls: unknown field"},
		"topics string":  {map[string]any{"topics": "t"}, "fields.topics"},
		"short session":  {map[string]any{"topics": []any{"t"}, "session_timeout": "10ms"}, "fields.session_timeout"},
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

func connect(t *testing.T, src connectors.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
}

func read(t *testing.T, src connectors.Source) *connectors.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRecordShapes(t *testing.T) {
	c := newCluster(t)
	topic := c.topic(t, "shapes")
	structured := `{"specversion":"1.0","id":"s-1","source":"/orders","type":"order.created","data":{"a":1}}`
	h := func(kv ...string) []kgo.RecordHeader {
		var out []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	ts := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	recs := []*kgo.Record{
		{Key: []byte("order-1"), Value: []byte(`{"total":3}`), Timestamp: ts},
		{Value: []byte(structured), Headers: h("content-type", "application/cloudevents+json; charset=UTF-8")},
		{Key: []byte("k"), Value: []byte("hello"), Headers: h("ce_specversion", "1.0", "ce_id", "b-1", "ce_source", "/orders", "ce_type", "order.paid",
			"ce_time", "2024-05-01T10:00:00Z", "ce_tenant", "acme", "content-type", "text/plain")},
		{Value: []byte("x"), Headers: h("ce_specversion", "1.0", "ce_id", "b-2")}, // no source/type: wrapped
		{Key: []byte("gone")}, // tombstone
		{Value: []byte{0xff, 0x01}, Key: []byte{0xff}},
	}
	for _, r := range recs {
		r.Topic, r.Partition = topic, 0
	}
	c.produce(t, recs...) // one partition keeps the order
	src := build(t, quietEnv("shapes"), c.fields(topic, nil))
	connect(t, src)
	var evs []*pb.CloudEvent
	for range recs {
		m := read(t, src)
		if err := cloudevent.Validate(m.Event); err != nil {
			t.Errorf("invalid %v: %v", m.Event, err)
		}
		evs = append(evs, m.Event)
		_ = m.Ack(context.Background(), nil)
	}
	attr := func(ev *pb.CloudEvent, n string) string { v, _ := cloudevent.Attribute(ev, n); return v }
	if e := evs[0]; e.GetId() != topic+"-0-0" || e.GetSource() != "kafka://"+c.addrs[0]+"/"+topic || e.GetType() != "com.switchyard.kafka.record" ||
		attr(e, "subject") != "order-1" || attr(e, "partitionkey") != "order-1" || attr(e, "time") != "2024-05-01T10:00:00Z" ||
		attr(e, "datacontenttype") != "application/json" || e.GetTextData() != `{"total":3}` {
		t.Errorf("wrapped: %v", e)
	}
	if e := evs[1]; e.GetId() != "s-1" || e.GetTextData() != `{"a":1}` {
		t.Errorf("structured: %v", e)
	}
	if e := evs[2]; e.GetId() != "b-1" || attr(e, "tenant") != "acme" || attr(e, "partitionkey") != "k" || attr(e, "datacontenttype") != "text/plain" ||
		e.GetTextData() != "hello" || attr(e, "time") != "2024-05-01T10:00:00Z" {
		t.Errorf("binary: %v", e)
	}
	if e := evs[3]; e.GetId() != topic+"-0-3" {
		t.Errorf("invalid CloudEvent not wrapped: %v", e)
	}
	if e := evs[4]; e.GetId() != topic+"-0-4" || e.GetData() != nil || attr(e, "subject") != "gone" {
		t.Errorf("tombstone: %v", e)
	}
	if e := evs[5]; string(e.GetBinaryData()) != "\xff\x01" || attr(e, "subject") != "" || attr(e, "datacontenttype") != "application/octet-stream" {
		t.Errorf("binary value: %v", e)
	}
}

// TestNackRewinds: a refused record comes again from the same source, with
// the same id; later acks of its partition do not commit past it.
func TestNackRewinds(t *testing.T) {
	c := newCluster(t)
	topic := c.topic(t, "nack")
	for i := range 5 {
		c.produce(t, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("same-key"), Value: []byte(fmt.Sprint(i))})
	}
	group := "g-" + random()
	src := build(t, quietEnv("nack"), c.fields(topic, map[string]any{"group": group}))
	connect(t, src)
	ctx := context.Background()
	a, b, cc := read(t, src), read(t, src), read(t, src)
	_ = a.Ack(ctx, nil)
	_ = b.Ack(ctx, fmt.Errorf("refused"))
	_ = cc.Ack(ctx, nil) // after a refusal: must not be committed
	again := read(t, src)
	if again.Event.GetId() != b.Event.GetId() {
		t.Fatalf("after a nack got %s, want %s", again.Event.GetId(), b.Event.GetId())
	}
	_ = again.Ack(ctx, nil)
	seen := []string{again.Event.GetId()}
	for range 3 {
		m := read(t, src)
		seen = append(seen, m.Event.GetId())
		_ = m.Ack(ctx, nil)
	}
	want := []string{b.Event.GetId(), cc.Event.GetId(), topic + "-0-3", topic + "-0-4"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("read %v, want %v", seen, want)
	}
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
	offs, err := c.adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup(topic, 0); o.At != 5 {
		t.Fatalf("committed offset %d, want 5", o.At)
	}
}

// TestCommitsOnlyAcked: what was read but not acknowledged is not committed:
// a new member of the group reads it again.
func TestCommitsOnlyAcked(t *testing.T) {
	c := newCluster(t)
	topic := c.topic(t, "partial")
	for i := range 4 {
		c.produce(t, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprint(i))})
	}
	group := "g-" + random()
	ctx := context.Background()
	first := build(t, quietEnv("partial"), c.fields(topic, map[string]any{"group": group}))
	connect(t, first)
	_ = read(t, first).Ack(ctx, nil)
	_ = read(t, first) // never answered (a crash would leave it so)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	second := build(t, quietEnv("partial"), c.fields(topic, map[string]any{"group": group}))
	connect(t, second)
	if m := read(t, second); m.Event.GetId() != topic+"-0-1" {
		t.Fatalf("second member starts at %s, want %s-0-1", m.Event.GetId(), topic)
	}
}

func TestStartLatest(t *testing.T) {
	c := newCluster(t)
	topic := c.topic(t, "latest")
	c.produce(t, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("old")})
	src := build(t, quietEnv("latest"), c.fields(topic, map[string]any{"start": "latest"}))
	connect(t, src)
	// The group is joined on the first poll: keep producing until the new
	// record is seen, and check the old one never is.
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				_ = c.prod.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: 0, Value: []byte("new")}).FirstErr()
			}
		}
	}()
	m := read(t, src)
	close(done)
	if m.Event.GetTextData() != "new" {
		t.Fatalf("got %v, want a new record", m.Event)
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

// BenchmarkIngest measures records/s from an in-process kfake cluster into
// a real Switchyard router.
func BenchmarkIngest(b *testing.B) {
	c := newCluster(b)
	topic := c.topic(b, "bench")
	payload := []byte(`{"payload":"` + strings.Repeat("x", 200) + `"}`)
	for i := 0; i < b.N; i += 1000 {
		var recs []*kgo.Record
		for j := 0; j < min(1000, b.N-i); j++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(j % 3), Key: []byte(fmt.Sprint(j % 16)), Value: payload})
		}
		c.produce(b, recs...)
	}
	sink := &countingSink{Sink: connectortest.RouterSink(b)}
	src := build(b, quietEnv("bench"), c.fields(topic, nil))
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
