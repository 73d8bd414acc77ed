package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/sdk"
	sywm "github.com/switchyard-io/switchyard/sdk/watermill"
	"github.com/switchyard-io/switchyard/server"
)

// TestREADMEShowsThisFile: the README's Watermill example is this file,
// verbatim.
func TestREADMEShowsThisFile(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if got := testenv.READMEBlock(t, "watermill-router"); got != string(src) {
		t.Fatalf("README.md's watermill-router block differs from examples/watermill-router/main.go: copy the file into the README")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRouterInvoicesOrders runs the program against a real server: an order
// published by a plain CloudEvents publisher (the SDK) comes back as an
// invoice event, with the order's correlation ID, and the router's metrics
// are recorded.
func TestRouterInvoicesOrders(t *testing.T) {
	b := testenv.Real(t)
	srv, err := server.New(context.Background(), server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", RedisURL: b.URL,
		Router: router.Config{Prefix: b.Prefix, SweepInterval: 100 * time.Millisecond}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	c, err := sdk.New(sdk.Config{Address: srv.GRPCAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Where the invoices go: a pull trigger the test consumes.
	if _, err := c.ApplyTrigger(context.Background(), &switchyardv1.Trigger{Name: "invoices",
		Filter: &switchyardv1.Filter{Attributes: map[string]string{"type": "invoices.created"}},
		Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Pull{Pull: &switchyardv1.PullTarget{}}}}); err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	log.SetOutput(logs)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, srv.GRPCAddr(), reg) }()
	// The router's subscriber creates the group's trigger: orders published
	// from then on wait for it.
	testenv.Eventually(t, 20*time.Second, func() bool {
		_, err := c.GetTrigger(context.Background(), sywm.TriggerName("billing", "orders.created"))
		return err == nil
	}, "the billing trigger exists")

	order := event.New()
	order.SetID("o-1")
	order.SetSource("/shop")
	order.SetType("orders.created")
	order.SetExtension(sywm.EncodeMetadataName("correlation_id", false), "corr-7")
	if err := order.SetData("application/json", map[string]any{"id": "o-1", "total": 100}); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(context.Background(), order); err != nil {
		t.Fatal(err)
	}

	got := make(chan event.Event, 1)
	subCtx, stopSub := context.WithCancel(context.Background())
	subDone := make(chan error, 1)
	go func() {
		subDone <- c.Subscribe(subCtx, "invoices", func(_ context.Context, ev event.Event) error {
			select {
			case got <- ev:
			default:
			}
			return nil
		}, sdk.SubscribeOptions{})
	}()
	var inv event.Event
	select {
	case inv = <-got:
	case <-time.After(20 * time.Second):
		t.Fatalf("no invoice; log:\n%s", logs)
	}
	stopSub()
	if err := <-subDone; err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(inv.Data(), &body); err != nil || body["order"] != "o-1" || body["amount"] != 120.0 {
		t.Fatalf("invoice %s: %v", inv.Data(), err)
	}
	if inv.DataContentType() != "application/json" || inv.Source() != sywm.DefaultSource {
		t.Fatalf("invoice attributes: %s", inv)
	}
	if v := inv.Extensions()[sywm.EncodeMetadataName("correlation_id", false)]; v != "corr-7" {
		t.Fatalf("correlation id not carried: %v", inv.Extensions())
	}
	if !strings.Contains(logs.String(), "invoice for order o-1 (event o-1)") {
		t.Fatalf("log:\n%s", logs)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if !strings.Contains(strings.Join(names, " "), "billing_handler_execution_time_seconds") {
		t.Fatalf("router metrics not recorded: %v", names)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
