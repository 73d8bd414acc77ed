package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// ackInterval is how often paho.golang sends the acknowledgements made
// (in arrival order); it bounds the latency of a PUBACK.
const ackInterval = 5 * time.Millisecond

// client5 is an MQTT 5 connection (paho.golang, without autopaho: the
// Runner reconnects, and one paho.Client per connection guarantees that a
// late acknowledgement can never acknowledge another message that reuses
// the packet identifier on a newer connection). Manual acknowledgements,
// Clean Start 0, Session Expiry Interval and Receive Maximum from the
// fields, Retain Handling 1.
type client5 struct {
	s       *Source
	l       *link
	c       *paho.Client
	once    sync.Once
	lastAck atomic.Int64 // unix nanoseconds of the last Ack
}

func (c *client5) connect(ctx context.Context) (bool, error) {
	s := c.s
	conn, err := dial(ctx, s)
	if err != nil {
		return false, err
	}
	c.c = paho.NewClient(paho.ClientConfig{
		Conn:                       conn,
		ClientID:                   s.clientID,
		EnableManualAcknowledgment: true,
		SendAcksInterval:           ackInterval,
		OnPublishReceived:          []func(paho.PublishReceived) (bool, error){c.handle},
		OnClientError:              func(err error) { c.l.kill(fmt.Errorf("connection lost: %w", err)) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			reason := ""
			if d.Properties != nil {
				reason = d.Properties.ReasonString
			}
			c.l.kill(fmt.Errorf("the broker disconnected (reason code 0x%02x %s)", d.ReasonCode, reason))
		},
	})
	expiry := uint32(s.sessionExpiry / time.Second)
	recvMax := uint16(s.maxInflight)
	cp := &paho.Connect{
		ClientID:   s.clientID,
		CleanStart: false,
		KeepAlive:  uint16(s.keepAlive / time.Second),
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry, ReceiveMaximum: &recvMax},
	}
	if s.username != "" {
		cp.Username, cp.UsernameFlag = s.username, true
	}
	if s.password != "" {
		cp.Password, cp.PasswordFlag = []byte(s.password), true
	}
	ca, err := c.c.Connect(ctx, cp)
	if err != nil {
		if ca != nil {
			return false, fmt.Errorf("%w (reason code 0x%02x)", err, ca.ReasonCode)
		}
		return false, err
	}
	done := c.c.Done()
	go func() { <-done; c.l.kill(fmt.Errorf("connection closed")) }()
	return ca.SessionPresent, nil
}

// dial opens the network connection; ctx bounds it.
func dial(ctx context.Context, s *Source) (net.Conn, error) {
	if isTLS(s.broker.Scheme) {
		d := tls.Dialer{Config: &tls.Config{ServerName: s.broker.Hostname(), MinVersion: tls.VersionTLS12}}
		return d.DialContext(ctx, "tcp", s.broker.Host)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.broker.Host)
}

func (c *client5) handle(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	in := &inbound{topic: p.Topic, payload: p.Payload, retained: p.Retain, props: &props5{}}
	if pp := p.Properties; pp != nil {
		in.props = &props5{contentType: pp.ContentType, responseTopic: pp.ResponseTopic, correlation: pp.CorrelationData, payloadFormat: pp.PayloadFormat}
		for _, u := range pp.User {
			in.props.user = append(in.props.user, userProp{key: u.Key, value: u.Value})
		}
	}
	cl := pr.Client
	in.ack = func() error {
		c.lastAck.Store(time.Now().UnixNano())
		return cl.Ack(p)
	}
	c.l.deliver(in)
	return true, nil
}

func (c *client5) subscribe(ctx context.Context, filters []string) error {
	sub := &paho.Subscribe{}
	for _, f := range filters {
		sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: c.s.qos, RetainHandling: 1})
	}
	sa, err := c.c.Subscribe(ctx, sub)
	if err != nil {
		if sa != nil {
			for i, code := range sa.Reasons {
				if code >= 0x80 && i < len(filters) {
					return fmt.Errorf("the broker refused the subscription to %q (reason code 0x%02x): %w", filters[i], code, err)
				}
			}
		}
		return err
	}
	for i, code := range sa.Reasons {
		if i < len(filters) && code < c.s.qos {
			c.s.log.Warn("the broker granted a lower QoS than asked", "topic", filters[i], "granted", code, "asked", c.s.qos)
		}
	}
	return nil
}

func (c *client5) unsubscribe(ctx context.Context, filters []string) error {
	_, err := c.c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: filters})
	return err
}

func (c *client5) disconnect() {
	c.once.Do(func() {
		if c.c == nil {
			return
		}
		// Let paho send the acknowledgements made last (it sends them
		// every ackInterval): a lost PUBACK only means a duplicate, but
		// there is no reason to cause one. After a refusal nothing later
		// was acknowledged, so there is nothing to wait for.
		if since := time.Since(time.Unix(0, c.lastAck.Load())); since < 3*ackInterval {
			time.Sleep(3*ackInterval - since)
		}
		select {
		case <-c.c.Done():
		default:
			_ = c.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		}
	})
}
