package watermill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	wm "github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-io/switchyard/sdk"
)

// Defaults of PublisherConfig and SubscriberConfig.
const (
	DefaultSource        = "/watermill"
	DefaultBatchSize     = 100
	DefaultConsumerGroup = "default"
	DefaultDrainTimeout  = 30 * time.Second
	// MaxBatchSize is the most events Switchyard takes in one publish.
	MaxBatchSize = 1000
)

// ErrClosed is returned by the methods of a closed Publisher or Subscriber.
var ErrClosed = errors.New("switchyard watermill: closed")

// TopicType maps a topic to the CloudEvents type of its events.
type TopicType func(topic string) string

// SameType is the default TopicType: the event type is the topic.
func SameType(topic string) string { return topic }

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Client publishes the events; the Publisher does not close it.
	// Required.
	Client *sdk.Client
	// EventType gives the event type of a topic (SameType when nil).
	// Subscribers must map topics the same way.
	EventType TopicType
	// Source is every event's source attribute (DefaultSource when empty).
	Source string
	// ContentType is every event's datacontenttype; empty leaves it unset.
	ContentType string
	// BatchSize is how many messages go in one atomic PublishBatch
	// (DefaultBatchSize when 0, at most MaxBatchSize).
	BatchSize int
	// MaxPushbackWait bounds the time one Publish waits while Switchyard
	// pushes back (a matching trigger's queue is full); 0: no bound but
	// the first message's context and Close.
	MaxPushbackWait time.Duration
}

func (c *PublisherConfig) setDefaults() {
	if c.EventType == nil {
		c.EventType = SameType
	}
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
}

// Validate reports every invalid field.
func (c PublisherConfig) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("the Client is required"))
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("BatchSize must be between 1 and %d, got %d", MaxBatchSize, c.BatchSize))
	}
	if c.MaxPushbackWait < 0 {
		errs = append(errs, errors.New("MaxPushbackWait must not be negative"))
	}
	return errors.Join(errs...)
}

// Publisher is a message.Publisher that publishes messages as CloudEvents
// to Switchyard (see the package documentation for the mapping). Publish
// returns once every message is durable; it is safe for concurrent use.
type Publisher struct {
	cfg     PublisherConfig
	log     wm.LoggerAdapter
	closing chan struct{}
	once    sync.Once
}

// NewPublisher returns a Publisher; logger may be nil.
func NewPublisher(cfg PublisherConfig, logger wm.LoggerAdapter) (*Publisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("switchyard watermill: publisher config: %w", err)
	}
	if logger == nil {
		logger = wm.NopLogger{}
	}
	return &Publisher{cfg: cfg, log: logger, closing: make(chan struct{})}, nil
}

// Publish publishes msgs on topic in atomic batches of BatchSize, in order,
// and returns once each batch is durable (or the first error: the batches
// before it are published, the rest are not). While Switchyard pushes back
// (a trigger's queue is full) it waits the delay Switchyard suggests and
// tries again: pushback is backpressure, not an error, until the first
// message's context ends, Close is called, or MaxPushbackWait passes.
// Invalid messages (no UUID, an event type that is not valid) are refused
// before anything is sent.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	select {
	case <-p.closing:
		return ErrClosed
	default:
	}
	if len(msgs) == 0 {
		return nil
	}
	typ := p.cfg.EventType(topic)
	if typ == "" {
		return fmt.Errorf("switchyard watermill: topic %q maps to an empty event type", topic)
	}
	evs := make([]event.Event, len(msgs))
	for i, m := range msgs {
		ev, err := toEvent(m, typ, p.cfg.Source, p.cfg.ContentType)
		if err != nil {
			return fmt.Errorf("switchyard watermill: message %d: %w", i, err)
		}
		evs[i] = ev
	}
	ctx, cancel := context.WithCancel(msgs[0].Context())
	defer cancel() // also ends the goroutine below
	go func() {
		select {
		case <-p.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for start := 0; start < len(evs); start += p.cfg.BatchSize {
		batch := evs[start:min(start+p.cfg.BatchSize, len(evs))]
		if err := p.publishBatch(ctx, topic, batch); err != nil {
			return err
		}
	}
	return nil
}

// publishBatch publishes one batch, waiting out pushback.
func (p *Publisher) publishBatch(ctx context.Context, topic string, batch []event.Event) error {
	var waited time.Duration
	for {
		err := p.cfg.Client.PublishBatch(ctx, batch)
		var pe *sdk.PushbackError
		if !errors.As(err, &pe) {
			if err != nil {
				return fmt.Errorf("switchyard watermill: publish %d messages on %q: %w", len(batch), topic, err)
			}
			return nil
		}
		d := max(pe.RetryAfter, 20*time.Millisecond)
		if p.cfg.MaxPushbackWait > 0 && waited+d > p.cfg.MaxPushbackWait {
			return fmt.Errorf("switchyard watermill: publish on %q: pushed back for longer than %s: %w", topic, p.cfg.MaxPushbackWait, err)
		}
		p.log.Debug("switchyard pushes back; waiting", wm.LogFields{"topic": topic, "trigger": pe.Trigger, "retry_after": d})
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			select {
			case <-p.closing:
				return fmt.Errorf("switchyard watermill: publish on %q: %w while pushed back: %w", topic, ErrClosed, err)
			default:
			}
			return fmt.Errorf("switchyard watermill: publish on %q: %w while pushed back: %w", topic, ctx.Err(), err)
		case <-t.C:
		}
		waited += d
	}
}

// Close stops the Publisher: Publish calls waiting on pushback return an
// error, later ones ErrClosed. Publishing is synchronous, so nothing is
// left to flush. It does not close the Client.
func (p *Publisher) Close() error {
	p.once.Do(func() { close(p.closing) })
	return nil
}
