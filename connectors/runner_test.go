package connectors_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/internal/panics"
)

// fakeSource is an in-memory source for the runner's pure logic: it hands
// out queued events and records acks; fail injects errors.
type fakeSource struct {
	mu       sync.Mutex
	queue    []*pb.CloudEvent
	acked    []string
	nacked   []string
	connects atomic.Int64
	failRead atomic.Int64 // the next N reads return ErrNotConnected
	closed   atomic.Int64
	backlog  bool // messages tell how many are left in the queue
}

func (f *fakeSource) Connect(context.Context) error { f.connects.Add(1); return nil }
func (f *fakeSource) Close(context.Context) error   { f.closed.Add(1); return nil }
func (f *fakeSource) Read(ctx context.Context) (*connectors.Message, error) {
	if f.failRead.Load() > 0 {
		f.failRead.Add(-1)
		return nil, fmt.Errorf("socket closed: %w", connectors.ErrNotConnected)
	}
	for {
		f.mu.Lock()
		if len(f.queue) > 0 {
			ev := f.queue[0]
			f.queue = f.queue[1:]
			left := int64(len(f.queue))
			f.mu.Unlock()
			return &connectors.Message{Event: ev, Position: "pos-" + ev.GetId(), Backlog: left, BacklogKnown: f.backlog, Ack: func(_ context.Context, err error) error {
				f.mu.Lock()
				defer f.mu.Unlock()
				if err != nil {
					f.nacked = append(f.nacked, ev.GetId())
				} else {
					f.acked = append(f.acked, ev.GetId())
				}
				return nil
			}}, nil
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

type invalidErr struct{}

func (invalidErr) Error() string   { return "invalid event" }
func (invalidErr) Permanent() bool { return true }

// pickySink refuses (as invalid) any batch holding an event with id "bad".
type pickySink struct {
	mu   sync.Mutex
	got  []string
	fail atomic.Int64 // transient failures to inject
}

func (s *pickySink) Publish(_ context.Context, evs []*pb.CloudEvent) error {
	if s.fail.Load() > 0 {
		s.fail.Add(-1)
		return errors.New("store unavailable")
	}
	for _, e := range evs {
		if e.GetId() == "bad" {
			return invalidErr{}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		s.got = append(s.got, e.GetId())
	}
	return nil
}

func ev(id string) *pb.CloudEvent {
	return &pb.CloudEvent{Id: id, Source: "/s", SpecVersion: "1.0", Type: "t"}
}

func runWith(t *testing.T, src connectors.Source, sink connectors.Sink) *connectors.Runner {
	t.Helper()
	reg := connectors.NewRegistry()
	if err := reg.Register(connectors.Spec{Kind: "fake", Summary: "fake", New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }}); err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRunner(connectors.RunnerConfig{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		reg, sink, func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "f", Kind: "fake"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRunnerIsolatesInvalidEventsAndRetriesTransientErrors(t *testing.T) {
	src := &fakeSource{queue: []*pb.CloudEvent{ev("a"), ev("bad"), ev("c")}}
	sink := &pickySink{}
	sink.fail.Store(2)
	src.failRead.Store(1)
	r := runWith(t, src, sink)
	waitFor(t, func() bool { src.mu.Lock(); defer src.mu.Unlock(); return len(src.acked) == 3 })
	sink.mu.Lock()
	got := strings.Join(sink.got, ",")
	sink.mu.Unlock()
	if got != "a,c" {
		t.Fatalf("published %q, want a,c (the invalid event isolated)", got)
	}
	st := r.Status()[0]
	if st.Rejected != 1 || st.Events != 2 || st.Position != "pos-c" || st.Reconnects != 1 || st.Errors < 3 {
		t.Fatalf("status %+v", st)
	}
	if src.connects.Load() != 2 {
		t.Fatalf("connects %d, want a reconnect after ErrNotConnected", src.connects.Load())
	}
}

func TestRunnerStopNacksWhatIsNotStored(t *testing.T) {
	src := &fakeSource{queue: []*pb.CloudEvent{ev("x")}}
	sink := &pickySink{}
	sink.fail.Store(1 << 30) // the store never comes back
	r := runWith(t, src, sink)
	waitFor(t, func() bool { return r.Status()[0].Errors > 0 })
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.nacked) != 1 || len(src.acked) != 0 {
		t.Fatalf("acked %v nacked %v: an event not stored must be nacked", src.acked, src.nacked)
	}
	if src.closed.Load() == 0 {
		t.Fatal("source not closed")
	}
}

func TestSpecBuildReportsEveryField(t *testing.T) {
	spec := connectors.Spec{Kind: "k", Summary: "s", New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return nil, nil },
		Fields: []connectors.Field{
			{Name: "dsn", Type: connectors.TypeString, Required: true, Doc: "where"},
			{Name: "every", Type: connectors.TypeDuration, Default: "1s", Doc: "how often"},
			{Name: "n", Type: connectors.TypeInt, Default: 3, Doc: "how many"},
			{Name: "tables", Type: connectors.TypeStringList, Doc: "which"},
		}}
	c, err := spec.Build("sources[0].fields", map[string]any{"dsn": "x", "tables": []any{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Duration("every") != time.Second || c.Int("n") != 3 || len(c.StringList("tables")) != 2 || c.String("dsn") != "x" {
		t.Fatalf("config %+v", c)
	}
	_, err = spec.Build("sources[0].fields", map[string]any{"every": "soon", "n": 1.5, "tables": []any{1}, "extra": true})
	for _, want := range []string{"sources[0].fields.dsn: required", "sources[0].fields.every", "sources[0].fields.n", "sources[0].fields.tables", "sources[0].fields.extra: unknown field"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	if err := connectors.NewRegistry().Register(connectors.Spec{Kind: "Bad Kind"}); err == nil {
		t.Error("bad spec registered")
	}
}

func TestSpecConfirmsAndRisks(t *testing.T) {
	newSrc := func(connectors.Env, connectors.Config) (connectors.Source, error) { return nil, nil }
	reg := connectors.NewRegistry()
	for _, s := range []connectors.Spec{
		{Kind: "cdc", Summary: "s", New: newSrc, Confirms: connectors.ConfirmsUpstream, Loses: "rows past the slot"},
		{Kind: "hook", Summary: "s", New: newSrc, Confirms: connectors.ConfirmsCaller, Loses: "answered requests"},
		{Kind: "replay", Summary: "s", New: newSrc, Confirms: connectors.ConfirmsNothing},
		{Kind: "undeclared", Summary: "s", New: newSrc},
	} {
		if err := reg.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	for name, bad := range map[string]connectors.Spec{
		"unknown confirms":       {Kind: "x", Summary: "s", New: newSrc, Confirms: "sometimes", Loses: "l"},
		"nothing that loses sth": {Kind: "y", Summary: "s", New: newSrc, Confirms: connectors.ConfirmsNothing, Loses: "l"},
	} {
		if err := reg.Register(bad); err == nil {
			t.Errorf("%s: registered", name)
		}
	}
	risks := reg.Risks([]connectors.SourceConfig{{Name: "a", Kind: "cdc"}, {Name: "b", Kind: "replay"}, {Name: "c", Kind: "nope"}, {Name: "d", Kind: "hook"}, {Name: "e", Kind: "undeclared"}})
	want := []connectors.Risk{
		{Path: "sources[0]", Name: "a", Kind: "cdc", Confirms: connectors.ConfirmsUpstream, Loses: "rows past the slot"},
		{Path: "sources[3]", Name: "d", Kind: "hook", Confirms: connectors.ConfirmsCaller, Loses: "answered requests"},
	}
	if len(risks) != 3 || risks[0] != want[0] || risks[1] != want[1] {
		t.Fatalf("risks %+v", risks)
	}
	// An undeclared connector is assumed to confirm.
	if r := risks[2]; r.Name != "e" || !strings.Contains(r.Loses, "does not declare") {
		t.Fatalf("undeclared: %+v", r)
	}
}

// The status tells how far behind its system's clock the source runs (by
// the newest accepted event's time) and, when the source says, what is left
// to read.
func TestRunnerStatusLagAndBacklog(t *testing.T) {
	stamped := func(id string, at time.Time) *pb.CloudEvent {
		e := ev(id)
		e.Attributes = map[string]*pb.CloudEventAttributeValue{"time": {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(at)}}}
		return e
	}
	old := time.Now().Add(-time.Hour)
	src := &fakeSource{backlog: true, queue: []*pb.CloudEvent{stamped("a", old.Add(-time.Minute)), stamped("b", old), ev("c")}}
	r := runWith(t, src, &pickySink{})
	waitFor(t, func() bool { return r.Status()[0].Events == 3 })
	st := r.Status()[0]
	if !st.LagKnown || st.Lag < time.Hour || st.Lag > 2*time.Hour {
		t.Fatalf("lag %s (known %v), want about an hour: the newest event with a time", st.Lag, st.LagKnown)
	}
	if !st.BacklogKnown || st.Backlog != 0 {
		t.Fatalf("backlog %d (known %v), want 0 after the last message", st.Backlog, st.BacklogKnown)
	}

	plain := runWith(t, &fakeSource{queue: []*pb.CloudEvent{ev("x")}}, &pickySink{})
	waitFor(t, func() bool { return plain.Status()[0].Events == 1 })
	if st := plain.Status()[0]; st.LagKnown || st.BacklogKnown {
		t.Fatalf("status %+v: no time, no backlog said", st)
	}
}

// panickySource panics on its first read, as a source meeting input it
// cannot handle would.
type panickySource struct {
	fakeSource
	panicked atomic.Bool
}

func (p *panickySource) Read(ctx context.Context) (*connectors.Message, error) {
	if p.panicked.CompareAndSwap(false, true) {
		panic("a payload the decoder did not expect")
	}
	return p.fakeSource.Read(ctx)
}

// A source that panics is closed and connected again; the process goes on,
// the panic is counted, and the events are read and stored after all.
func TestRunnerSurvivesAPanickingSource(t *testing.T) {
	before := panics.Count("connectors.source")
	src := &panickySource{fakeSource: fakeSource{queue: []*pb.CloudEvent{ev("a"), ev("b")}}}
	sink := &pickySink{}
	runWith(t, src, sink)
	waitFor(t, func() bool { src.mu.Lock(); defer src.mu.Unlock(); return len(src.acked) == 2 })
	if got := panics.Count("connectors.source"); got != before+1 {
		t.Fatalf("panics counted %v, want %v", got, before+1)
	}
	if src.connects.Load() != 2 || src.closed.Load() < 1 {
		t.Fatalf("connects %d closes %d: the panicking source must be closed and connected again", src.connects.Load(), src.closed.Load())
	}
}
