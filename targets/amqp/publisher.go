package amqp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/targets"
)

func scheme(raw string) string {
	s, _, _ := strings.Cut(raw, "://")
	return strings.ToLower(s)
}

// hostPort returns the URI's host:port (5672, 5671 for amqps, by default).
func hostPort(raw string) string {
	u, err := amqp091.ParseURI(raw)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(u.Host, fmt.Sprint(u.Port))
}

func check(c targets.Config) []targets.FieldProblem {
	var out []targets.FieldProblem
	add := func(field, format string, a ...any) {
		out = append(out, targets.FieldProblem{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	raw := c.String(fieldURL)
	if err := targets.NoUserinfo(raw); err != nil {
		add(fieldURL, "%v", err)
	} else if s := scheme(raw); s != "amqp" && s != "amqps" {
		add(fieldURL, "scheme must be amqp:// or amqps://, not %q", s)
	} else if _, err := amqp091.ParseURI(raw); err != nil {
		add(fieldURL, "not an AMQP URI: %v", err)
	}
	if len(c.String(fieldExchange)) > 255 {
		add(fieldExchange, "at most 255 bytes")
	}
	if len(c.String(fieldRoutingKey)) > 255 {
		add(fieldRoutingKey, "at most 255 bytes")
	}
	if c.String(fieldPasswordSecret) != "" && c.String(fieldUser) == "" {
		add(fieldUser, "password_secret needs a user")
	}
	return out
}

func display(c targets.Config) string {
	u, err := amqp091.ParseURI(c.String(fieldURL))
	if err != nil {
		return "amqp (invalid URI)"
	}
	return fmt.Sprintf("%s://%s/%s exchange=%q", u.Scheme, net.JoinHostPort(u.Host, fmt.Sprint(u.Port)), strings.TrimPrefix(u.Vhost, "/"), c.String(fieldExchange))
}

// maxIdleChannels bounds the channels kept open between publishes.
const maxIdleChannels = 64

// dialTimeout bounds connecting to the broker, handshakes included.
const dialTimeout = 10 * time.Second

// publisher publishes on one connection, opened on first use and again
// after it is lost.
type publisher struct {
	uri        string
	cfg        amqp091.Config
	exchange   string
	key        string
	keyAttr    string
	mandatory  bool
	persistent bool

	dial    func(ctx context.Context, network, address string) (net.Conn, error)
	dialing chan struct{} // held (one slot) while a connection is dialed
	mu      sync.Mutex    // guards conn, idle and shut; never held across I/O
	conn    *amqp091.Connection
	idle    []*confirmChannel
	shut    bool
}

// confirmChannel is a channel in confirm mode with its returns and close
// notifications; it serves one publish at a time.
type confirmChannel struct {
	ch      *amqp091.Channel
	conn    *amqp091.Connection
	returns chan amqp091.Return
	closed  chan *amqp091.Error
}

// New builds the publisher; it connects on the first publish.
func New(_ context.Context, c targets.Config, env targets.Env) (targets.Publisher, error) {
	cfg := amqp091.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: amqp091.Table{"connection_name": "switchyard"},
	}
	if user := c.String(fieldUser); user != "" {
		var pw string
		if name := c.String(fieldPasswordSecret); name != "" {
			v, err := env.Secret(name)
			if err != nil {
				return nil, targets.Fail(targets.Misconfigured, err)
			}
			pw = v
		}
		cfg.SASL = []amqp091.Authentication{&amqp091.PlainAuth{Username: user, Password: pw}}
	}
	if scheme(c.String(fieldURL)) == "amqps" {
		u, _ := amqp091.ParseURI(c.String(fieldURL))
		cfg.TLSClientConfig = env.TLS(u.Host)
	}
	return &publisher{
		uri: c.String(fieldURL), cfg: cfg, dial: env.Dial, dialing: make(chan struct{}, 1),
		exchange: c.String(fieldExchange), key: c.String(fieldRoutingKey), keyAttr: c.String(fieldRoutingKeyAttribute),
		mandatory: c.Bool(fieldMandatory), persistent: c.Bool(fieldPersistent),
	}, nil
}

// Publish implements targets.Publisher.
func (p *publisher) Publish(ctx context.Context, ev *pb.CloudEvent) error {
	cc, err := p.channel(ctx)
	if err != nil {
		return err
	}
	key := p.key
	if p.keyAttr != "" {
		if v, ok := cloudevent.Attribute(ev, p.keyAttr); ok {
			key = v
		}
	}
	dc, err := cc.ch.PublishWithDeferredConfirmWithContext(ctx, p.exchange, key, p.mandatory, false, Publishing(ev, p.persistent))
	if err != nil {
		p.discard(cc)
		return cc.failure(ctx, err)
	}
	ack, err := dc.WaitContext(ctx)
	if err != nil {
		p.discard(cc) // a confirm is outstanding on it
		return targets.Failf(targets.Timeout, "no publisher confirm before the attempt's deadline: %v", context.Cause(ctx))
	}
	if !ack {
		p.discard(cc)
		return cc.failure(ctx, errors.New("RabbitMQ refused the message (basic.nack)"))
	}
	// RabbitMQ sends basic.return before the basic.ack of a mandatory
	// message it could not route, and amqp091 hands frames over in order:
	// a return, if any, is in the buffer by now.
	select {
	case r := <-cc.returns:
		p.release(cc)
		return targets.Failf(targets.NotFound, "RabbitMQ returned the message: %d %s (exchange %q, routing key %q: no queue is bound to receive it)", r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
	default:
	}
	p.release(cc)
	return nil
}

// channel returns an idle confirm channel or opens one, connecting first
// when there is no live connection. One publish dials at a time; the others
// wait for it within their own deadline.
func (p *publisher) channel(ctx context.Context) (*confirmChannel, error) {
	if cc, conn, err := p.idleChannel(); cc != nil || err != nil {
		return cc, err
	} else if conn != nil {
		return p.open(conn)
	}
	select {
	case p.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, targets.Failf(targets.Timeout, "waiting for the connection to the broker: %v", context.Cause(ctx))
	}
	defer func() { <-p.dialing }()
	if cc, conn, err := p.idleChannel(); cc != nil || err != nil { // another publish connected meanwhile
		return cc, err
	} else if conn != nil {
		return p.open(conn)
	}
	// Dialed within the attempt's deadline (at most dialTimeout), through
	// the egress guard; the deadline also bounds the TLS and AMQP
	// handshakes, and amqp091 clears it once the connection is open.
	cfg := p.cfg
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		conn, err := p.dial(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		deadline, _ := dctx.Deadline()
		_ = conn.SetDeadline(deadline)
		return conn, nil
	}
	conn, err := amqp091.DialConfig(p.uri, cfg)
	if err != nil {
		return nil, classifyDial(err)
	}
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		_ = conn.Close()
		return nil, targets.Failf(targets.Unreachable, "publisher closed")
	}
	p.conn = conn
	p.mu.Unlock()
	return p.open(conn)
}

// idleChannel returns an idle channel of the live connection, or the live
// connection to open one on, or neither when there is none.
func (p *publisher) idleChannel() (*confirmChannel, *amqp091.Connection, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return nil, nil, targets.Failf(targets.Unreachable, "publisher closed")
	}
	for len(p.idle) > 0 {
		cc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if !cc.ch.IsClosed() && !cc.conn.IsClosed() {
			return cc, nil, nil
		}
	}
	if p.conn != nil && !p.conn.IsClosed() {
		return nil, p.conn, nil
	}
	return nil, nil, nil
}

// open opens a channel in confirm mode on conn.
func (p *publisher) open(conn *amqp091.Connection) (*confirmChannel, error) {
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close() // the next publish dials again
		return nil, classifyDial(err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, classifyDial(err)
	}
	cc := &confirmChannel{ch: ch, conn: conn, returns: make(chan amqp091.Return, 1), closed: make(chan *amqp091.Error, 1)}
	ch.NotifyReturn(cc.returns)
	ch.NotifyClose(cc.closed)
	return cc, nil
}

// release puts a channel back for the next publish.
func (p *publisher) release(cc *confirmChannel) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut || len(p.idle) >= maxIdleChannels || cc.ch.IsClosed() {
		_ = cc.ch.Close()
		return
	}
	p.idle = append(p.idle, cc)
}

// discard closes a channel that may not serve another publish.
func (p *publisher) discard(cc *confirmChannel) { _ = cc.ch.Close() }

// Close implements targets.Publisher.
func (p *publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shut = true
	for _, cc := range p.idle {
		_ = cc.ch.Close()
	}
	p.idle = nil
	if p.conn != nil {
		return p.conn.Close()
	}
	return nil
}

// failure classifies a failed publish on cc: the reason RabbitMQ gave
// when it closed the channel, if it did.
func (cc *confirmChannel) failure(ctx context.Context, err error) error {
	var reason *amqp091.Error
	select {
	case reason = <-cc.closed:
	case <-time.After(100 * time.Millisecond):
		// A nack or a write error without a close: no reason to wait for.
	case <-ctx.Done():
	}
	if reason != nil {
		return classifyAMQP(reason)
	}
	var ae *amqp091.Error
	if errors.As(err, &ae) {
		return classifyAMQP(ae)
	}
	if errors.Is(err, amqp091.ErrClosed) {
		return targets.Fail(targets.Unreachable, err)
	}
	return targets.Fail(targets.Unavailable, err)
}

// classifyDial classifies a failure to connect or open a channel.
func classifyDial(err error) error {
	var ae *amqp091.Error
	if errors.As(err, &ae) {
		return classifyAMQP(ae)
	}
	if errors.Is(err, amqp091.ErrCredentials) || errors.Is(err, amqp091.ErrSASL) {
		return targets.Fail(targets.Unauthorized, err)
	}
	if errors.Is(err, amqp091.ErrVhost) {
		return targets.Fail(targets.NotFound, err)
	}
	if errors.Is(err, amqp091.ErrClosed) {
		return targets.Fail(targets.Unreachable, err)
	}
	return targets.Fail(targets.FailureOf(err), err)
}

// classifyAMQP classifies an AMQP reply code the broker sent (AMQP 0-9-1
// §1.2 constants), or an error amqp091 raised itself.
func classifyAMQP(e *amqp091.Error) error {
	err := fmt.Errorf("%d %s", e.Code, e.Reason)
	if !e.Server {
		// amqp091 reports a failed read or write of the connection as a
		// 501 frame error of its own making: the broker went away.
		return targets.Fail(targets.Unreachable, fmt.Errorf("connection lost: %s", e.Reason))
	}
	switch e.Code {
	case amqp091.NotFound: // no such exchange (or vhost)
		return targets.Fail(targets.NotFound, err)
	case amqp091.AccessRefused, amqp091.NotAllowed: // permissions, login, vhost access
		return targets.Fail(targets.Unauthorized, err)
	case amqp091.PreconditionFailed, amqp091.ContentTooLarge, amqp091.FrameError, amqp091.SyntaxError, amqp091.CommandInvalid:
		return targets.Fail(targets.Rejected, err)
	case amqp091.ConnectionForced: // the broker is shutting down, or an operator closed the connection
		return targets.Fail(targets.Unreachable, err)
	case amqp091.ResourceLocked, amqp091.ResourceError, amqp091.InternalError, amqp091.ChannelError, amqp091.UnexpectedFrame:
		return targets.Fail(targets.Unavailable, err)
	}
	return targets.Fail(targets.Unavailable, err)
}

// Publishing is the AMQP message of an event (the binding's binary mode).
func Publishing(ev *pb.CloudEvent, persistent bool) amqp091.Publishing {
	h := amqp091.Table{}
	for _, a := range targets.Attributes(ev) {
		switch v := a.Value.(type) {
		case bool, int32, []byte:
			h[attrPrefix+a.Name] = v
		default: // strings, URIs and timestamps (see the Layout)
			h[attrPrefix+a.Name] = a.Text
		}
	}
	m := amqp091.Publishing{Headers: h, ContentType: targets.ContentType(ev), MessageId: ev.GetId(), Body: cloudevent.Data(ev)}
	if persistent {
		m.DeliveryMode = amqp091.Persistent
	}
	return m
}
