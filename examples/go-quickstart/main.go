// Command go-quickstart publishes an order with the Go SDK and serves the
// function that the quickstart's trigger delivers it to (127.0.0.1:7070, in
// place of switchyard sink): go run ./examples/go-quickstart
package main

import (
	"context"
	"errors"
	"log"
	"os"
	"os/signal"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, "localhost:9090", "127.0.0.1:7070"); err != nil {
		log.Fatal(err)
	}
}

// run serves the function on listen until ctx ends, and publishes one event
// to the Switchyard whose gRPC API is at server.
func run(ctx context.Context, server, listen string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- function.Serve(ctx, listen, handle) }()
	if err := publish(ctx, server); err != nil {
		cancel()
		return errors.Join(err, <-served)
	}
	return <-served
}

// handle is the function: Switchyard calls it for every event its trigger routes here.
func handle(ctx context.Context, ev cloudevents.Event) (function.Result, error) {
	info, _ := function.FromContext(ctx) // attempt, trigger, deadline, idempotency key
	log.Printf("received %s (attempt %d, trigger %s): %s", ev.ID(), info.Attempt, info.Trigger, ev.Data())
	return function.Result{}, nil // or function.RetryAfter(d, err), function.Dead(err), status.Error(code, …)
}

func publish(ctx context.Context, server string) error {
	c, err := sdk.New(sdk.Config{Address: server})
	if err != nil {
		return err
	}
	defer c.Close()
	ev := cloudevents.NewEvent()
	ev.SetID("42")
	ev.SetSource("/shop/go")
	ev.SetType("com.example.order.created")
	ev.SetSubject("eu-42")
	if err := ev.SetData(cloudevents.ApplicationJSON, map[string]any{"total": 120}); err != nil {
		return err
	}
	// nil once the event is durable; *sdk.PushbackError when a matching
	// trigger's queue is full, *sdk.InvalidEventError naming a bad attribute.
	if err := c.Publish(ctx, ev); err != nil {
		return err
	}
	log.Printf("published %s", ev.ID())
	return nil
}
