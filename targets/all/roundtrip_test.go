package all_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/internal/dbtest"
)

// The round trips: events POSTed to one server go out through a publish
// target, and a second server reads them back with the source connector of
// the same system; the events it receives must carry every attribute and
// the data of those published, byte for byte.

// publisher starts the server with the publish target.
func publisher(t *testing.T, target string) *instance {
	t.Helper()
	in := startServer(t, nil)
	in.apply(t, `name: out
filter: {attributes: {type: com.example.roundtrip}}
target:
  publish: `+target+`
delivery: {initial_backoff: 50ms, max_backoff: 500ms, max_attempts: 1000}
`)
	return in
}

func fromSink(s *sink) func(string) (map[string]string, bool) {
	return func(id string) (map[string]string, bool) {
		ev, ok := s.get(id)
		if !ok {
			return nil, false
		}
		return canon(ev), true
	}
}

func TestRoundTripAMQP(t *testing.T) {
	ex, queue := "sy-rt-"+suffix(), "sy-rt-"+suffix()
	declareExchange(t, ex)
	_, s := reader(t, "amqp", map[string]any{"queue": queue, "declare": true, "bindings": []any{ex + ":order.created"}})
	out := publisher(t, fmt.Sprintf(`{kind: amqp, exchange: %q, routing_key: order.created}`, ex))
	sent := roundTripEvents("amqp-" + suffix())
	for _, ev := range sent {
		out.post(t, ev)
	}
	requireSame(t, sent, fromSink(s))
}

func TestRoundTripNATSJetStream(t *testing.T) {
	stream, subj := "SYRT_"+suffix(), "syrt."+suffix()
	createStream(t, "nats://127.0.0.1:4222", stream, subj+".>")
	_, s := reader(t, "nats_jetstream", map[string]any{"stream": stream})
	out := publisher(t, fmt.Sprintf(`{kind: nats_jetstream, subject: %q}`, subj+".orders"))
	sent := roundTripEvents("nats-" + suffix())
	for _, ev := range sent {
		out.post(t, ev)
	}
	requireSame(t, sent, fromSink(s))
}

func TestRoundTripRedisStreams(t *testing.T) {
	stream := "sy-rt-" + suffix()
	_, s := reader(t, "redis_streams", map[string]any{"stream": stream, "url": "redis://127.0.0.1:6379/0"})
	out := publisher(t, fmt.Sprintf(`{kind: redis_streams, url: "redis://127.0.0.1:6379/0", stream: %q, maxlen: 1000}`, stream))
	sent := roundTripEvents("redis-" + suffix())
	for _, ev := range sent {
		out.post(t, ev)
	}
	requireSame(t, sent, fromSink(s))
}

func TestRoundTripKafka(t *testing.T) {
	topic := "sy-rt-" + suffix()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	_, s := reader(t, "kafka", map[string]any{"brokers": []any{brokers[0]}, "topics": []any{topic}})
	out := publisher(t, fmt.Sprintf(`{kind: kafka, brokers: [%q], topic: %q}`, brokers[0], topic))
	sent := roundTripEvents("kafka-" + suffix())
	for _, ev := range sent {
		out.post(t, ev)
	}
	requireSame(t, sent, fromSink(s))
}

// fromRows reads events back from row-change events of the postgres and
// mysql sources: the row's columns are in data.new.
func fromRows(s *sink) func(string) (map[string]string, bool) {
	return func(id string) (map[string]string, bool) {
		for _, ev := range s.all() {
			var change struct {
				New map[string]any `json:"new"`
			}
			if err := json.Unmarshal(cloudevent.Data(ev), &change); err != nil || change.New["id"] != id {
				continue
			}
			return rowEvent(change.New), true
		}
		return nil, false
	}
}

// rowEvent rebuilds the canonical form of an event from its row: the
// attributes JSON (embedded as JSON, or as text where the server keeps
// JSON as text), datacontenttype, and the data (base64).
func rowEvent(row map[string]any) map[string]string {
	out := map[string]string{}
	attrs, _ := row["attributes"].(map[string]any)
	if s, ok := row["attributes"].(string); ok {
		_ = json.Unmarshal([]byte(s), &attrs)
	}
	for k, v := range attrs {
		out[k] = fmt.Sprint(v)
	}
	if ct, ok := row["datacontenttype"].(string); ok {
		out["datacontenttype"] = ct
	}
	if d, ok := row["data"].(string); ok {
		b, err := base64.StdEncoding.DecodeString(d)
		if err == nil && len(b) > 0 {
			out["(data)"] = base64.StdEncoding.EncodeToString(b)
		}
	}
	return out
}

func TestRoundTripPostgres(t *testing.T) {
	p := privatePostgres(t)
	table := "events_" + suffix()
	// The source's publication names the table, so it exists first, with
	// the layout the target writes (create_table makes it the same way).
	require.NoError(t, p.Exec("postgres", "CREATE TABLE IF NOT EXISTS public."+table+" (source text NOT NULL, id text NOT NULL, type text NOT NULL, specversion text NOT NULL, subject text, time timestamptz, datacontenttype text, dataschema text, attributes jsonb NOT NULL, data bytea, stored_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (source, id))"))
	slot := "sy_rt_" + suffix()
	_, s := reader(t, "postgres", map[string]any{"dsn": p.DSN("postgres"), "slot": slot, "publication": slot, "tables": []any{"public." + table}})
	t.Cleanup(func() { _ = p.Exec("postgres", "SELECT pg_drop_replication_slot('"+slot+"')") })
	out := publisher(t, fmt.Sprintf(`{kind: sql, dialect: postgres, addr: "127.0.0.1:%d", database: postgres, user: postgres, table: %q, create_table: true}`, p.Port, table))
	sent := roundTripEvents("pg-" + suffix())
	for _, ev := range sent {
		out.post(t, ev)
	}
	requireSame(t, sent, fromRows(s))
	// The time column holds the time for queries, to the microsecond.
	conn, err := pgx.Connect(context.Background(), p.DSN("postgres"))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table+" WHERE time BETWEEN '2026-12-06T10:11:12.123456Z' AND '2026-12-06T10:11:12.123457Z'").Scan(&n))
	require.Equal(t, 1, n)
}

func TestRoundTripMariaDB(t *testing.T) {
	m := privateMariaDB(t)
	table := "events_" + suffix()
	_, s := reader(t, "mysql", map[string]any{"addr": m.Addr(), "user": dbtest.MariaDBUser, "password": dbtest.MariaDBPassword, "tables": []any{"test." + table}})
	out := publisher(t, fmt.Sprintf(`{kind: sql, dialect: mysql, addr: %q, database: test, user: %q, table: %q, create_table: true}`, m.Addr(), dbtest.MariaDBUser, table))
	sent := roundTripEvents("my-" + suffix())
	for _, ev := range sent {
		out.post(t, ev)
	}
	requireSame(t, sent, fromRows(s))
}

// declareExchange makes a direct exchange on the shared RabbitMQ.
func declareExchange(t *testing.T, name string) {
	t.Helper()
	conn, err := amqp091.Dial("amqp://guest:guest@127.0.0.1:5672/")
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDeclare(name, "direct", false, true, false, false, nil))
	t.Cleanup(func() {
		if c, err := amqp091.Dial("amqp://guest:guest@127.0.0.1:5672/"); err == nil {
			if ch, err := c.Channel(); err == nil {
				_ = ch.ExchangeDelete(name, false, false)
			}
			_ = c.Close()
		}
	})
}

// createStream makes a JetStream stream capturing subjects.
func createStream(t *testing.T, url, name string, subjects ...string) {
	t.Helper()
	js, nc := jetStream(t, url)
	defer nc.Close()
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	t.Cleanup(func() {
		if js, nc, err := jetStreamErr(url); err == nil {
			_ = js.DeleteStream(context.Background(), name)
			nc.Close()
		}
	})
}
