package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-io/switchyard/internal/backoff"
	"github.com/switchyard-io/switchyard/internal/panics"
)

// Sink accepts events durably: Publish returns nil only once every event is
// stored (all or none). Errors are classified through optional methods:
// RetryDelay() time.Duration means "pushed back, retry after the delay";
// Permanent() bool means the events can never be accepted (invalid). Any
// other error is transient (store unavailable).
type Sink interface {
	Publish(ctx context.Context, events []*pb.CloudEvent) error
}

// OnceSink is a Sink that also publishes at most once per key and sequence
// number (Message.Once): PublishOnce stores the events and records seq
// under key in one atomic step, only when seq is greater than the number
// recorded; published reports whether it was. Errors as Publish.
type OnceSink interface {
	PublishOnce(ctx context.Context, key string, seq int64, events []*pb.CloudEvent) (published bool, err error)
}

// ErrNoOnceSink fails the publish of a Message.Once when the sink cannot
// publish at most once.
var ErrNoOnceSink = errors.New("the sink cannot publish at most once (Message.Once)")

// Defaults of RunnerConfig.
const (
	DefaultMaxBatch   = 100
	DefaultBatchWait  = 2 * time.Millisecond
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// RunnerConfig tunes the Runner. Zero fields take the defaults.
type RunnerConfig struct {
	// MaxBatch bounds the messages published together (and in flight per source).
	MaxBatch int
	// BatchWait is how long to wait for more messages once one is read.
	BatchWait time.Duration
	// MinBackoff and MaxBackoff bound reconnect and retry delays; each
	// delay is drawn at random between them, growing with the failures in
	// a row (internal/backoff).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	// Tracer, when set, traces each batch read with a span (see
	// traceBatch) under which the batch is published; nil traces nothing.
	Tracer trace.Tracer
}

func (c *RunnerConfig) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.BatchWait <= 0 {
		c.BatchWait = DefaultBatchWait
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// SourceConfig declares one source (an entry of the server's `sources:`).
type SourceConfig struct {
	Name   string         `json:"name"`
	Kind   string         `json:"kind"`
	Fields map[string]any `json:"fields,omitempty"`
}

// State is a source's condition.
type State string

// States.
const (
	StateConnecting State = "connecting"
	StateRunning    State = "running"
	StatePaused     State = "paused" // Switchyard pushes back
	StateRetrying   State = "retrying"
	StateStopped    State = "stopped"
	StateDone       State = "done" // end of input
)

// Status is a source's live state, for `switchyard source list`.
type Status struct {
	Name, Kind      string
	State           State
	Events          int64 // events accepted by Switchyard
	Rejected        int64 // events Switchyard refused as invalid (acknowledged, logged)
	Errors          int64 // connection and publish errors
	LastEvent       time.Time
	LastError       string
	LastErrorTime   time.Time
	Position        string // the last acknowledged position
	Reconnects      int64
	PausedForReason string
	// Lag is how long before its acceptance the newest event of the last
	// accepted batch happened, by its `time` attribute (the system's own
	// clock: a commit time for CDC, a message's stored time for queues);
	// LagKnown is false until an event with a time was accepted.
	Lag      time.Duration
	LagKnown bool
	// Backlog is what the last accepted message said the external system
	// still holds for the source (Message.Backlog), when it said.
	Backlog      int64
	BacklogKnown bool
	// NextFire is when a source that emits at known times (NextFirer)
	// emits next; zero otherwise.
	NextFire time.Time
	// Ticks are the tick counts of a source that emits on a schedule
	// (TickCounter); nil for the others.
	Ticks *TickCounts
}

// Runner drives sources: one goroutine each.
type Runner struct {
	cfg     RunnerConfig
	sink    Sink
	sources []*running
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started atomic.Bool
}

type running struct {
	name, kind string
	src        Source
	log        *slog.Logger
	mu         sync.Mutex
	st         Status
}

// NewRunner validates every source declaration against the registry and
// builds the sources. Every problem is reported, each naming its field
// ("sources[1].fields.dsn: required: …"); nothing is started.
func NewRunner(cfg RunnerConfig, reg *Registry, sink Sink, env func(name string) Env, decls []SourceConfig) (*Runner, error) {
	cfg.setDefaults()
	r := &Runner{cfg: cfg, sink: sink}
	var errs []error
	names := map[string]bool{}
	for i, d := range decls {
		path := fmt.Sprintf("sources[%d]", i)
		if d.Name == "" || !kindRE.MatchString(nameForCheck(d.Name)) {
			errs = append(errs, fmt.Errorf("%s.name: %q: use lower-case letters, digits, '-' and '_'", path, d.Name))
			continue
		}
		if names[d.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", path, d.Name))
			continue
		}
		names[d.Name] = true
		spec, ok := reg.Lookup(d.Kind)
		if !ok {
			kinds := []string{}
			for _, s := range reg.List() {
				kinds = append(kinds, s.Kind)
			}
			errs = append(errs, fmt.Errorf("%s.kind: %q: %w (known: %v)", path, d.Kind, ErrUnknownKind, kinds))
			continue
		}
		c, err := spec.Build(path+".fields", d.Fields)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e := env(d.Name)
		if e.Logger == nil {
			e.Logger = cfg.Logger
		}
		e.Name = d.Name
		e.Logger = e.Logger.With("source", d.Name, "kind", d.Kind)
		src, err := spec.New(e, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		r.sources = append(r.sources, &running{name: d.Name, kind: d.Kind, src: src, log: e.Logger, st: Status{Name: d.Name, Kind: d.Kind, State: StateConnecting}})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func nameForCheck(n string) string {
	b := []byte(n)
	for i, c := range b {
		if c == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Start starts every source.
func (r *Runner) Start() {
	if !r.started.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for _, s := range r.sources {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			// A panic (a source meeting input it cannot handle) closes the
			// source, and it connects again after a pause: what it had
			// read and not acknowledged is read again.
			panics.Loop(ctx, s.log, "connectors.source", func(ctx context.Context) { r.run(ctx, s) })
		}()
	}
}

// Stop stops reading, finishes the batch in progress (acknowledging or
// negatively acknowledging it), closes every source and returns when all
// are stopped or ctx ends.
func (r *Runner) Stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sources did not stop in time: %w", ctx.Err())
	}
}

// Status returns every source's state, sorted by name.
func (r *Runner) Status() []Status {
	out := make([]Status, 0, len(r.sources))
	for _, s := range r.sources {
		s.mu.Lock()
		st := s.st
		s.mu.Unlock()
		if nf, ok := s.src.(NextFirer); ok && st.State != StateStopped && st.State != StateDone {
			st.NextFire = nf.NextFire()
		}
		if tc, ok := s.src.(TickCounter); ok {
			c := tc.TickCounts()
			st.Ticks = &c
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *running) set(f func(*Status)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

func (s *running) fail(state State, err error) {
	s.set(func(st *Status) {
		st.State, st.Errors, st.LastError, st.LastErrorTime = state, st.Errors+1, err.Error(), time.Now()
	})
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) bool { return backoff.Sleep(ctx, d) }

// next returns the delay before the next try after waiting d (zero for a
// first failure): drawn at random between MinBackoff and MaxBackoff, so
// that the sources of instances which lost their system (or their Redis)
// together do not reconnect together.
func (r *Runner) next(d time.Duration) time.Duration {
	return backoff.Next(d, r.cfg.MinBackoff, r.cfg.MaxBackoff)
}

// run connects, reads and publishes until ctx ends or the input does.
func (r *Runner) run(ctx context.Context, s *running) {
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.src.Close(cctx); err != nil {
			s.log.Warn("close source", "err", err)
		}
		s.set(func(st *Status) {
			if st.State != StateDone {
				st.State = StateStopped
			}
		})
	}()
	var wait time.Duration
	connected := false
	for ctx.Err() == nil {
		if !connected {
			s.set(func(st *Status) { st.State = StateConnecting })
			if err := s.src.Connect(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				wait = r.next(wait)
				s.fail(StateConnecting, fmt.Errorf("connect: %w", err))
				s.log.Warn("source cannot connect; retrying", "err", err, "retry_in", wait)
				_ = s.src.Close(ctx)
				r.sleep(ctx, wait)
				continue
			}
			connected, wait = true, 0
			s.set(func(st *Status) { st.State = StateRunning })
			s.log.Info("source connected")
		}
		batch, first, err := r.readBatch(ctx, s)
		if len(batch) > 0 {
			if r.cfg.Tracer != nil {
				r.tracedPublish(ctx, s, batch, first)
			} else {
				r.publish(ctx, s, batch)
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrEndOfInput):
			s.set(func(st *Status) { st.State = StateDone })
			return
		case ctx.Err() != nil:
			return
		default:
			wait = r.next(wait)
			s.fail(StateConnecting, err)
			s.set(func(st *Status) { st.Reconnects++ })
			s.log.Warn("source read failed; reconnecting", "err", err, "retry_in", wait)
			_ = s.src.Close(ctx)
			connected = false
			r.sleep(ctx, wait)
		}
	}
}

// readBatch reads one message (blocking), then whatever else arrives within
// BatchWait, up to MaxBatch. first is when the first message was read.
func (r *Runner) readBatch(ctx context.Context, s *running) (batch []*Message, first time.Time, err error) {
	m, err := s.src.Read(ctx)
	if err != nil {
		return nil, first, err
	}
	first = time.Now()
	batch = []*Message{m}
	deadline := time.Now().Add(r.cfg.BatchWait)
	for len(batch) < r.cfg.MaxBatch && ctx.Err() == nil {
		rctx, cancel := context.WithDeadline(ctx, deadline)
		m, err := s.src.Read(rctx)
		cancel()
		if err != nil {
			if rctx.Err() != nil && ctx.Err() == nil {
				return batch, first, nil // nothing more right now
			}
			return batch, first, err
		}
		batch = append(batch, m)
	}
	return batch, first, nil
}

type retryDelayer interface{ RetryDelay() time.Duration }
type permanent interface{ Permanent() bool }

// publish hands a batch to the sink until it is accepted, then acknowledges
// every message in order. While Switchyard pushes back it pauses (reading
// nothing more); while it is unavailable it retries with backoff. Invalid
// events are isolated, logged, counted and acknowledged: they can never be
// accepted, and holding them would stop the source for good. If the runner
// stops first, the messages are negatively acknowledged and redelivered later.
func (r *Runner) publish(ctx context.Context, s *running, batch []*Message) {
	events := make([]*pb.CloudEvent, len(batch))
	for i, m := range batch {
		events[i] = m.Event
	}
	var wait time.Duration
	for {
		// Not cancelled with the runner (a publish under way completes),
		// but carrying its values: the batch's span.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		published, err := r.sinkPublish(pctx, batch, events)
		cancel()
		var rd retryDelayer
		var pe permanent
		switch {
		case err == nil:
			r.ack(s, batch, nil)
			now := time.Now()
			last := batch[len(batch)-1]
			newest, timed := newestTime(events)
			s.set(func(st *Status) {
				st.State, st.Events = StateRunning, st.Events+int64(published)
				if published > 0 {
					st.LastEvent = now
				}
				st.PausedForReason = ""
				if p := last.Position; p != "" {
					st.Position = p
				}
				if timed {
					st.Lag, st.LagKnown = max(0, now.Sub(newest)), true
				}
				if last.BacklogKnown {
					st.Backlog, st.BacklogKnown = last.Backlog, true
				}
			})
			return
		case errors.As(err, &pe) && pe.Permanent():
			if len(batch) > 1 {
				for _, m := range batch { // isolate the bad ones
					r.publish(ctx, s, []*Message{m})
				}
				return
			}
			s.log.Error("event refused as invalid; acknowledged and skipped", "event_id", events[0].GetId(), "err", err)
			r.ack(s, batch, nil)
			s.set(func(st *Status) { st.Rejected++; st.LastError, st.LastErrorTime = err.Error(), time.Now() })
			return
		case errors.As(err, &rd):
			d := max(rd.RetryDelay(), 5*time.Millisecond)
			s.set(func(st *Status) { st.State, st.PausedForReason = StatePaused, err.Error() })
			if !r.sleep(ctx, d) {
				r.ack(s, batch, ctx.Err())
				return
			}
		default:
			wait = r.next(wait)
			s.fail(StateRetrying, fmt.Errorf("publish: %w", err))
			if !r.sleep(ctx, wait) {
				r.ack(s, batch, ctx.Err())
				return
			}
		}
	}
}

func (r *Runner) ack(s *running, batch []*Message, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range batch {
		if aerr := m.Ack(ctx, err); aerr != nil {
			s.log.Warn("acknowledge at source failed (the event may be redelivered)", "event_id", m.Event.GetId(), "err", aerr)
		}
	}
}

// newestTime returns the latest `time` attribute of the events, if any has one.
func newestTime(events []*pb.CloudEvent) (time.Time, bool) {
	var newest time.Time
	for _, ev := range events {
		a := ev.GetAttributes()["time"]
		var t time.Time
		if ts := a.GetCeTimestamp(); ts != nil {
			t = ts.AsTime()
		} else if s := a.GetCeString(); s != "" {
			t, _ = time.Parse(time.RFC3339Nano, s)
		}
		if t.After(newest) {
			newest = t
		}
	}
	return newest, !newest.IsZero()
}

// sinkPublish publishes a batch's events; it returns how many were
// published. Messages made at most once (Message.Once) are published one
// by one, in order, through the sink's PublishOnce: one already published
// (here or by another instance) is skipped, so a batch tried again after a
// failure publishes only what it had not.
func (r *Runner) sinkPublish(ctx context.Context, batch []*Message, events []*pb.CloudEvent) (int, error) {
	if batch[0].Once == nil {
		return len(events), r.sink.Publish(ctx, events)
	}
	os, ok := r.sink.(OnceSink)
	if !ok {
		return 0, ErrNoOnceSink
	}
	n := 0
	for i, m := range batch {
		if m.Once == nil {
			return n, fmt.Errorf("message %d of a source that sets Once has none", i)
		}
		done, err := os.PublishOnce(ctx, m.Once.Key, m.Once.Seq, events[i:i+1])
		if err != nil {
			return n, err
		}
		if done {
			// Kept across the tries of a batch: a message this
			// instance published before a later one failed stays its.
			m.Once.Published = true
			n++
		}
	}
	return n, nil
}
