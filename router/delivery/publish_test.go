package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/connectors"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/targets"
)

// fakeKind is a target kind whose publishers record what happens to them.
type fakeKind struct {
	mu      sync.Mutex
	built   []*fakePublisher
	failure error // Publish returns it when set
}

type fakePublisher struct {
	password  string
	published atomic.Int64
	closed    atomic.Bool
	k         *fakeKind
}

func (p *fakePublisher) Publish(context.Context, *pb.CloudEvent) error {
	p.published.Add(1)
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	return p.k.failure
}

func (p *fakePublisher) Close() error { p.closed.Store(true); return nil }

var fake = &fakeKind{}

func init() {
	targets.MustRegister(targets.Spec{
		Kind: "fake_test", Summary: "test", Layout: "test", Confirms: "test",
		Fields: []connectors.Field{
			{Name: "addr", Type: connectors.TypeString, Required: true, Doc: "address"},
			{Name: "password_secret", Type: connectors.TypeSecretName, Doc: "password"},
		},
		Addresses: func(c targets.Config) []targets.Address {
			return []targets.Address{{Field: "addr", HostPort: c.String("addr")}}
		},
		Display: func(c targets.Config) string { return "fake://" + c.String("addr") },
		New: func(_ context.Context, c targets.Config, env targets.Env) (targets.Publisher, error) {
			p := &fakePublisher{k: fake}
			if n := c.String("password_secret"); n != "" {
				v, err := env.Secret(n)
				if err != nil {
					return nil, err
				}
				p.password = v
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			fake.built = append(fake.built, p)
			return p, nil
		},
	})
}

func (k *fakeKind) reset(failure error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.built, k.failure = nil, failure
}

func (k *fakeKind) publishers() []*fakePublisher {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*fakePublisher(nil), k.built...)
}

type secretVals struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *secretVals) Lookup(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	if !ok {
		return nil, errors.New("no such secret")
	}
	return []byte(v), nil
}

func (s *secretVals) set(name, v string) { s.mu.Lock(); s.m[name] = v; s.mu.Unlock() }

func publishAttempt(trigger string, p *Publish) *Attempt {
	return &Attempt{Trigger: trigger, Timeout: time.Second, Endpoint: &Endpoint{Publish: p},
		Event: &pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: "t"}}
}

// TestPublishersSharedAndClosedWhenUnused: triggers aimed at the same kind,
// fields and secret share one publisher; it closes once neither uses it; a
// rotated secret makes a new one and the old one closes.
func TestPublishersSharedAndClosedWhenUnused(t *testing.T) {
	fake.reset(nil)
	sec := &secretVals{m: map[string]string{"pw": "first-password"}}
	tg := NewTargets(TargetsConfig{Outbound: Outbound{Secrets: sec}})
	tg.secretTTL = 0 // every attempt looks the secret up again
	defer tg.Close()
	shared := NewPublish("fake_test", map[string]any{"addr": "b:1", "password_secret": "pw"})
	require.NoError(t, shared.Err)
	other := NewPublish("fake_test", map[string]any{"addr": "b:2"})

	ctx := context.Background()
	for _, trig := range []string{"a", "b"} {
		r := tg.Invoke(ctx, publishAttempt(trig, NewPublish("fake_test", map[string]any{"addr": "b:1", "password_secret": "pw"})))
		require.Equal(t, Ack, r.Verdict, "%+v", r)
	}
	require.Equal(t, Ack, tg.Invoke(ctx, publishAttempt("c", other)).Verdict)
	pubs := fake.publishers()
	require.Len(t, pubs, 2, "one publisher per kind and fields")
	require.EqualValues(t, 2, pubs[0].published.Load())
	require.Equal(t, "first-password", pubs[0].password)

	tg.ForgetTrigger("a", true)
	require.False(t, pubs[0].closed.Load(), "b still uses it")
	tg.ForgetTrigger("b", true)
	require.Eventually(t, pubs[0].closed.Load, 5*time.Second, time.Millisecond, "closed once no trigger uses it")
	require.False(t, pubs[1].closed.Load())

	// A deleted trigger's late attempt does not keep a publisher open.
	require.Equal(t, Ack, tg.Invoke(ctx, publishAttempt("a", shared)).Verdict)
	pubs = fake.publishers()
	require.Len(t, pubs, 3)
	require.Eventually(t, pubs[2].closed.Load, 5*time.Second, time.Millisecond)
	// Created again under its name, it keeps its publisher.
	tg.ForgetTrigger("a", false)
	require.Equal(t, Ack, tg.Invoke(ctx, publishAttempt("a", shared)).Verdict)
	pubs = fake.publishers()
	require.Len(t, pubs, 4)
	require.False(t, pubs[3].closed.Load())

	// A rotated secret: a new publisher with the new value; the old one
	// closes as its trigger moved on.
	sec.set("pw", "second-password")
	require.Equal(t, Ack, tg.Invoke(ctx, publishAttempt("a", shared)).Verdict)
	pubs = fake.publishers()
	require.Len(t, pubs, 5)
	require.Equal(t, "second-password", pubs[4].password)
	require.Eventually(t, pubs[3].closed.Load, 5*time.Second, time.Millisecond)

	require.NoError(t, tg.Close())
	for _, p := range fake.publishers() {
		require.True(t, p.closed.Load())
	}
}

// TestPublishFailuresClassifiedAndScrubbed: each failure class gets its
// verdict and code, and the secret's value never reaches the message.
func TestPublishFailuresClassifiedAndScrubbed(t *testing.T) {
	sec := &secretVals{m: map[string]string{"pw": "hunter2-secret"}}
	tg := NewTargets(TargetsConfig{Outbound: Outbound{Secrets: sec}})
	defer tg.Close()
	p := NewPublish("fake_test", map[string]any{"addr": "b:1", "password_secret": "pw"})
	cases := map[string]struct {
		err     error
		verdict Verdict
		code    string
		health  bool
	}{
		"unreachable":  {targets.Failf(targets.Unreachable, "dial: refused, password hunter2-secret"), Retry, "BROKER_UNREACHABLE", true},
		"unauthorized": {targets.Failf(targets.Unauthorized, "auth failed for hunter2-secret"), DeadNow, "BROKER_UNAUTHORIZED", true},
		"not found":    {targets.Failf(targets.NotFound, "no exchange"), DeadNow, "BROKER_NOT_FOUND", true},
		"rejected":     {targets.Failf(targets.Rejected, "constraint"), DeadNow, "BROKER_REJECTED", false},
		"duplicate":    {targets.Failf(targets.Duplicate, "exists"), Ack, "BROKER_DUPLICATE", false},
		"plain error":  {errors.New("something"), Retry, "BROKER_UNAVAILABLE", true},
		"deadline":     {fmt.Errorf("wrapped: %w", context.DeadlineExceeded), Retry, "BROKER_TIMEOUT", true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fake.reset(tc.err)
			r := tg.Invoke(context.Background(), publishAttempt("x", p))
			require.Equal(t, tc.verdict, r.Verdict)
			require.Equal(t, tc.code, r.Code)
			require.Equal(t, tc.health, r.Health)
			require.NotContains(t, r.Message, "hunter2-secret")
			if r.Verdict == DeadNow {
				require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, r.Reason)
			}
		})
	}
}

// TestPublishMisconfigured: a kind this program lacks, a missing secret and
// a plaintext target on a server requiring TLS.
func TestPublishMisconfigured(t *testing.T) {
	tg := NewTargets(TargetsConfig{Outbound: Outbound{Secrets: &secretVals{m: map[string]string{}}}})
	defer tg.Close()
	r := tg.Invoke(context.Background(), publishAttempt("x", NewPublish("no_such_kind", nil)))
	require.Equal(t, Retry, r.Verdict)
	require.Equal(t, "TARGET_MISCONFIGURED", r.Code)
	r = tg.Invoke(context.Background(), publishAttempt("x", NewPublish("fake_test", map[string]any{"addr": "b:1", "password_secret": "absent"})))
	require.Equal(t, Retry, r.Verdict)
	require.Equal(t, "SECRET_UNAVAILABLE", r.Code)
	tls := NewTargets(TargetsConfig{Outbound: Outbound{RequireTLS: true}})
	defer tls.Close()
	r = tls.Invoke(context.Background(), publishAttempt("x", NewPublish("fake_test", map[string]any{"addr": "b:1"})))
	require.Equal(t, DeadNow, r.Verdict)
	require.Equal(t, "TARGET_FORBIDDEN", r.Code)
}
