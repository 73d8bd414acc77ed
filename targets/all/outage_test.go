package all_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/server"
)

// The outage tests stop the broker while a trigger publishes to it: the
// attempts fail and are retried (the breaker holds the queue), and once the
// broker is back every accepted event reaches it; nothing is dead-lettered.

// outage publishes a batch, runs down, publishes another batch while the
// broker is down, waits for a failed attempt, runs up, and waits until the
// broker holds every event (have lists the ids it holds).
func outage(t *testing.T, in *instance, down, up func(), have func() []string) {
	t.Helper()
	var want []string
	batch := func(name string) {
		for i := range 5 {
			ev := &pb.CloudEvent{Id: fmt.Sprintf("%s-%d", name, i), Source: "/outage", SpecVersion: "1.0", Type: "com.example.outage",
				Data: &pb.CloudEvent_TextData{TextData: `{"n":` + strconv.Itoa(i) + `}`}}
			in.post(t, ev)
			want = append(want, ev.GetId())
		}
	}
	batch("before")
	testenv.Eventually(t, 30*time.Second, func() bool { return len(have()) == 5 }, "first batch at the broker")
	down()
	batch("during")
	testenv.Eventually(t, 30*time.Second, func() bool { return in.stats(t, "out").GetFailedAttempts() > 0 }, "an attempt failed while the broker was down")
	up()
	sort.Strings(want)
	var got []string
	t.Cleanup(func() {
		if t.Failed() { // say why: the attempts of what was dead-lettered
			for _, dl := range in.deadLetters(t, "out") {
				t.Logf("dead letter %s: %s %v", dl.GetEvent().GetId(), dl.GetReason(), dl.GetAttempts()[len(dl.GetAttempts())-1])
			}
		}
	})
	testenv.Eventually(t, 60*time.Second, func() bool {
		got = have()
		return len(got) >= len(want)
	}, "every event at the broker")
	require.Equal(t, want, dedup(got))
	st := in.stats(t, "out")
	require.EqualValues(t, 0, st.GetDeadLettered(), "nothing dead-lettered")
	require.Empty(t, in.deadLetters(t, "out"))
}

func (in *instance) stats(t *testing.T, name string) *switchyardv1.TriggerStats {
	t.Helper()
	res, err := in.client.Triggers().GetTriggerStats(context.Background(), &switchyardv1.GetTriggerStatsRequest{Name: name})
	require.NoError(t, err)
	return res.GetStats()[0]
}

func dedup(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func outageTrigger(target string) string {
	return `name: out
filter: {attributes: {type: com.example.outage}}
target:
  publish: ` + target + `
delivery: {timeout: 2s, initial_backoff: 50ms, max_backoff: 300ms, max_attempts: 1000}
`
}

func TestRedisStoppedMidRunLosesNothing(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	const password = "s3cret-redis-pw"
	rd := &process{t: t, name: "redis-server", args: []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--requirepass", password}}
	rd.start()
	t.Cleanup(rd.kill)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Password: password, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	testenv.Eventually(t, 10*time.Second, func() bool { return c.Ping(context.Background()).Err() == nil }, "private redis up")

	in := startServer(t, func(c *server.Config) { c.Router.Outbound.Secrets = secretMap{"redis-pw": password} })
	in.apply(t, outageTrigger(fmt.Sprintf(`{kind: redis_streams, url: "redis://127.0.0.1:%d/0", password_secret: redis-pw, stream: orders}`, port)))
	have := func() []string {
		entries, err := c.XRange(context.Background(), "orders", "-", "+").Result()
		if err != nil {
			return nil
		}
		var out []string
		for _, e := range entries {
			out = append(out, fmt.Sprint(e.Values["ce_id"]))
		}
		return out
	}
	outage(t, in, rd.kill, func() {
		rd.start()
		testenv.Eventually(t, 10*time.Second, func() bool { return c.Ping(context.Background()).Err() == nil }, "private redis back")
	}, have)
}

func TestNATSStoppedMidRunLosesNothing(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ns := &process{t: t, name: "nats-server", args: []string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", dir}}
	ns.start()
	t.Cleanup(ns.kill)
	waitNATS := func() {
		testenv.Eventually(t, 15*time.Second, func() bool {
			js, nc, err := jetStreamErr(url)
			if err != nil {
				return false
			}
			defer nc.Close()
			_, err = js.AccountInfo(context.Background())
			return err == nil
		}, "private nats-server up")
	}
	waitNATS()
	createStream(t, url, "ORDERS", "orders.>")
	in := startServer(t, nil)
	in.apply(t, outageTrigger(fmt.Sprintf(`{kind: nats_jetstream, url: %q, subject: orders.created, ack_wait: 1s}`, url)))
	have := func() []string {
		js, nc, err := jetStreamErr(url)
		if err != nil {
			return nil
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "ORDERS")
		if err != nil {
			return nil
		}
		var out []string
		for seq := uint64(1); ; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				return out
			}
			out = append(out, m.Header.Get("ce-id"))
		}
	}
	outage(t, in, ns.kill, func() { ns.start(); waitNATS() }, have)
	// Retries of events JetStream had stored were dropped as duplicates.
	js, nc := jetStream(t, url)
	defer nc.Close()
	s, err := js.Stream(context.Background(), "ORDERS")
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 10, info.State.Msgs)
}

func TestRabbitMQCutOffMidRunLosesNothing(t *testing.T) {
	ex, queue := "sy-out-"+suffix(), "sy-out-"+suffix()
	declareExchange(t, ex)
	conn, err := amqp091.Dial("amqp://guest:guest@127.0.0.1:5672/")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare(queue, false, true, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(queue, "k", ex, false, nil))
	var mu sync.Mutex
	var got []string
	have := func() []string {
		mu.Lock()
		defer mu.Unlock()
		for {
			m, ok, err := ch.Get(queue, true)
			if err != nil || !ok {
				break
			}
			got = append(got, fmt.Sprint(m.Headers["cloudEvents:id"]))
		}
		return append([]string(nil), got...)
	}
	px := startProxy(t, "127.0.0.1:5672")
	in := startServer(t, nil)
	in.apply(t, outageTrigger(fmt.Sprintf(`{kind: amqp, url: "amqp://%s/", exchange: %q, routing_key: k}`, px.addr(), ex)))
	outage(t, in, px.cut, px.restore, have)
}

// proxy forwards loopback TCP connections to a broker until cut: then it
// closes every connection and refuses new ones, as a broker that went away
// would, without touching the shared broker.
type proxy struct {
	lis    net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{lis: lis, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { _ = lis.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[b] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, b)
		go p.pipe(b, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
