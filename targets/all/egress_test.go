package all_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/server"
)

// loopbackName resolves every name to 127.0.0.1, as a name an attacker
// points at the server's own network would.
type loopbackName struct{}

func (loopbackName) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// TestEgressGuardCoversBrokerTargets: with the egress guard on, a literal
// loopback broker address is refused when the trigger is applied, with the
// field's path; a name that resolves to loopback is refused when the
// publisher dials, for every kind, and the event is dead-lettered as
// TARGET_FORBIDDEN without anything connecting.
func TestEgressGuardCoversBrokerTargets(t *testing.T) {
	guard, err := egress.New(egress.Config{Resolver: loopbackName{}})
	require.NoError(t, err)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	_, kport, _ := splitPort(kc.ListenAddrs()[0])

	in := startServer(t, func(c *server.Config) { c.Router.Outbound.Guard = guard })
	specs, err := trigger.Parse([]byte(`name: literal
target: {publish: {kind: redis_streams, url: "redis://127.0.0.1:6379/0", stream: s}}`))
	require.NoError(t, err)
	_, err = in.client.ApplyTrigger(context.Background(), trigger.ToProto(specs[0]))
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), "target.publish.url")

	cases := map[string]string{
		"amqp":           `{kind: amqp, url: "amqp://broker.test:5672/", exchange: x}`,
		"nats_jetstream": `{kind: nats_jetstream, url: "nats://broker.test:4222", subject: a.b}`,
		"redis_streams":  `{kind: redis_streams, url: "redis://broker.test:6379/0", stream: s}`,
		"sql":            `{kind: sql, dialect: postgres, addr: "broker.test:5432", database: test, user: postgres, table: t}`,
		"kafka":          fmt.Sprintf(`{kind: kafka, brokers: ["broker.test:%s"], topic: t}`, kport),
	}
	for kind, target := range cases {
		t.Run(kind, func(t *testing.T) {
			name := "guarded-" + strings.ReplaceAll(kind, "_", "-")
			in.apply(t, fmt.Sprintf("name: %s\nfilter: {attributes: {type: com.example.%s}}\ntarget:\n  publish: %s\ndelivery: {timeout: 3s, max_attempts: 5, initial_backoff: 50ms, max_backoff: 100ms}\n", name, kind, target))
			in.post(t, &pb.CloudEvent{Id: "g-1", Source: "/g", SpecVersion: "1.0", Type: "com.example." + kind})
			var dls []*switchyardv1.DeadLetter
			testenv.Eventually(t, 30*time.Second, func() bool {
				dls = in.deadLetters(t, name)
				return len(dls) == 1
			}, "dead-lettered")
			require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_TARGET_FORBIDDEN, dls[0].GetReason())
			require.Len(t, dls[0].GetAttempts(), 1)
			require.Contains(t, dls[0].GetAttempts()[0].GetMessage(), `"broker.test" resolves only to loopback`)
		})
	}
}

func splitPort(hp string) (string, string, error) {
	ap, err := netip.ParseAddrPort(hp)
	if err != nil {
		return "", "", err
	}
	return ap.Addr().String(), fmt.Sprint(ap.Port()), nil
}
