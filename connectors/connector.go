package connectors

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

// Source reads events from one external system. The Runner calls Connect,
// then Read repeatedly from a single goroutine, and Close once at the end.
type Source interface {
	// Connect opens the connection, creating what the source needs (a
	// replication slot, a consumer group) if missing. ctx bounds the attempt
	// only, not the connection's life. An error makes the Runner retry with
	// capped backoff; it must say why (it is shown in `switchyard source list`).
	Connect(ctx context.Context) error
	// Read blocks until the next message, ctx is done (return ctx.Err() and
	// no message: a message must never be lost because ctx ended), or the
	// connection fails (return an error wrapping ErrNotConnected to make the
	// Runner reconnect). Messages not yet acknowledged must be redelivered
	// after a reconnect or a restart.
	Read(ctx context.Context) (*Message, error)
	// Close releases everything. It is called once, after the last Read.
	Close(ctx context.Context) error
}

// Message is one event read from a source.
type Message struct {
	// Event is the CloudEvent. Its id is derived deterministically from the
	// source position, so a redelivered record yields the same id.
	Event *pb.CloudEvent
	// Ack is called exactly once. A nil error means the event is durable in
	// Switchyard: the source may commit its position past it. A non-nil error
	// means it was not accepted: the source must deliver it again (at the
	// latest after a reconnect). Acks come in read order.
	Ack func(ctx context.Context, err error) error
	// Position describes where the source is after this message (an LSN, an
	// offset, a stream id); it is shown as the source's checkpoint.
	Position string
	// Backlog is how many messages the external system still holds for
	// this source after this one, when it says (BacklogKnown): a JetStream
	// consumer's pending count, say. It is exported as a metric.
	Backlog      int64
	BacklogKnown bool
	// Once, when set, asks for the message's publish to happen at most once
	// for its key and sequence number across every instance serving the
	// source, and only for a number greater than the last one published
	// under the key: the runner publishes it alone through the sink's
	// PublishOnce (OnceSink), whose claim and events are one atomic step.
	// A message whose number was taken (another instance published it, or
	// a later one) is acknowledged with a nil error and counts as nothing.
	// A source setting Once sets it on every message it emits.
	Once *Once
}

// Once names a publish made at most once (see Message.Once).
type Once struct {
	// Key is private to the source (the runner prefixes nothing: use the
	// source's name).
	Key string
	// Seq orders the publishes of a key: a schedule's tick time in unix ms.
	Seq int64
	// Published is set by the runner before it acknowledges the message
	// with a nil error: true when this instance's publish wrote it, false
	// when its number was taken (by another instance, or by an earlier try
	// of this one). A source may read it in Ack to count its share.
	Published bool
}

// OnceLog reads what the publishes made at most once recorded: the last
// sequence number published under key (ok false when none was). Sources
// setting Message.Once read it to resume after a restart.
type OnceLog interface {
	LastOnce(ctx context.Context, key string) (seq int64, ok bool, err error)
}

// NextFirer is implemented by sources that emit at times they know (a
// schedule): the runner shows the next such time in the source's Status.
type NextFirer interface {
	// NextFire is when the next event is due; zero when unknown. Safe for
	// concurrent use with Read.
	NextFire() time.Time
}

// TickCounter is implemented by sources that emit on a schedule: the
// runner copies its counts into the source's Status (Ticks), and the
// server exports them as metrics.
type TickCounter interface {
	// TickCounts returns the counts so far. Safe for concurrent use with
	// Read.
	TickCounts() TickCounts
}

// TickCounts are what one instance saw of a schedule's ticks. Every
// instance tries every tick, and one publishes it: Fired summed over the
// instances is the ticks published; Taken is the others' share.
type TickCounts struct {
	// Fired counts the ticks this instance published; Taken those it
	// found published already (by another instance).
	Fired, Taken int64
	// Late counts the ticks fired late: published LateAfter or more after
	// their time (caught up after every instance was down, or held up by
	// pushback or a slow store).
	Late int64
	// Skipped counts the ticks older than the schedule's catch_up window
	// when their turn came, never fired. Each instance that resumes past
	// them counts them.
	Skipped int64
}

// LateAfter is how long after its time a tick may be published and not
// count as late (TickCounts.Late).
const LateAfter = time.Second

// Checkpoints is durable storage for sources whose external system does not
// keep their position (a binlog position, a bucket listing). Keys are
// private to the source.
type Checkpoints interface {
	Get(ctx context.Context, key string) ([]byte, error) // nil, nil when absent
	Set(ctx context.Context, key string, value []byte) error
}

// Marks are short-lived values shared by every instance serving a source
// (under the server, keys in Redis that expire by themselves). A push source
// uses them to store a request once however many copies reach however many
// instances. Keys are private to the source; implementations are safe for
// concurrent use.
type Marks interface {
	// Mark sets key to value for ttl unless key holds a value. It returns
	// the value key holds afterwards (value itself when it was set) and
	// whether this call set it. The check and the write are one atomic step.
	Mark(ctx context.Context, key, value string, ttl time.Duration) (current string, set bool, err error)
	// Put sets key to value for ttl, whatever it held.
	Put(ctx context.Context, key, value string, ttl time.Duration) error
	// Drop deletes key (no error when absent).
	Drop(ctx context.Context, key string) error
}

// Env is what a connector gets besides its fields.
type Env struct {
	// Name is the source's name from the configuration.
	Name string
	// Logger logs with the source's name attached.
	Logger *slog.Logger
	// Checkpoints stores the source's position.
	Checkpoints Checkpoints
	// Marks are shared by every instance serving the source; nil when the
	// source is only built to check its configuration (and in tests that
	// give none: a source then keeps its marks in its own process).
	Marks Marks
	// HTTP registers handlers on the server's HTTP listener, for push
	// sources (webhooks, bucket notifications). Patterns follow
	// http.ServeMux.
	HTTP interface {
		Handle(pattern string, h http.Handler)
	}
	// Once reads the sequence numbers of publishes made at most once (see
	// Message.Once); nil when the source is only built to check its
	// configuration.
	Once OnceLog
}

// Constructor builds a source from its validated fields.
type Constructor func(env Env, cfg Config) (Source, error)
