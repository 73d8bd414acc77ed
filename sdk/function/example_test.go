package function_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// A function server as deployed: serve until SIGINT, then stop gracefully.
// A trigger delivers to it with the target {grpc: "host:8080"}.
func ExampleServe() {
	handler := func(ctx context.Context, ev event.Event) (function.Result, error) {
		info, _ := function.FromContext(ctx)
		log.Printf("attempt %d of %s for trigger %s", info.Attempt, ev.ID(), info.Trigger)

		var order struct {
			ID    string  `json:"id"`
			Total float64 `json:"total"`
		}
		if err := json.Unmarshal(ev.Data(), &order); err != nil {
			return function.Result{}, function.Dead(err) // never retry garbage
		}

		reply := event.New()
		reply.SetID(ev.ID() + "-invoiced")
		reply.SetSource("/billing")
		reply.SetType("com.example.invoice.created")
		if err := reply.SetData(event.ApplicationJSON, map[string]any{"order": order.ID}); err != nil {
			return function.Result{}, err
		}
		return function.Reply(reply), nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := function.Serve(ctx, ":8080", handler); err != nil {
		log.Fatal(err)
	}
}

// ServeListener on a random loopback port, invoked the way Switchyard does it.
func ExampleServeListener() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- function.ServeListener(ctx, lis, func(ctx context.Context, ev event.Event) (function.Result, error) {
			info, _ := function.FromContext(ctx)
			fmt.Printf("received %s (attempt %d, trigger %s): %s\n", ev.Type(), info.Attempt, info.Trigger, ev.Data())
			return function.Result{}, nil
		})
	}()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	resp, err := functionv1.NewFunctionServiceClient(conn).Invoke(context.Background(), &functionv1.InvokeRequest{
		Event: &pb.CloudEvent{
			Id: "42", Source: "/orders", SpecVersion: "1.0", Type: "com.example.order.created",
			Attributes: map[string]*pb.CloudEventAttributeValue{
				"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/json"}},
			},
			Data: &pb.CloudEvent_BinaryData{BinaryData: []byte(`{"id": "42",  "total": 9.90}`)},
		},
		Attempt:        1,
		Trigger:        "billing",
		IdempotencyKey: "/orders 42",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("outcome:", resp.GetOutcome())

	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// received com.example.order.created (attempt 1, trigger billing): {"id": "42",  "total": 9.90}
	// outcome: OUTCOME_ACK
}

var errRateLimited = errors.New("payment provider rate limit")

// A handler asking Switchyard to come back later; the service answers
// OUTCOME_RETRY with retry_after.
func ExampleRetryAfter() {
	handler := func(ctx context.Context, ev event.Event) (function.Result, error) {
		return function.Result{}, function.RetryAfter(30*time.Second, errRateLimited)
	}

	resp, err := function.NewService(handler).Invoke(context.Background(), &functionv1.InvokeRequest{
		Event:   &pb.CloudEvent{Id: "1", Source: "/payments", SpecVersion: "1.0", Type: "com.example.payment.requested"},
		Attempt: 1,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetOutcome(), resp.GetRetryAfter().AsDuration(), resp.GetReason())
	// Output:
	// OUTCOME_RETRY 30s retry after 30s: payment provider rate limit
}

func ExampleDead() {
	handler := func(ctx context.Context, ev event.Event) (function.Result, error) {
		if ev.DataContentType() != event.ApplicationJSON {
			return function.Result{}, function.Dead(fmt.Errorf("unsupported content type %q", ev.DataContentType()))
		}
		return function.Result{}, nil
	}

	resp, err := function.NewService(handler).Invoke(context.Background(), &functionv1.InvokeRequest{
		Event: &pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: "t"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetOutcome(), resp.GetReason())
	// Output:
	// OUTCOME_DEAD dead: unsupported content type ""
}
