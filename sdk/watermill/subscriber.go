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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// Client pulls the events; the Subscriber does not close it. Required.
	Client *sdk.Client
	// ConsumerGroup names the subscribers that share a topic's messages:
	// Subscribers of one group compete for them, each group gets every
	// message. DefaultConsumerGroup when empty.
	ConsumerGroup string
	// EventType gives the event type of a topic (SameType when nil), as
	// the Publishers map it.
	EventType TopicType
	// TriggerName names the pull trigger of a consumer group and topic
	// (TriggerName when nil).
	TriggerName func(group, topic string) string
	// Delivery is the delivery policy of the triggers the Subscriber
	// creates (timeout is the lease, extended while a message waits for
	// its Ack; max_attempts counts Nacks). Nil: the server's defaults.
	Delivery *switchyardv1.DeliveryPolicy
	// DoNotCreateTriggers makes Subscribe use the topic's trigger without
	// checking or creating it: for credentials that may consume but not
	// change triggers (role consumer), the trigger made by an operator.
	DoNotCreateTriggers bool
	// NackDelay is the least delay before a Nacked message comes again;
	// 0: the trigger's backoff.
	NackDelay time.Duration
	// DrainTimeout bounds how long, once a Subscribe's context is done, the
	// message given out waits for its Ack or Nack (DefaultDrainTimeout
	// when 0). Close does not wait: it hands the message back.
	DrainTimeout time.Duration
}

func (c *SubscriberConfig) setDefaults() {
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = DefaultConsumerGroup
	}
	if c.EventType == nil {
		c.EventType = SameType
	}
	if c.TriggerName == nil {
		c.TriggerName = TriggerName
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
}

// Validate reports every invalid field.
func (c SubscriberConfig) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("the Client is required"))
	}
	if c.NackDelay < 0 {
		errs = append(errs, errors.New("NackDelay must not be negative"))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, errors.New("DrainTimeout must not be negative"))
	}
	return errors.Join(errs...)
}

// Subscriber is a message.Subscriber on Switchyard's pull triggers (see the
// package documentation). It is safe for concurrent use.
type Subscriber struct {
	cfg     SubscriberConfig
	log     wm.LoggerAdapter
	closing chan struct{}
	once    sync.Once
	mu      sync.Mutex
	subs    sync.WaitGroup // running subscriptions
	ensured map[string]bool
}

var (
	errNacked = errors.New("nacked")
	errClosed = errors.New("subscriber closed before the message was acknowledged")
)

// NewSubscriber returns a Subscriber; logger may be nil.
func NewSubscriber(cfg SubscriberConfig, logger wm.LoggerAdapter) (*Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("switchyard watermill: subscriber config: %w", err)
	}
	if logger == nil {
		logger = wm.NopLogger{}
	}
	return &Subscriber{cfg: cfg, log: logger, closing: make(chan struct{}), ensured: map[string]bool{}}, nil
}

// SubscribeInitialize makes sure the pull trigger of topic (and the
// consumer group) exists, creating it when missing, so that messages
// published from now on wait for the group's subscribers. Publishing to a
// topic no group subscribed to drops the messages, as in Switchyard every
// event that matches no trigger is dropped.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.ensure(ctx, topic)
	return err
}

// ensure returns the name of the topic's trigger, creating it when needed.
func (s *Subscriber) ensure(ctx context.Context, topic string) (string, error) {
	typ := s.cfg.EventType(topic)
	if typ == "" {
		return "", fmt.Errorf("switchyard watermill: topic %q maps to an empty event type", topic)
	}
	name := s.cfg.TriggerName(s.cfg.ConsumerGroup, topic)
	if s.cfg.DoNotCreateTriggers {
		return name, nil
	}
	s.mu.Lock()
	done := s.ensured[name]
	s.mu.Unlock()
	if done {
		return name, nil
	}
	t, err := s.cfg.Client.GetTrigger(ctx, name)
	if status.Code(err) == codes.NotFound {
		_, err = s.cfg.Client.Triggers().CreateTrigger(ctx, &switchyardv1.CreateTriggerRequest{Trigger: &switchyardv1.Trigger{
			Name:        name,
			Description: fmt.Sprintf("Watermill subscribers of topic %q, consumer group %q", topic, s.cfg.ConsumerGroup),
			Filter:      &switchyardv1.Filter{Attributes: map[string]string{"type": typ}},
			Target:      &switchyardv1.Target{Kind: &switchyardv1.Target_Pull{Pull: &switchyardv1.PullTarget{}}},
			Delivery:    s.cfg.Delivery,
		}})
		if status.Code(err) == codes.AlreadyExists { // another subscriber was first
			t, err = s.cfg.Client.GetTrigger(ctx, name)
		} else if err == nil {
			t = &switchyardv1.Trigger{Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Pull{Pull: &switchyardv1.PullTarget{}}}}
		}
	}
	if err != nil {
		return "", fmt.Errorf("switchyard watermill: trigger %q of topic %q: %w", name, topic, err)
	}
	if t.GetTarget().GetPull() == nil {
		return "", fmt.Errorf("switchyard watermill: trigger %q of topic %q exists and is not a pull trigger", name, topic)
	}
	s.mu.Lock()
	s.ensured[name] = true
	s.mu.Unlock()
	return name, nil
}

// Subscribe returns the messages of topic for the Subscriber's consumer
// group, creating the group's pull trigger if needed. One message is given
// out at a time: the next comes once it is acknowledged (Ack: delivered) or
// Nacked (it comes again after NackDelay or the trigger's backoff; the
// attempt counts toward the trigger's max_attempts, after which it is
// dead-lettered). Each message's context carries ctx's values and the
// attempt's function.Info (function.FromContext: attempt number,
// idempotency key); it is cancelled after Ack or Nack, when the message's
// lease is lost, and on Close.
//
// When ctx is done the channel is closed once the message given out (if
// any) is answered, at most DrainTimeout later; a message not yet taken
// from the channel is handed back without counting an attempt.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, ErrClosed
	default:
	}
	name, err := s.ensure(ctx, topic)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	select {
	case <-s.closing:
		s.mu.Unlock()
		return nil, ErrClosed
	default:
	}
	s.subs.Add(1)
	s.mu.Unlock()
	out := make(chan *message.Message)
	subCtx, cancel := context.WithCancel(ctx)
	log := s.log.With(wm.LogFields{"topic": topic, "trigger": name, "consumer_group": s.cfg.ConsumerGroup})
	go func() {
		defer s.subs.Done()
		defer close(out)
		defer cancel()
		go func() { // Close cancels the subscription
			select {
			case <-s.closing:
				cancel()
			case <-subCtx.Done():
			}
		}()
		h := func(hctx context.Context, ev event.Event) error { return s.handle(subCtx, hctx, ev, out) }
		err := s.cfg.Client.Subscribe(subCtx, name, h, sdk.SubscribeOptions{
			Concurrency: 1, Consumer: "watermill/" + s.cfg.ConsumerGroup, DrainTimeout: s.cfg.DrainTimeout,
		})
		if err != nil {
			log.Error("switchyard subscription ended", err, nil)
		}
	}()
	return out, nil
}

// handle gives one event out as a message and waits for its answer.
func (s *Subscriber) handle(subCtx, hctx context.Context, ev event.Event, out chan<- *message.Message) error {
	msg := toMessage(ev)
	mctx, cancel := context.WithCancel(hctx)
	defer cancel()
	msg.SetContext(mctx)
	select {
	case out <- msg:
	case <-subCtx.Done():
		return sdk.Release(errClosed) // never given out
	case <-hctx.Done():
		return hctx.Err()
	}
	select {
	case <-msg.Acked():
		return nil
	case <-msg.Nacked():
		return function.RetryAfter(s.cfg.NackDelay, errNacked)
	case <-s.closing:
		return errClosed // retried after the trigger's backoff
	case <-hctx.Done(): // lease lost, or the drain after ctx ended timed out
		return hctx.Err()
	}
}

// Close closes every subscription: a message given out and not yet
// answered is handed back (retried, the attempt counted), one not yet taken
// is handed back uncounted, and the channels are closed before Close
// returns. It does not close the Client.
func (s *Subscriber) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		close(s.closing)
		s.mu.Unlock()
	})
	s.subs.Wait()
	return nil
}
