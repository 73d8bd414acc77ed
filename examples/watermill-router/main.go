// Command watermill-router runs a Watermill message.Router on Switchyard: it
// consumes the topic orders.created (events of that type, from any
// publisher) in the consumer group billing, and publishes an invoice for
// each order back to Switchyard on invoices.created, with Watermill's
// correlation ID, recoverer and Prometheus metrics middleware. Only the two
// constructors are Switchyard's: go run ./examples/watermill-router
package main

import (
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"os"
	"os/signal"

	"github.com/ThreeDotsLabs/watermill"
	wmmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/sdk"
	sywm "github.com/switchyard-io/switchyard/sdk/watermill"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, "localhost:9090", prometheus.NewRegistry()); err != nil {
		log.Fatal(err)
	}
}

// run routes messages until ctx ends, through the Switchyard whose gRPC API
// is at server, recording the router's metrics in reg.
func run(ctx context.Context, server string, reg prometheus.Registerer) error {
	client, err := sdk.New(sdk.Config{Address: server}) // Token, TLS: see sdk.Config
	if err != nil {
		return err
	}
	defer client.Close()
	logger := watermill.NewSlogLogger(slog.Default())

	// The Subscriber creates the pull trigger of (billing, orders.created)
	// on first use; subscribers of one group share its events.
	sub, err := sywm.NewSubscriber(sywm.SubscriberConfig{Client: client, ConsumerGroup: "billing"}, logger)
	if err != nil {
		return err
	}
	pub, err := sywm.NewPublisher(sywm.PublisherConfig{Client: client, ContentType: "application/json"}, logger)
	if err != nil {
		return err
	}

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	wmmetrics.NewPrometheusMetricsBuilder(reg, "billing", "").AddPrometheusRouterMetrics(router)
	router.AddMiddleware(
		middleware.CorrelationID, // the invoice carries the order's correlation ID
		middleware.Recoverer,     // a panic becomes an error: the order is Nacked, retried
	)
	router.AddHandler("invoice", "orders.created", sub, "invoices.created", pub, invoice)
	return router.Run(ctx) // closes the subscriber and publisher when ctx ends
}

// invoice is the handler: an error Nacks the order (Switchyard retries it,
// then dead-letters it after the trigger's max_attempts).
func invoice(msg *message.Message) ([]*message.Message, error) {
	var order struct {
		ID    string  `json:"id"`
		Total float64 `json:"total"`
	}
	if err := json.Unmarshal(msg.Payload, &order); err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"order": order.ID, "amount": order.Total * 1.2})
	if err != nil {
		return nil, err
	}
	log.Printf("invoice for order %s (event %s)", order.ID, msg.UUID)
	return []*message.Message{message.NewMessage(watermill.NewUUID(), body)}, nil
}
