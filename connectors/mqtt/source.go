package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// subscriptionsKey is the checkpoint key of the recorded subscriptions.
const subscriptionsKey = "subscriptions"

// errClosed is the cause of a link closed by the source itself.
var errClosed = errors.New("connection closed by the source")

// client is one connection to the broker, by protocol version.
type client interface {
	// connect opens the connection and the MQTT session; it reports
	// whether the broker resumed an existing session.
	connect(ctx context.Context) (sessionPresent bool, err error)
	subscribe(ctx context.Context, filters []string) error
	unsubscribe(ctx context.Context, filters []string) error
	// disconnect sends DISCONNECT (the session is kept) and closes the
	// connection. It may be called more than once.
	disconnect()
}

// link is what a connection shares with the source: the messages it
// received, and whether it is still usable.
type link struct {
	msgs chan *inbound
	dead chan struct{}
	once sync.Once
	err  error // why dead was closed; written once before the close
}

func newLink(buffer int) *link {
	return &link{msgs: make(chan *inbound, buffer), dead: make(chan struct{})}
}

// kill marks the connection unusable: nothing more is handed over or
// acknowledged on it. The first cause wins.
func (l *link) kill(err error) {
	l.once.Do(func() { l.err = err; close(l.dead) })
}

func (l *link) alive() bool {
	select {
	case <-l.dead:
		return false
	default:
		return true
	}
}

// deliver hands a received message to Read; it gives up once the
// connection is dead (the message, unacknowledged, will be redelivered).
func (l *link) deliver(m *inbound) {
	select {
	case l.msgs <- m:
	case <-l.dead:
	}
}

// Source subscribes to topics with a persistent session.
type Source struct {
	name          string
	broker        *url.URL
	topics        []string
	clientID      string
	qos           byte
	version       int
	username      string
	password      string
	keepAlive     time.Duration
	sessionExpiry time.Duration
	maxInflight   int
	dec           decoder
	log           *slog.Logger
	cp            connectors.Checkpoints

	// The live connection, set by Connect and cleared by Close; only the
	// Runner's goroutine touches these fields.
	client client
	link   *link
}

// New builds an mqtt source from its validated fields.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, topics: cfg.StringList(fieldTopics), clientID: cfg.String(fieldClientID),
		version: cfg.Int(fieldProtocolVersion), username: cfg.String(fieldUsername), password: cfg.String(fieldPassword),
		keepAlive: cfg.Duration(fieldKeepAlive), sessionExpiry: cfg.Duration(fieldSessionExpiry),
		maxInflight: cfg.Int(fieldMaxInflight), log: env.Logger, cp: env.Checkpoints,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	u, err := parseBrokerURL(cfg.String(fieldURL))
	if err != nil {
		return nil, fmt.Errorf("fields.%s: %w", fieldURL, err)
	}
	s.broker = u
	if len(s.topics) == 0 {
		return nil, fmt.Errorf("fields.%s: give at least one topic filter", fieldTopics)
	}
	seen := map[string]bool{}
	for i, f := range s.topics {
		if err := checkFilter(f); err != nil {
			return nil, fmt.Errorf("fields.%s[%d]: %q: %w", fieldTopics, i, f, err)
		}
		if seen[f] {
			return nil, fmt.Errorf("fields.%s[%d]: %q is listed twice", fieldTopics, i, f)
		}
		seen[f] = true
	}
	if s.clientID == "" || !utf8.ValidString(s.clientID) || len(s.clientID) > 65535 || strings.ContainsRune(s.clientID, 0) {
		return nil, fmt.Errorf("fields.%s: %q: want a non-empty UTF-8 string (the persistent session is kept under it)", fieldClientID, s.clientID)
	}
	switch q := cfg.Int(fieldQoS); q {
	case 1, 2:
		s.qos = byte(q)
	default:
		return nil, fmt.Errorf("fields.%s: %d: want 1 or 2 (QoS 0 messages are neither queued nor redelivered)", fieldQoS, q)
	}
	if s.version != 4 && s.version != 5 {
		return nil, fmt.Errorf("fields.%s: %d: want 4 (MQTT 3.1.1) or 5", fieldProtocolVersion, s.version)
	}
	if s.keepAlive < 0 || s.keepAlive > math.MaxUint16*time.Second || s.keepAlive%time.Second != 0 {
		return nil, fmt.Errorf("fields.%s: %s: want whole seconds from 0 to 18h12m15s", fieldKeepAlive, s.keepAlive)
	}
	if s.sessionExpiry < time.Second || s.sessionExpiry > math.MaxUint32*time.Second {
		return nil, fmt.Errorf("fields.%s: %s: want at least 1s (a session that ends with the connection loses the messages published meanwhile)", fieldSessionExpiry, s.sessionExpiry)
	}
	if s.maxInflight < 1 || s.maxInflight > math.MaxUint16 {
		return nil, fmt.Errorf("fields.%s: %d: want 1 to 65535", fieldMaxInflight, s.maxInflight)
	}
	ct := cfg.String(fieldContentType)
	if ct != "" && !cloudevent.ValidMediaType(ct) {
		return nil, fmt.Errorf("fields.%s: %q is not a media type", fieldContentType, ct)
	}
	src := cfg.String(fieldSource)
	if src == "" {
		scheme := "mqtt"
		if isTLS(u.Scheme) {
			scheme = "mqtts"
		}
		src = scheme + "://" + u.Host
	}
	typ := cfg.String(fieldType)
	if err := wrap.CheckSourceType(src, typ, fieldSource, fieldType); err != nil {
		return nil, err
	}
	s.dec = decoder{typ: typ, source: src, contentType: ct, idProperty: cfg.String(fieldIDProperty), now: time.Now}
	return s, nil
}

func isTLS(scheme string) bool { return scheme == "ssl" || scheme == "tls" || scheme == "mqtts" }

// parseBrokerURL checks the scheme and fills in the default port.
func parseBrokerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.User != nil {
		return nil, errors.New("put credentials in the username and password fields, not in the URL")
	}
	port := "1883"
	switch u.Scheme {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts":
		port = "8883"
	default:
		return nil, fmt.Errorf("scheme %q: want tcp, mqtt, ssl, tls or mqtts", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("no host")
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New("want scheme://host:port only")
	}
	u.Path = ""
	return u, nil
}

// checkFilter validates an MQTT topic filter.
func checkFilter(f string) error {
	if f == "" || len(f) > 65535 || !utf8.ValidString(f) || strings.ContainsRune(f, 0) {
		return errors.New("want a non-empty UTF-8 topic filter")
	}
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		group, filter, ok := strings.Cut(rest, "/")
		if !ok || group == "" || strings.ContainsAny(group, "+#") || filter == "" {
			return errors.New("a shared subscription is $share/{group}/{filter}")
		}
		f = filter
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return errors.New("'#' must be the last level")
		case l != "#" && l != "+" && strings.ContainsAny(l, "+#"):
			return errors.New("wildcards must occupy a whole level")
		}
	}
	return nil
}

// bufferSize bounds the messages received and not yet read. It exceeds
// what a broker sends unacknowledged (max_inflight for MQTT 5; brokers'
// own limits, Mosquitto 20, for 3.1.1), so the network reader never
// blocks on it and keep-alives keep flowing while Switchyard pushes back.
func (s *Source) bufferSize() int { return max(s.maxInflight, 1024) }

// Connect implements connectors.Source: it opens the persistent session
// and subscribes as needed. Messages the broker kept for the session may
// arrive as soon as the session is resumed.
func (s *Source) Connect(ctx context.Context) error {
	l := newLink(s.bufferSize())
	var c client
	if s.version == 5 {
		c = &client5{s: s, l: l}
	} else {
		c = &client4{s: s, l: l}
	}
	s.client, s.link = c, l // so that Close cleans up after a failure below
	present, err := c.connect(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s as %q: %w", s.broker.Redacted(), s.clientID, err)
	}
	if err := s.syncSubscriptions(ctx, c, present); err != nil {
		return err
	}
	return nil
}

// subscriptions is the checkpointed record of what the session subscribes.
type subscriptions struct {
	ClientID string   `json:"client_id"`
	QoS      byte     `json:"qos"`
	Topics   []string `json:"topics"`
}

// syncSubscriptions subscribes to the configured filters, unless the broker
// resumed a session already subscribed to exactly them (re-subscribing
// makes an MQTT 3.1.1 broker resend retained messages); filters recorded
// but no longer configured are unsubscribed.
func (s *Source) syncSubscriptions(ctx context.Context, c client, sessionPresent bool) error {
	want := subscriptions{ClientID: s.clientID, QoS: s.qos, Topics: slices.Sorted(slices.Values(s.topics))}
	var had subscriptions
	if s.cp != nil {
		b, err := s.cp.Get(ctx, subscriptionsKey)
		if err != nil {
			return fmt.Errorf("read the recorded subscriptions: %w", err)
		}
		if b != nil {
			if err := json.Unmarshal(b, &had); err != nil {
				s.log.Warn("recorded subscriptions unreadable; subscribing again", "err", err)
				had = subscriptions{}
			}
		}
	}
	if had.ClientID != s.clientID {
		had = subscriptions{} // another session's record
	}
	if sessionPresent && had.QoS == want.QoS && slices.Equal(had.Topics, want.Topics) {
		return nil
	}
	if sessionPresent {
		var stale []string
		for _, f := range had.Topics {
			if !slices.Contains(want.Topics, f) {
				stale = append(stale, f)
			}
		}
		if len(stale) > 0 {
			if err := c.unsubscribe(ctx, stale); err != nil {
				return fmt.Errorf("unsubscribe from %q: %w", stale, err)
			}
			s.log.Info("unsubscribed from filters no longer configured", "topics", stale)
		}
	}
	if err := c.subscribe(ctx, want.Topics); err != nil {
		return fmt.Errorf("subscribe to %q: %w", want.Topics, err)
	}
	if s.cp != nil {
		b, _ := json.Marshal(want)
		if err := s.cp.Set(ctx, subscriptionsKey, b); err != nil {
			// Harmless: the next connect subscribes again.
			s.log.Warn("could not record the subscriptions", "err", err)
		}
	}
	return nil
}

// Read implements connectors.Source. A message left unread when ctx ends
// stays buffered for the next Read.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	l := s.link
	if l == nil {
		return nil, fmt.Errorf("%w: not connected", connectors.ErrNotConnected)
	}
	// A dead connection's buffered messages are not handed out: their
	// acknowledgements could not be sent, and the broker sends them again.
	if !l.alive() {
		return nil, fmt.Errorf("%w: %v", connectors.ErrNotConnected, l.err)
	}
	select {
	case m := <-l.msgs:
		return s.message(l, m), nil
	case <-l.dead:
		return nil, fmt.Errorf("%w: %v", connectors.ErrNotConnected, l.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// message converts a received message and binds its acknowledgement.
func (s *Source) message(l *link, m *inbound) *connectors.Message {
	ev, notCE := s.dec.decode(m)
	if notCE != nil {
		s.log.Warn("message is not a valid CloudEvent; wrapped as a plain message", "topic", m.topic, "event_id", ev.GetId(), "err", notCE)
	}
	c := s.client
	var acked atomic.Bool
	return &connectors.Message{Event: ev, Position: ev.GetId(), Ack: func(_ context.Context, err error) error {
		if !acked.CompareAndSwap(false, true) {
			return fmt.Errorf("message %s acknowledged twice", ev.GetId())
		}
		if err != nil {
			// MQTT has no negative acknowledgement: leave this message
			// (and every later one) unacknowledged and drop the
			// connection; the broker sends them again once the source
			// reconnects and resumes the session.
			if l.alive() {
				s.log.Info("event refused; reconnecting so that the broker redelivers", "event_id", ev.GetId(), "err", err)
			}
			l.kill(fmt.Errorf("an event was refused (%v); reconnecting for redelivery", err))
			c.disconnect()
			return nil
		}
		if !l.alive() {
			return fmt.Errorf("connection gone before the acknowledgement (%v): the broker will redeliver the message", l.err)
		}
		if aerr := m.ack(); aerr != nil {
			return fmt.Errorf("acknowledge: %w", aerr)
		}
		return nil
	}}
}

// Close implements connectors.Source: it disconnects, keeping the session;
// the broker redelivers whatever was not acknowledged.
func (s *Source) Close(context.Context) error {
	c, l := s.client, s.link
	s.client, s.link = nil, nil
	if c == nil {
		return nil
	}
	l.kill(errClosed) // first: it releases a handler waiting to hand over a message
	c.disconnect()
	return nil
}

var _ connectors.Source = (*Source)(nil)
