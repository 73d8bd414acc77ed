package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/server"
)

// TestShutdownTurnsUnreadyFirst: a shutdown turns /readyz and the gRPC
// health service unready at once, keeps serving requests for the shutdown
// delay, and only then closes the listeners.
func TestShutdownTurnsUnreadyFirst(t *testing.T) {
	b := testenv.Embedded(t)
	e := startServer(t, b, func(c *server.Config) { c.ShutdownDelay = 2 * time.Second })
	cc, err := grpc.NewClient(e.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	get := func() (int, string) {
		resp, err := http.Get(e.http + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	code, _ := get()
	require.Equal(t, http.StatusOK, code)

	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	testenv.Eventually(t, 5*time.Second, func() bool { c, _ := get(); return c == http.StatusServiceUnavailable }, "/readyz unready")
	unready := time.Since(start)
	// Still serving: ingest answers, the health service says NOT_SERVING.
	resp, err := http.Post(e.http+"/events", "application/cloudevents+json",
		strings.NewReader(`{"specversion":"1.0","id":"late","source":"/s","type":"t"}`))
	require.NoError(t, err, "the listener is open during the delay")
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	hr, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, hr.GetStatus())
	require.NoError(t, <-done)
	require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "the listeners closed after the delay")
	require.Less(t, unready, time.Second, "unready before the delay ran out")
	_, err = http.Get(e.http + "/readyz")
	require.Error(t, err, "closed after the delay")
}

// TestAckAfterReplicasWithoutReplica: with --ack-after replicas=1 on a
// Redis that has no replica, a publish is answered 503 with Retry-After
// (the replicas did not confirm), and its event is delivered all the same:
// the write stood, at least once holds.
func TestAckAfterReplicasWithoutReplica(t *testing.T) {
	b := testenv.Real(t)
	rec := &received{}
	fn := startFunction(t, recorder(rec))
	e := startServer(t, b, func(c *server.Config) {
		c.AckAfter = "replicas=1"
		c.Router.AckTimeout = 50 * time.Millisecond
	})
	e.apply(t, fmt.Sprintf("name: acks\nfilter: {attributes: {type: ack.test}}\ntarget: {grpc: %q}\n", fn))
	resp, err := http.Post(e.http+"/events", "application/cloudevents+json",
		strings.NewReader(`{"specversion":"1.0","id":"unconfirmed","source":"/s","type":"ack.test"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	testenv.Eventually(t, 10*time.Second, func() bool { _, _, ok := rec.byID("unconfirmed"); return ok }, "the unconfirmed event delivered")
}

// TestAckAfterNeedsRedis: the embedded store has no replicas to wait for.
func TestAckAfterNeedsRedis(t *testing.T) {
	err := server.Check(server.Config{AckAfter: "replicas=1"})
	require.ErrorContains(t, err, "embedded store has no replicas")
	require.ErrorContains(t, server.Check(server.Config{RedisURL: "redis://h:1", AckAfter: "replicas=x"}), "ack after")
	require.NoError(t, server.Check(server.Config{RedisURL: "redis://h:1", AckAfter: "replicas=2"}))
}
