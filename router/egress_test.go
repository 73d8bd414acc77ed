package router

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/dlq"
	"github.com/switchyard-io/switchyard/internal/testdns"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// A trigger whose target name resolves to a denied address has its events
// dead-lettered at once (one attempt, reason TARGET_FORBIDDEN, no retry),
// nothing connects, and the dead letter shows the target redacted. A
// literal denied address is refused when applied, with its field path.
func TestForbiddenTargetIsDeadLetteredAtOnce(t *testing.T) {
	b := testenv.Embedded(t)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	dns := testdns.Start(t)
	dns.Set("fn.test", "127.0.0.2")
	g, err := egress.New(egress.Config{Resolver: dns.Resolver()})
	require.NoError(t, err)

	r, err := New(Config{Prefix: b.Prefix, Logger: slog.New(slog.DiscardHandler), Outbound: delivery.Outbound{Guard: g}}, b.Client, nil)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, r.Shutdown(sctx))
	})

	targets := map[string]trigger.Target{
		"to-grpc": {GRPC: "fn.test:" + port},
		"to-http": {URL: "http://fn.test:" + port + "/hook?token=s3cret-token"},
	}
	for name, target := range targets {
		spec := trigger.Spec{Name: name, Target: target, Filter: filter.Spec{Attributes: map[string]string{"type": name}},
			Delivery: trigger.Delivery{MaxAttempts: 5, InitialBackoff: trigger.Duration{Duration: 10 * time.Millisecond}}}
		_, err := trigger.CompileWith(spec, r.TriggerPolicy())
		require.NoError(t, err, "a name passes the apply-time check: it is checked when connecting")
		c, err := trigger.Compile(spec)
		require.NoError(t, err)
		_, _, err = r.PutTrigger(ctx, trigger.ToProto(c.Spec), store.PutApply, 0)
		require.NoError(t, err)
		_, err = r.Publish(ctx, []*pb.CloudEvent{{Id: "ev-" + name, Source: "/t", SpecVersion: "1.0", Type: name}})
		require.NoError(t, err)
	}
	for name, target := range targets {
		var entries []dlq.Entry
		testenv.Eventually(t, 10*time.Second, func() bool {
			entries, err = r.Store().ListDLQ(ctx, name, "-", 10)
			require.NoError(t, err)
			return len(entries) > 0
		}, "%s dead-lettered", name)
		require.Len(t, entries, 1)
		letter := &switchyardv1.DeadLetter{}
		require.NoError(t, proto.Unmarshal(entries[0].Letter, letter))
		require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_TARGET_FORBIDDEN, letter.GetReason(), name)
		require.Len(t, letter.GetAttempts(), 1, "%s: no retry", name)
		require.Equal(t, "TARGET_FORBIDDEN", letter.GetAttempts()[0].GetCode())
		require.Contains(t, letter.GetAttempts()[0].GetMessage(), `"fn.test" resolves only to loopback`)
		require.Equal(t, target.Redacted(), letter.GetTarget())
		require.NotContains(t, string(entries[0].Letter), "s3cret-token")
		require.NotContains(t, letter.GetReasonDetail(), "s3cret-token")
		qs, err := r.Store().Stats(ctx, name)
		require.NoError(t, err)
		require.Equal(t, "0", orZero(qs.Counters["cb_fail"]), "%s: a refusal does not count against the breaker", name)
	}

	// A literal denied address never gets that far.
	for _, target := range []trigger.Target{{GRPC: "127.0.0.2:" + port}, {URL: "http://[::ffff:127.0.0.2]:" + port + "/x"}, {URL: "http://169.254.169.254/latest/meta-data"}} {
		_, err := trigger.CompileWith(trigger.Spec{Name: "literal", Target: target}, r.TriggerPolicy())
		var fe trigger.FieldErrors
		require.True(t, errors.As(err, &fe), "%v: %v", target, err)
		path := "target.url"
		if target.GRPC != "" {
			path = "target.grpc"
		}
		require.Equal(t, path, fe[0].Path)
		require.True(t, strings.Contains(fe[0].Msg, "loopback") || strings.Contains(fe[0].Msg, "link-local"), fe[0].Msg)
	}
	// Proof that nothing connected: one plain connection is the first one
	// the listener sees.
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_ = c.Close()
	testenv.Eventually(t, 5*time.Second, func() bool { return accepted.Load() >= 1 }, "the probe connection")
	require.EqualValues(t, 1, accepted.Load())
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// The policy the router gives the API: secrets it does not hold and TLS
// files that do not load are refused with their paths; without an
// Outbound configuration, everything valid passes.
func TestTriggerPolicy(t *testing.T) {
	b := testenv.Embedded(t)
	r, err := New(Config{Prefix: b.Prefix}, b.Client, &fakeInvoker{})
	require.NoError(t, err)
	p := r.TriggerPolicy()
	spec := trigger.Spec{Name: "a", Target: trigger.Target{GRPC: "grpcs://169.254.169.254:443",
		TLS: &trigger.TargetTLS{CAFile: "/nonexistent/ca.pem"}, Auth: &trigger.TargetAuth{BearerSecret: "tok"}}}
	var fe trigger.FieldErrors
	require.True(t, errors.As(spec.ValidateWith(p), &fe))
	paths := map[string]string{}
	for _, f := range fe {
		paths[f.Path] = f.Msg
	}
	require.Contains(t, paths["target.tls"], "/nonexistent/ca.pem")
	require.Contains(t, paths["target.auth.bearer_secret"], "holds no secrets")
	require.NotContains(t, paths, "target.grpc", "no guard configured: addresses pass")
	plain := trigger.Spec{Name: "b", Target: trigger.Target{GRPC: "127.0.0.1:1"}}
	require.NoError(t, plain.ValidateWith(p))
}
