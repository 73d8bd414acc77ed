package all_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/server"
)

// TestBrokerRefusalsAreDeadLetteredWithTheBrokersError: what a retry cannot
// fix (an unknown exchange, an unroutable message, a subject no stream
// captures, a refused password, a constraint, a missing table or topic) is
// dead-lettered at the first attempt, and the dead letter carries the
// broker's own message.
func TestBrokerRefusalsAreDeadLetteredWithTheBrokersError(t *testing.T) {
	unrouted := "sy-dl-" + suffix()
	declareExchange(t, unrouted)
	createStream(t, "nats://127.0.0.1:4222", "SYDL_"+suffix(), "sydl.captured")
	pgTable := "sy_dl_" + suffix()
	conn, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/test")
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), `CREATE TABLE `+pgTable+` (source text NOT NULL, id text NOT NULL, type text NOT NULL CHECK (type <> 'com.example.dl'), specversion text NOT NULL, subject text, time timestamptz, datacontenttype text, dataschema text, attributes jsonb NOT NULL, data bytea, PRIMARY KEY (source, id))`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgTable) })
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(kc.Close)

	cases := map[string]struct {
		target string
		code   string
		msg    string
	}{
		"amqp unknown exchange": {`{kind: amqp, exchange: no-such-exchange-` + suffix() + `}`, "BROKER_NOT_FOUND", "404 NOT_FOUND - no exchange"},
		"amqp unroutable":       {fmt.Sprintf(`{kind: amqp, exchange: %q, routing_key: nobody}`, unrouted), "BROKER_NOT_FOUND", "312 NO_ROUTE"},
		"nats no stream":        {`{kind: nats_jetstream, subject: sydl.nowhere}`, "BROKER_NOT_FOUND", `no JetStream stream captures subject "sydl.nowhere"`},
		"redis wrong password":  {`{kind: redis_streams, url: "redis://127.0.0.1:6379/0", user: nobody, password_secret: wrong, stream: s}`, "BROKER_UNAUTHORIZED", "WRONGPASS"},
		"postgres constraint": {fmt.Sprintf(`{kind: sql, dialect: postgres, addr: "127.0.0.1:5432", database: test, user: postgres, table: %q}`, pgTable),
			"BROKER_REJECTED", "SQLSTATE 23514"},
		"postgres no table": {`{kind: sql, dialect: postgres, addr: "127.0.0.1:5432", database: test, user: postgres, table: no_such_table}`,
			"BROKER_NOT_FOUND", "SQLSTATE 42P01"},
		"kafka unknown topic": {fmt.Sprintf(`{kind: kafka, brokers: [%q], topic: no-such-topic}`, kc.ListenAddrs()[0]), "BROKER_NOT_FOUND", "UNKNOWN_TOPIC_OR_PARTITION"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := startServer(t, func(c *server.Config) { c.Router.Outbound.Secrets = secretMap{"wrong": "not-the-password"} })
			in.apply(t, `name: dl
filter: {attributes: {type: com.example.dl}}
target:
  publish: `+tc.target+`
delivery: {timeout: 5s, initial_backoff: 50ms, max_backoff: 100ms, max_attempts: 5}
`)
			in.post(t, &pb.CloudEvent{Id: "dl-1", Source: "/dl", SpecVersion: "1.0", Type: "com.example.dl", Data: &pb.CloudEvent_TextData{TextData: "{}"}})
			var dls []*switchyardv1.DeadLetter
			testenv.Eventually(t, 30*time.Second, func() bool {
				dls = in.deadLetters(t, "dl")
				return len(dls) == 1
			}, "dead-lettered")
			atts := dls[0].GetAttempts()
			require.Len(t, atts, 1, "no retry: %v", atts)
			require.Equal(t, tc.code, atts[0].GetCode())
			require.Contains(t, atts[0].GetMessage(), tc.msg)
			require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, dls[0].GetReason())
			require.False(t, strings.Contains(atts[0].GetMessage(), "not-the-password"))
		})
	}
}
