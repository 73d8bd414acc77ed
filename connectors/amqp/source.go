package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// Connection tuning.
const (
	heartbeat        = 10 * time.Second
	handshakeTimeout = 30 * time.Second
)

// binding is one queue binding: exchange and routing key.
type binding struct{ exchange, key string }

// Source consumes one queue. Connect opens a connection and a channel and
// starts the consumer; Read hands over deliveries; each message's Ack
// acknowledges (or rejects with requeue) its delivery on the channel it
// came from. Close closes the connection, which makes RabbitMQ requeue
// every delivery not yet acknowledged.
type Source struct {
	name     string
	url      string
	queue    string
	declare  bool
	bindings []binding
	prefetch int
	tag      string
	dec      decoder
	log      *slog.Logger

	// The live connection; set by Connect, cleared by Close. Only the
	// Runner's goroutine touches them (acks use the delivery's channel).
	conn       *amqp091.Connection
	deliveries <-chan amqp091.Delivery
	chClosed   chan *amqp091.Error
}

// New builds an amqp source from its validated fields.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, url: cfg.String(fieldURL), queue: cfg.String(fieldQueue), declare: cfg.Bool(fieldDeclare),
		prefetch: cfg.Int(fieldPrefetch), tag: cfg.String(fieldConsumerTag), log: env.Logger,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	uri, err := amqp091.ParseURI(s.url)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // url.Error quotes the URI, password included
			err = ue.Err
		}
		return nil, fmt.Errorf("fields.%s: not a valid AMQP URI (amqp://user:password@host:port/vhost): %w", fieldURL, err)
	}
	if s.queue == "" {
		return nil, fmt.Errorf("fields.%s: must not be empty", fieldQueue)
	}
	if s.prefetch < 1 || s.prefetch > 65535 {
		return nil, fmt.Errorf("fields.%s: %d: want 1 to 65535", fieldPrefetch, s.prefetch)
	}
	for i, b := range cfg.StringList(fieldBindings) {
		ex, key, _ := strings.Cut(b, ":")
		if ex == "" {
			return nil, fmt.Errorf("fields.%s[%d]: %q: want exchange:routing-key with a non-empty exchange (the default exchange cannot be bound)", fieldBindings, i, b)
		}
		s.bindings = append(s.bindings, binding{exchange: ex, key: key})
	}
	if s.tag == "" {
		s.tag = "switchyard-" + env.Name
	}
	src := cfg.String(fieldSource)
	if src == "" {
		src = defaultSource(uri, s.queue)
	}
	typ := cfg.String(fieldType)
	if err := wrap.CheckSourceType(src, typ, fieldSource, fieldType); err != nil {
		return nil, err
	}
	s.dec = decoder{queue: s.queue, typ: typ, source: src, now: time.Now}
	return s, nil
}

// defaultSource is amqp[s]://host:port/vhost/queue, without credentials.
func defaultSource(u amqp091.URI, queue string) string {
	return u.Scheme + "://" + net.JoinHostPort(u.Host, strconv.Itoa(u.Port)) + "/" + url.PathEscape(u.Vhost) + "/" + url.PathEscape(queue)
}

// Connect implements connectors.Source: it dials the broker, opens a
// channel, declares the queue if asked and missing, creates the bindings,
// sets the prefetch window and starts consuming without auto-ack.
func (s *Source) Connect(ctx context.Context) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	s.conn = conn
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if s.declare {
		if ch, err = s.ensureQueue(ch); err != nil {
			return err
		}
	}
	for _, b := range s.bindings {
		if err := ch.QueueBind(s.queue, b.key, b.exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %q to exchange %q with key %q: %w", s.queue, b.exchange, b.key, err)
		}
	}
	if err := ch.Qos(s.prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch %d: %w", s.prefetch, err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	deliveries, err := ch.Consume(s.queue, s.tag, false, false, false, false, nil)
	if err != nil {
		var ae *amqp091.Error
		if errors.As(err, &ae) && ae.Code == amqp091.NotFound {
			return fmt.Errorf("queue %q does not exist (set %s: true to declare it): %w", s.queue, fieldDeclare, err)
		}
		return fmt.Errorf("consume queue %q: %w", s.queue, err)
	}
	s.deliveries, s.chClosed = deliveries, closed
	return nil
}

// dial opens the connection. ctx bounds the TCP connect and the AMQP
// handshake (at most handshakeTimeout), not the connection's life.
func (s *Source) dial(ctx context.Context) (*amqp091.Connection, error) {
	props := amqp091.NewConnectionProperties()
	props.SetClientConnectionName("switchyard/" + s.name)
	var raw atomic.Pointer[net.Conn]
	cfg := amqp091.Config{Heartbeat: heartbeat, Locale: "en_US", Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			deadline := time.Now().Add(handshakeTimeout)
			if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
				deadline = dl
			}
			// amqp091 clears the deadline once the handshake is done.
			if err := c.SetDeadline(deadline); err != nil {
				_ = c.Close()
				return nil, err
			}
			raw.Store(&c)
			return c, nil
		}}
	// Cancelling ctx interrupts a handshake in progress.
	stop := context.AfterFunc(ctx, func() {
		if c := raw.Load(); c != nil {
			_ = (*c).SetDeadline(time.Unix(1, 0))
		}
	})
	conn, err := amqp091.DialConfig(s.url, cfg)
	if !stop() && err == nil { // ctx ended during the handshake: the connection may be broken
		_ = conn.Close()
		return nil, fmt.Errorf("connect to the broker: %w", ctx.Err())
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("connect to the broker: %w", err)
	}
	return conn, nil
}

// ensureQueue declares the queue durable if it does not exist. A passive
// declare that fails closes the channel, so a new one is returned.
func (s *Source) ensureQueue(ch *amqp091.Channel) (*amqp091.Channel, error) {
	_, err := ch.QueueDeclarePassive(s.queue, true, false, false, false, nil)
	if err == nil {
		return ch, nil
	}
	var ae *amqp091.Error
	if !errors.As(err, &ae) || ae.Code != amqp091.NotFound {
		return nil, fmt.Errorf("check queue %q: %w", s.queue, err)
	}
	if ch, err = s.conn.Channel(); err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if _, err := ch.QueueDeclare(s.queue, true, false, false, false, nil); err != nil {
		return nil, fmt.Errorf("declare queue %q: %w", s.queue, err)
	}
	s.log.Info("declared durable queue", "queue", s.queue)
	return ch, nil
}

// Read implements connectors.Source. A delivery left unread when ctx ends
// stays buffered for the next Read (and, unacknowledged, is requeued by the
// broker if the connection closes first).
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	if s.deliveries == nil {
		return nil, fmt.Errorf("%w: not consuming", connectors.ErrNotConnected)
	}
	select {
	case d, ok := <-s.deliveries:
		if !ok {
			reason := "consumer cancelled (queue deleted?)"
			select {
			case e := <-s.chClosed:
				if e != nil {
					reason = e.Error()
				}
			default:
			}
			s.deliveries = nil
			return nil, fmt.Errorf("%w: channel closed: %s", connectors.ErrNotConnected, reason)
		}
		return s.message(&d), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// message converts a delivery and binds its acknowledgement.
func (s *Source) message(d *amqp091.Delivery) *connectors.Message {
	ev, notCE := s.dec.decode(d)
	if notCE != nil {
		s.log.Warn("message is not a valid CloudEvent; wrapped as a plain message", "event_id", ev.GetId(), "err", notCE)
	}
	var acked atomic.Bool
	tag := d.DeliveryTag
	ack := d.Acknowledger
	return &connectors.Message{Event: ev, Position: ev.GetId(), Ack: func(_ context.Context, err error) error {
		if !acked.CompareAndSwap(false, true) {
			return fmt.Errorf("delivery %d acknowledged twice", tag)
		}
		if err == nil {
			if aerr := ack.Ack(tag, false); aerr != nil {
				return fmt.Errorf("ack delivery %d: %w", tag, aerr)
			}
			return nil
		}
		if nerr := ack.Nack(tag, false, true); nerr != nil {
			return fmt.Errorf("nack delivery %d (RabbitMQ requeues it when the channel closes): %w", tag, nerr)
		}
		return nil
	}}
}

// Close implements connectors.Source: closing the connection makes
// RabbitMQ requeue every unacknowledged delivery.
func (s *Source) Close(ctx context.Context) error {
	conn := s.conn
	s.conn, s.deliveries, s.chClosed = nil, nil, nil
	if conn == nil {
		return nil
	}
	var err error
	if dl, ok := ctx.Deadline(); ok {
		err = conn.CloseDeadline(dl)
	} else {
		err = conn.Close()
	}
	if err != nil && !errors.Is(err, amqp091.ErrClosed) {
		return fmt.Errorf("close connection: %w", err)
	}
	return nil
}

var _ connectors.Source = (*Source)(nil)
