package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/server"
)

// TestREADMEShowsThisFile: the README's Go snippet is this file, verbatim.
func TestREADMEShowsThisFile(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if got := testenv.READMEBlock(t, "go-quickstart"); got != string(src) {
		t.Fatalf("README.md's go-quickstart block differs from examples/go-quickstart/main.go: copy the file into the README")
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

// TestRunDeliversThroughTheQuickstartTrigger runs the program against a
// server holding the README's quickstart trigger, aimed at the program's
// function.
func TestRunDeliversThroughTheQuickstartTrigger(t *testing.T) {
	b := testenv.Embedded(t)
	srv, err := server.New(context.Background(), server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", RedisURL: b.URL,
		Router: router.Config{Prefix: b.Prefix}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fnAddr := lis.Addr().String()
	_ = lis.Close()
	specs, err := trigger.Parse([]byte(strings.ReplaceAll(testenv.READMEBlock(t, "quickstart-trigger"), "127.0.0.1:7070", fnAddr)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New(sdk.Config{Address: srv.GRPCAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, s := range specs {
		if _, err := c.ApplyTrigger(context.Background(), trigger.ToProto(s)); err != nil {
			t.Fatal(err)
		}
	}

	logs := &syncBuffer{}
	log.SetOutput(logs)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, srv.GRPCAddr(), fnAddr) }()
	testenv.Eventually(t, 20*time.Second, func() bool {
		return strings.Contains(logs.String(), `received 42 (attempt 1, trigger orders-to-billing): {"total":120}`)
	}, "the function received the event; log:\n%s", logs)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "published 42") {
		t.Fatalf("log:\n%s", logs)
	}
}
