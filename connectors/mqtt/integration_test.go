package mqtt_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	mqttsrc "github.com/switchyard-io/switchyard/connectors/mqtt"
)

// brokerAddr is the real Mosquitto these tests use.
func brokerAddr() string {
	if a := os.Getenv("MQTT_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:1883"
}

func brokerURL() string { return "tcp://" + brokerAddr() }

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// publisher is an MQTT 3.1.1 client with a clean session that publishes
// with QoS 1 and waits for the broker's PUBACK.
type publisher struct {
	t testing.TB
	c paho.Client
}

func newPublisher(t testing.TB) *publisher {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(brokerURL()).SetClientID(randomName("sytest-pub-")).SetCleanSession(true).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("Mosquitto at %s is not reachable: %v", brokerAddr(), tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &publisher{t: t, c: c}
}

func (p *publisher) publish(topic string, retained bool, payloads ...[]byte) {
	p.t.Helper()
	if err := p.tryPublish(topic, retained, payloads...); err != nil {
		p.t.Fatal(err)
	}
}

// tryPublish is publish for other goroutines than the test's.
func (p *publisher) tryPublish(topic string, retained bool, payloads ...[]byte) error {
	toks := make([]paho.Token, len(payloads))
	for i, b := range payloads {
		toks[i] = p.c.Publish(topic, 1, retained, b)
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(30 * time.Second) {
			return fmt.Errorf("publish to %s: no PUBACK within 30s", topic)
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish to %s: %w", topic, err)
		}
	}
	return nil
}

// publish5 publishes one MQTT 5 message with properties.
func publish5(t testing.TB, topic string, payload []byte, props *paho5.PublishProperties) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", brokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	c := paho5.NewClient(paho5.ClientConfig{Conn: conn})
	if _, err := c.Connect(ctx, &paho5.Connect{ClientID: randomName("sytest-pub5-"), CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(&paho5.Disconnect{})
	if _, err := c.Publish(ctx, &paho5.Publish{Topic: topic, QoS: 1, Payload: payload, Properties: props}); err != nil {
		t.Fatal(err)
	}
}

// dropSession deletes the broker's persistent session of clientID (a clean
// MQTT 3.1.1 connection discards it), so tests leave nothing behind.
func dropSession(clientID string) {
	o := paho.NewClientOptions().AddBroker(brokerURL()).SetClientID(clientID).SetCleanSession(true).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(100)
	}
}

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "mqtt", env, fields)
}

func TestConformance(t *testing.T) {
	for _, version := range []int{4, 5} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			pub := newPublisher(t)
			prefix := randomName("sytest-mqtt-")
			var mu sync.Mutex
			sessions := map[string]bool{}
			seq := 0
			topicFor := func(name string) string { return prefix + "/" + name }
			connectortest.Run(t, connectortest.Harness{
				New: func(t *testing.T, env connectors.Env) connectors.Source {
					clientID := fmt.Sprintf("%s-v%d-%s", prefix, version, env.Name)
					src := build(t, env, map[string]any{"url": brokerURL(), "topics": []any{topicFor(env.Name)},
						"client_id": clientID, "protocol_version": version})
					mu.Lock()
					first := !sessions[env.Name]
					sessions[env.Name] = true
					mu.Unlock()
					if first {
						// Like any MQTT subscriber, the source receives what is
						// published after its session exists: create it (with
						// the source itself) before the suite produces.
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						if err := src.Connect(ctx); err != nil {
							t.Fatal(err)
						}
						_ = src.Close(ctx)
						t.Cleanup(func() { dropSession(clientID) })
					}
					return src
				},
				Produce: func(t *testing.T, name string, _ *connectortest.Mux, n int) {
					payloads := make([][]byte, n)
					for i := range payloads {
						mu.Lock()
						seq++
						payloads[i] = fmt.Appendf(nil, `{"n":%d}`, seq)
						mu.Unlock()
					}
					pub.publish(topicFor(name), false, payloads...)
				},
			})
		})
	}
}

// session is one source with its own client id and topic, for the tests
// below; the broker's session is dropped when the test ends.
type session struct {
	clientID, topic string
	cp              *connectortest.MemCheckpoints
}

func newSession(t *testing.T) *session {
	s := &session{clientID: randomName("sytest-mqtt-"), cp: &connectortest.MemCheckpoints{}}
	s.topic = s.clientID + "/t"
	t.Cleanup(func() { dropSession(s.clientID) })
	return s
}

func (s *session) source(t *testing.T, fields map[string]any) connectors.Source {
	f := map[string]any{"url": brokerURL(), "topics": []any{s.topic}, "client_id": s.clientID}
	for k, v := range fields {
		f[k] = v
	}
	return build(t, connectortest.Env("test", s.cp, nil), f)
}

func read(t *testing.T, ctx context.Context, src connectors.Source) *connectors.Message {
	t.Helper()
	m, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cloudevent.Validate(m.Event); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRefusalRedeliversOnReconnect drives the nack path as the Runner
// does: after a refusal Read reports the connection gone; after the
// reconnect the broker sends the refused message, and the one after it,
// again with the same ids.
func TestRefusalRedeliversOnReconnect(t *testing.T) {
	for _, version := range []int{4, 5} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			s := newSession(t)
			pub := newPublisher(t)
			src := s.source(t, map[string]any{"protocol_version": version})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := src.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			defer src.Close(ctx)
			pub.publish(s.topic, false, []byte("one"), []byte("two"), []byte("three"))
			one, two, three := read(t, ctx, src), read(t, ctx, src), read(t, ctx, src)
			if err := one.Ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if err := two.Ack(ctx, errors.New("refused")); err != nil {
				t.Fatal(err)
			}
			if err := three.Ack(ctx, errors.New("refused")); err != nil {
				t.Fatal(err)
			}
			if _, err := src.Read(ctx); !errors.Is(err, connectors.ErrNotConnected) {
				t.Fatalf("read after a refusal: %v, want ErrNotConnected", err)
			}
			_ = src.Close(ctx)
			if err := src.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for len(got) < 2 {
				m := read(t, ctx, src)
				got[m.Event.GetTextData()] = m.Event.Id
				if err := m.Ack(ctx, nil); err != nil {
					t.Fatal(err)
				}
			}
			if got["two"] != two.Event.Id || got["three"] != three.Event.Id {
				t.Fatalf("redelivered %v; want two=%s three=%s", got, two.Event.Id, three.Event.Id)
			}
			if _, ok := got["one"]; ok {
				t.Error("an acknowledged message came back")
			}
		})
	}
}

// TestRetainedNotResentOnReconnect: resuming a session whose subscriptions
// are unchanged does not subscribe again, so an MQTT 3.1.1 broker does not
// resend retained messages; a changed topic list unsubscribes what was
// removed.
func TestRetainedNotResentOnReconnect(t *testing.T) {
	s := newSession(t)
	pub := newPublisher(t)
	pub.publish(s.topic, true, []byte("retained"))
	t.Cleanup(func() { pub.publish(s.topic, true, nil) }) // clear it
	src := s.source(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	m := read(t, ctx, src)
	if m.Event.GetTextData() != "retained" {
		t.Fatalf("got %v", m.Event)
	}
	_ = m.Ack(ctx, nil)
	_ = src.Close(ctx)
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	short, c := context.WithTimeout(ctx, 300*time.Millisecond)
	defer c()
	if m, err := src.Read(short); err == nil {
		t.Fatalf("the retained message was sent again: %v", m.Event)
	}
	_ = src.Close(ctx)

	// Same session, another topic: the old one is unsubscribed.
	other := s.clientID + "/other"
	moved := build(t, connectortest.Env("test", s.cp, nil), map[string]any{"url": brokerURL(), "topics": []any{other}, "client_id": s.clientID})
	if err := moved.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer moved.Close(ctx)
	pub.publish(s.topic, false, []byte("old topic"))
	pub.publish(other, false, []byte("new topic"))
	m = read(t, ctx, moved)
	if m.Event.GetTextData() != "new topic" {
		t.Fatalf("got %q from a topic no longer configured", m.Event.GetTextData())
	}
	_ = m.Ack(ctx, nil)
}

// TestCloudEventsMQTT5 checks binary mode, structured mode and the id
// property over a real MQTT 5 connection.
func TestCloudEventsMQTT5(t *testing.T) {
	s := newSession(t)
	src := s.source(t, map[string]any{"protocol_version": 5, "id_property": "message-id", "type": "com.example.reading"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	publish5(t, s.topic, []byte(`{"b":1}`), &paho5.PublishProperties{ContentType: "application/json", User: paho5.UserProperties{
		{Key: "specversion", Value: "1.0"}, {Key: "id", Value: "ce-bin"}, {Key: "source", Value: "/bin"}, {Key: "type", Value: "bin.type"}, {Key: "myext", Value: "v"}}})
	publish5(t, s.topic, []byte(`{"specversion":"1.0","id":"ce-str","source":"/str","type":"str.type","data":[1]}`),
		&paho5.PublishProperties{ContentType: "application/cloudevents+json"})
	publish5(t, s.topic, []byte("21.5"), &paho5.PublishProperties{ContentType: "text/plain", User: paho5.UserProperties{{Key: "message-id", Value: "m-7"}}})
	bin, str, plain := read(t, ctx, src), read(t, ctx, src), read(t, ctx, src)
	if e := bin.Event; e.Id != "ce-bin" || e.Type != "bin.type" || e.Attributes["myext"].GetCeString() != "v" || e.GetTextData() != `{"b":1}` {
		t.Errorf("binary mode: %v", e)
	}
	if e := str.Event; e.Id != "ce-str" || e.GetTextData() != "[1]" {
		t.Errorf("structured mode: %v", e)
	}
	if e := plain.Event; e.Id != "m-7" || e.Type != "com.example.reading" || e.Attributes["subject"].GetCeString() != s.topic ||
		e.Attributes["datacontenttype"].GetCeString() != "text/plain" || e.GetTextData() != "21.5" {
		t.Errorf("wrapped: %v", e)
	}
	for _, m := range []*connectors.Message{bin, str, plain} {
		if err := m.Ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConnectFailure(t *testing.T) {
	for _, version := range []int{4, 5} {
		src := build(t, connectortest.Env("down", &connectortest.MemCheckpoints{}, nil),
			map[string]any{"url": "tcp://127.0.0.1:1", "topics": []any{"t"}, "client_id": "c", "protocol_version": version})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := src.Connect(ctx); err == nil {
			t.Errorf("v%d: connected to a closed port", version)
		}
		_ = src.Close(ctx)
		if _, err := src.Read(ctx); !errors.Is(err, connectors.ErrNotConnected) {
			t.Errorf("v%d: read without a connection: %v", version, err)
		}
		cancel()
	}
}

func TestConfigErrors(t *testing.T) {
	spec, _ := connectors.Default.Lookup(mqttsrc.Kind)
	ok := map[string]any{"topics": []any{"a/#"}, "client_id": "c"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"missing topics":       {with("topics", nil), "fields.topics: required"},
		"empty topics":         {with("topics", []any{}), "fields.topics"},
		"bad filter":           {with("topics", []any{"a/#/b"}), "fields.topics[0]"},
		"duplicate filter":     {with("topics", []any{"a", "a"}), "fields.topics[1]"},
		"missing client id":    {with("client_id", nil), "fields.client_id: required"},
		"empty client id":      {with("client_id", ""), "fields.client_id"},
		"qos 0":                {with("qos", 0), "fields.qos"},
		"qos 3":                {with("qos", 3), "fields.qos"},
		"version 3":            {with("protocol_version", 3), "fields.protocol_version"},
		"bad scheme":           {with("url", "http://h:1"), "fields.url"},
		"credentials in url":   {with("url", "tcp://u:secret@h:1883"), "fields.url"},
		"url with path":        {with("url", "tcp://h:1883/x"), "fields.url"},
		"fractional keepalive": {with("keep_alive", "1500ms"), "fields.keep_alive"},
		"zero session expiry":  {with("session_expiry", "0s"), "fields.session_expiry"},
		"bad duration":         {with("session_expiry", "forever"), "fields.session_expiry"},
		"max inflight 0":       {with("max_inflight", 0), "fields.max_inflight"},
		"bad content type":     {with("content_type", "json"), "fields.content_type"},
		"bad source":           {with("source", "a b"), "fields.source"},
		"empty type":           {with("type", ""), "fields.type"},
		"unknown field":        {with("clean_session", true), "fields.clean_session: unknown"},
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
			if strings.Contains(err.Error(), "secret") {
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

// BenchmarkIngest measures how fast messages published to Mosquitto are
// stored in Switchyard (real Redis) by a Runner. The publishers keep at
// most 800 messages ahead of the ingest, below Mosquitto's default
// max_queued_messages (1000) beyond which it drops QoS 1 messages.
func BenchmarkIngest(b *testing.B) {
	for _, version := range []int{4, 5} {
		b.Run(fmt.Sprintf("v%d", version), func(b *testing.B) {
			clientID := randomName("sytest-mqtt-bench-")
			topic := clientID + "/t"
			b.Cleanup(func() { dropSession(clientID) })
			fields := map[string]any{"url": brokerURL(), "topics": []any{topic}, "client_id": clientID, "protocol_version": version, "max_inflight": 500}
			cp := &connectortest.MemCheckpoints{}
			env := func(string) connectors.Env { return connectors.Env{Logger: discard(), Checkpoints: cp} }
			// Create the session first, so nothing published is missed.
			pre := build(b, env("bench"), fields)
			if err := pre.Connect(context.Background()); err != nil {
				b.Fatal(err)
			}
			_ = pre.Close(context.Background())
			// Two publishers: one QoS 1 publisher waiting for its PUBACKs is
			// slowed down by Mosquitto's Nagle-delayed acknowledgements and
			// would measure itself rather than the source.
			pubs := []*publisher{newPublisher(b), newPublisher(b)}
			payload := strings.Repeat("x", 200)
			sink := &countingSink{Sink: connectortest.RouterSink(b)}
			r, err := connectors.NewRunner(connectors.RunnerConfig{Logger: discard()}, connectors.Default, sink, env,
				[]connectors.SourceConfig{{Name: "bench", Kind: mqttsrc.Kind, Fields: fields}})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			r.Start()
			const window, chunk = 800, 200
			var reserved atomic.Int64
			var stop atomic.Bool
			var wg sync.WaitGroup
			pubErr := make(chan error, len(pubs))
			for _, pub := range pubs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						for !stop.Load() && reserved.Load()-sink.n.Load() > window-chunk {
							time.Sleep(200 * time.Microsecond)
						}
						if stop.Load() {
							return
						}
						end := reserved.Add(chunk)
						from := end - chunk
						if from >= int64(b.N) {
							return
						}
						msgs := make([][]byte, min(end, int64(b.N))-from)
						for i := range msgs {
							msgs[i] = fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, from+int64(i), payload)
						}
						if err := pub.tryPublish(topic, false, msgs...); err != nil {
							pubErr <- err
							stop.Store(true) // and the other publisher
							return
						}
					}
				}()
			}
			wg.Wait()
			select {
			case err := <-pubErr:
				b.Fatal(err)
			default:
			}
			deadline := time.Now().Add(time.Minute)
			for sink.n.Load() < int64(b.N) {
				if time.Now().After(deadline) {
					b.Fatalf("only %d of %d events arrived", sink.n.Load(), b.N)
				}
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_ = r.Stop(ctx)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}
