// Package connectortest is the conformance suite every connector passes:
// it emits valid CloudEvents with deterministic ids; it resumes from its
// checkpoint after a restart without loss; it redelivers what was negatively
// acknowledged; it pauses under pushback without losing anything; it stops
// cleanly. A connector's integration test calls Run with a Harness that
// talks to the real system.
package connectortest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
)

// Harness adapts one connector to the suite.
type Harness struct {
	// New builds a source named name. Two sources built with the same name
	// share their checkpoint (the second resumes where the first stopped).
	New func(t *testing.T, env connectors.Env) connectors.Source
	// Produce writes n new records to the external system (or, for push
	// sources, delivers them to the endpoint of the source named name on mux,
	// retrying until answered with success, as real senders do). Pull
	// sources may ignore name and mux.
	Produce func(t *testing.T, name string, mux *Mux, n int)
	// Push is set for push sources (webhooks, notifications): records can
	// only be produced while a source runs, and a producer that is not
	// answered retries, so "resume after restart" means "nothing acked is
	// lost". The suite then calls Produce only while a source runs.
	Push bool
	// Timeout bounds each wait (default 20s).
	Timeout time.Duration
}

// Sink records what the runner publishes and can push back or fail.
type Sink struct {
	mu       sync.Mutex
	events   []*pb.CloudEvent
	pushback time.Time // refuse with pushback until then
	pushed   int
}

type pushbackErr struct{}

func (pushbackErr) Error() string             { return "queue full" }
func (pushbackErr) RetryDelay() time.Duration { return 20 * time.Millisecond }

// Publish implements connectors.Sink.
func (s *Sink) Publish(_ context.Context, evs []*pb.CloudEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Now().Before(s.pushback) {
		s.pushed++
		return pushbackErr{}
	}
	s.events = append(s.events, evs...)
	return nil
}

// PushbackFor refuses every publish for d.
func (s *Sink) PushbackFor(d time.Duration) {
	s.mu.Lock()
	s.pushback = time.Now().Add(d)
	s.mu.Unlock()
}

// IDs returns the distinct event ids seen and the number of duplicates.
func (s *Sink) IDs() (map[string]bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[string]bool{}
	dups := 0
	for _, e := range s.events {
		if ids[e.GetId()] {
			dups++
		}
		ids[e.GetId()] = true
	}
	return ids, dups
}

// Events returns a copy of the events seen.
func (s *Sink) Events() []*pb.CloudEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pb.CloudEvent(nil), s.events...)
}

// MemCheckpoints is an in-memory connectors.Checkpoints shared by the
// sources of one test.
type MemCheckpoints struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Get implements connectors.Checkpoints.
func (c *MemCheckpoints) Get(_ context.Context, k string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k], nil
}

// Set implements connectors.Checkpoints.
func (c *MemCheckpoints) Set(_ context.Context, k string, v []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[k] = append([]byte(nil), v...)
	return nil
}

// Mux is a connectors.Mux served on a loopback port, for push sources.
type Mux struct {
	*connectors.Mux
	URL string
}

// NewMux serves a fresh mux until the test ends.
func NewMux(t testing.TB) *Mux {
	t.Helper()
	m := &Mux{Mux: connectors.NewMux()}
	srv := &http.Server{Handler: m}
	ln, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	m.URL = "http://" + ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return m
}

// Env returns an Env for a source named name with shared checkpoints and mux.
func Env(name string, cp *MemCheckpoints, mux *Mux) connectors.Env {
	return connectors.Env{Name: name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Checkpoints: cp, HTTP: mux}
}

// start runs src under a Runner with sink; returns a stop function.
func start(t *testing.T, src connectors.Source, sink *Sink) func() {
	t.Helper()
	reg := connectors.NewRegistry()
	if err := reg.Register(connectors.Spec{Kind: "under_test", Summary: "the connector under test",
		New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }}); err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRunner(connectors.RunnerConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		reg, sink, func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "under-test", Kind: "under_test"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("runner did not stop cleanly: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: "+format, append([]any{d}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = 20 * time.Second
	}
	t.Run("EmitsValidCloudEvents", func(t *testing.T) { emitsValid(t, h) })
	t.Run("ResumesAfterRestart", func(t *testing.T) { resumes(t, h) })
	t.Run("RedeliversOnFailedAck", func(t *testing.T) { redelivers(t, h) })
	t.Run("PausesUnderPushback", func(t *testing.T) { pauses(t, h) })
	t.Run("StopsCleanly", func(t *testing.T) { stops(t, h) })
}

func newEnv(t *testing.T, name string) (connectors.Env, *MemCheckpoints, *Mux) {
	cp := &MemCheckpoints{}
	mux := NewMux(t)
	return Env(name, cp, mux), cp, mux
}

func emitsValid(t *testing.T, h Harness) {
	env, _, mux := newEnv(t, "valid")
	sink := &Sink{}
	start(t, h.New(t, env), sink)
	h.Produce(t, "valid", mux, 5)
	eventually(t, h.Timeout, func() bool { ids, _ := sink.IDs(); return len(ids) >= 5 }, "5 events")
	for _, ev := range sink.Events() {
		if err := cloudevent.Validate(ev); err != nil {
			t.Errorf("invalid CloudEvent %v: %v", ev, err)
		}
	}
}

func resumes(t *testing.T, h Harness) {
	env, cp, mux := newEnv(t, "resume")
	sink := &Sink{}
	stop := start(t, h.New(t, env), sink)
	h.Produce(t, "resume", mux, 10)
	eventually(t, h.Timeout, func() bool { ids, _ := sink.IDs(); return len(ids) >= 10 }, "first 10 events")
	stop()
	if !h.Push {
		h.Produce(t, "resume", mux, 10) // while nothing runs
	}
	env2 := Env("resume", cp, mux)
	start(t, h.New(t, env2), sink)
	if h.Push {
		h.Produce(t, "resume", mux, 10)
	}
	eventually(t, h.Timeout, func() bool { ids, _ := sink.IDs(); return len(ids) >= 20 }, "all 20 events after the restart")
	ids, dups := sink.IDs()
	if len(ids) != 20 {
		t.Errorf("want 20 distinct events, got %d", len(ids))
	}
	t.Logf("resume: %d events, %d duplicates", len(ids), dups)
}

func redelivers(t *testing.T, h Harness) {
	env, cp, mux := newEnv(t, "redeliver")
	src := h.New(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var produced sync.WaitGroup
	produced.Add(1)
	go func() { defer produced.Done(); h.Produce(t, "redeliver", mux, 1) }()
	m, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := m.Event.GetId()
	if err := m.Ack(ctx, fmt.Errorf("switchyard said no")); err != nil {
		t.Fatal(err)
	}
	_ = src.Close(ctx)
	// A new source of the same name gets the same record again, with the
	// same id (a push producer whose request failed sends it again).
	sink := &Sink{}
	start(t, h.New(t, Env("redeliver", cp, mux)), sink)
	eventually(t, h.Timeout, func() bool { ids, _ := sink.IDs(); return ids[first] }, "event %s redelivered", first)
	produced.Wait()
}

func pauses(t *testing.T, h Harness) {
	env, _, mux := newEnv(t, "pause")
	sink := &Sink{}
	sink.PushbackFor(500 * time.Millisecond)
	start(t, h.New(t, env), sink)
	h.Produce(t, "pause", mux, 20)
	eventually(t, h.Timeout, func() bool { ids, _ := sink.IDs(); return len(ids) >= 20 }, "all 20 events once the pushback ends")
	sink.mu.Lock()
	pushed := sink.pushed
	sink.mu.Unlock()
	if pushed == 0 {
		t.Errorf("the runner never met the pushback")
	}
}

func stops(t *testing.T, h Harness) {
	env, _, mux := newEnv(t, "stop")
	sink := &Sink{}
	stop := start(t, h.New(t, env), sink)
	h.Produce(t, "stop", mux, 3)
	eventually(t, h.Timeout, func() bool { ids, _ := sink.IDs(); return len(ids) >= 3 }, "3 events")
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the source did not stop within 15s")
	}
}

// Build builds a source of a registered kind from raw configuration fields,
// failing the test on a validation or construction error.
func Build(t testing.TB, kind string, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	spec, ok := connectors.Default.Lookup(kind)
	if !ok {
		t.Fatalf("connector %q is not registered", kind)
	}
	cfg, err := spec.Build("fields", fields)
	if err != nil {
		t.Fatal(err)
	}
	src, err := spec.New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return src
}
