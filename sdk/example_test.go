package sdk_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
)

func ExampleNew() {
	// Plaintext to localhost:9090 with a 10s timeout per call:
	local, err := sdk.New(sdk.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer local.Close()

	// TLS, a custom address and a shorter timeout:
	remote, err := sdk.New(sdk.Config{
		Address: "switchyard.example.com:443",
		Timeout: 3 * time.Second,
		DialOptions: []grpc.DialOption{
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer remote.Close()
}

func ExampleClient_Publish() {
	c, err := sdk.New(sdk.Config{Address: "localhost:9090"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ev := event.New()
	ev.SetID("order-42")
	ev.SetSource("/shop/orders")
	ev.SetType("com.example.order.created")
	if err := ev.SetData(event.ApplicationJSON, map[string]any{"id": "42", "total": 9.90}); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	for {
		err := c.Publish(ctx, ev)
		var pushback *sdk.PushbackError
		var invalid *sdk.InvalidEventError
		switch {
		case err == nil:
			fmt.Println("published")
			return
		case errors.As(err, &pushback):
			// A matching trigger's queue is full: nothing was accepted.
			time.Sleep(max(pushback.RetryAfter, time.Second))
		case errors.Is(err, sdk.ErrUnavailable):
			time.Sleep(time.Second)
		case errors.As(err, &invalid):
			for _, v := range invalid.Violations {
				log.Printf("invalid %s: %s", v.Field, v.Description)
			}
			return
		default:
			log.Fatal(err)
		}
	}
}

func ExampleClient_ApplyTrigger() {
	c, err := sdk.New(sdk.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	resp, err := c.ApplyTrigger(context.Background(), &switchyardv1.Trigger{
		Name:   "billing",
		Filter: &switchyardv1.Filter{Cel: `type == "com.example.order.created" && data.total > 0`},
		Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: "billing:8080"}},
		Delivery: &switchyardv1.DeliveryPolicy{
			Timeout:     durationpb.New(5 * time.Second),
			MaxAttempts: 10,
		},
	})
	var invalid *sdk.InvalidTriggerError
	if errors.As(err, &invalid) {
		for _, v := range invalid.Violations {
			log.Printf("%s: %s", v.Field, v.Description)
		}
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", resp.GetCreated(), "changed:", resp.GetChanged())
}
