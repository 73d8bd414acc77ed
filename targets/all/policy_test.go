package all_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/targets"
)

// gate is a target kind for these tests: its publishes wait at a gate and
// fail while the broker is "down".
var gate = &gateKind{release: make(chan struct{})}

type gateKind struct {
	inflight, peak, published atomic.Int64
	down                      atomic.Bool
	mu                        sync.Mutex
	release                   chan struct{}
}

func (g *gateKind) Publish(ctx context.Context, _ *pb.CloudEvent) error {
	if g.down.Load() {
		return targets.Failf(targets.Unreachable, "connection refused")
	}
	n := g.inflight.Add(1)
	defer g.inflight.Add(-1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	g.mu.Lock()
	ch := g.release
	g.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.published.Add(1)
	return nil
}

func (g *gateKind) Close() error { return nil }

func (g *gateKind) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.release)
}

func init() {
	targets.MustRegister(targets.Spec{
		Kind: "gate_test", Summary: "test", Layout: "test", Confirms: "test",
		Fields:    []connectors.Field{{Name: "name", Type: connectors.TypeString, Required: true, Doc: "name"}},
		Addresses: func(targets.Config) []targets.Address { return nil },
		Display:   func(c targets.Config) string { return "gate:" + c.String("name") },
		New:       func(context.Context, targets.Config, targets.Env) (targets.Publisher, error) { return gate, nil },
	})
}

// TestPolicyAppliesToBrokerTargets: max_concurrency bounds the publishes in
// flight, and consecutive unreachable-broker failures open the breaker,
// which closes once the broker answers again; every event is delivered.
func TestPolicyAppliesToBrokerTargets(t *testing.T) {
	in := startServer(t, nil)
	in.apply(t, `name: gated
filter: {attributes: {type: com.example.gate}}
target: {publish: {kind: gate_test, name: g}}
delivery: {max_concurrency: 2, timeout: 30s, initial_backoff: 20ms, max_backoff: 100ms, max_attempts: 1000}
`)
	post := func(prefix string, n int) {
		for i := range n {
			in.post(t, &pb.CloudEvent{Id: fmt.Sprintf("%s-%d", prefix, i), Source: "/g", SpecVersion: "1.0", Type: "com.example.gate"})
		}
	}
	post("c", 6)
	testenv.Eventually(t, 10*time.Second, func() bool { return gate.inflight.Load() == 2 }, "two publishes waiting at the gate")
	require.EqualValues(t, 2, in.stats(t, "gated").GetInFlight())
	gate.open()
	testenv.Eventually(t, 10*time.Second, func() bool { return in.stats(t, "gated").GetDelivered() == 6 }, "all delivered")
	require.EqualValues(t, 2, gate.peak.Load(), "never more than max_concurrency at once")

	gate.down.Store(true)
	post("b", 3)
	testenv.Eventually(t, 10*time.Second, func() bool {
		return in.stats(t, "gated").GetBreaker() == switchyardv1.BreakerState_BREAKER_STATE_OPEN
	}, "the breaker opens on consecutive unreachable failures")
	gate.down.Store(false)
	testenv.Eventually(t, 10*time.Second, func() bool { return in.stats(t, "gated").GetDelivered() == 9 }, "delivered once the broker is back")
	st := in.stats(t, "gated")
	require.Equal(t, switchyardv1.BreakerState_BREAKER_STATE_CLOSED, st.GetBreaker())
	require.EqualValues(t, 0, st.GetDeadLettered())
	require.EqualValues(t, 9, gate.published.Load())
}
