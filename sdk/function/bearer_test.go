package function

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// A function served with RequireBearer answers UNAUTHENTICATED to calls
// (unary and InvokeStream) without one of its tokens, runs the handler for
// calls with one, and keeps the health service open.
func TestRequireBearer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan string, 16)
	h := func(_ context.Context, ev event.Event) (Result, error) {
		handled <- ev.ID()
		return Result{}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, lis, h, RequireBearer("old-token", "new-token")...) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := functionv1.NewFunctionServiceClient(conn)

	with := func(v ...string) context.Context {
		c := callCtx(t)
		for _, s := range v {
			c = metadata.AppendToOutgoingContext(c, "authorization", s)
		}
		return c
	}
	for _, bad := range [][]string{nil, {"Bearer wrong"}, {"Basic old-token"}, {"Bearer "}, {"old-token"}, {"Bearer old-token x"}, {"Bearer old-toke"}, {"Bearer old-tokenn"}} {
		_, err := client.Invoke(with(bad...), &functionv1.InvokeRequest{Event: pbEvent("x")})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("%q: want UNAUTHENTICATED, got %v", bad, err)
		}
		st, err := client.InvokeStream(with(bad...))
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("stream %q: want UNAUTHENTICATED, got %v", bad, err)
		}
	}
	for i, good := range [][]string{{"Bearer old-token"}, {"bearer new-token"}, {"Bearer  new-token"}, {"Basic x", "Bearer new-token"}} {
		id := "ok-" + string(rune('a'+i))
		if _, err := client.Invoke(with(good...), &functionv1.InvokeRequest{Event: pbEvent(id)}); err != nil {
			t.Fatalf("%q: %v", good, err)
		}
		if got := <-handled; got != id {
			t.Fatalf("handled %s, want %s", got, id)
		}
	}
	st, err := client.InvokeStream(with("Bearer new-token"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&functionv1.InvokeStreamRequest{Calls: []*functionv1.StreamCall{{Call: 1, Kind: &functionv1.StreamCall_Invoke{Invoke: &functionv1.InvokeRequest{Event: pbEvent("s-1")}}}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil || len(resp.GetAnswers()) != 1 || resp.GetAnswers()[0].GetCode() != 0 {
		t.Fatalf("stream answer %v, %v", resp, err)
	}
	if got := <-handled; got != "s-1" {
		t.Fatalf("handled %s", got)
	}
	hc, err := healthpb.NewHealthClient(conn).Check(callCtx(t), &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health without a token: %v %v", hc, err)
	}
}

func TestRequireBearerPanics(t *testing.T) {
	for _, tokens := range [][]string{nil, {""}, {"a", ""}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("RequireBearer(%q) did not panic", tokens)
				}
			}()
			RequireBearer(tokens...)
		}()
	}
}

// FuzzBearerToken: a token is returned only for the Bearer scheme, is never
// empty and holds no blank, and "Bearer " + token gives it back.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc", "Basic abc", "Bearer", "Bearer ", "Bearer a b", "BEARER x\t", "Bearerx y", " Bearer x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, ok := bearerToken(v)
		if !ok {
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") {
			t.Fatalf("%q gave token %q", v, tok)
		}
		if !strings.EqualFold(v[:6], "bearer") {
			t.Fatalf("%q is not the Bearer scheme", v)
		}
		if again, ok := bearerToken("Bearer " + tok); !ok || again != tok {
			t.Fatalf("round trip of %q: %q %v", tok, again, ok)
		}
	})
}
