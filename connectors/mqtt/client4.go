package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// quiesce is how long a disconnect waits for queued packets to be sent.
const quiesce = 250 // milliseconds

// client4 is an MQTT 3.1.1 connection (paho.mqtt.golang) with automatic
// acknowledgements disabled, automatic reconnects off (the Runner
// reconnects), Clean Session 0 and in-order message handling.
type client4 struct {
	s    *Source
	l    *link
	c    paho.Client
	once sync.Once
}

func (c *client4) connect(ctx context.Context) (bool, error) {
	s := c.s
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	o := paho.NewClientOptions().
		AddBroker(s.broker.String()).
		SetClientID(s.clientID).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetKeepAlive(s.keepAlive).
		SetConnectTimeout(timeout).
		SetWriteTimeout(30 * time.Second).
		SetDefaultPublishHandler(c.handle).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.l.kill(fmt.Errorf("connection lost: %w", err))
		})
	if s.username != "" {
		o.SetUsername(s.username)
	}
	if s.password != "" {
		o.SetPassword(s.password)
	}
	if isTLS(s.broker.Scheme) {
		o.SetTLSConfig(&tls.Config{ServerName: s.broker.Hostname(), MinVersion: tls.VersionTLS12})
	}
	c.c = paho.NewClient(o)
	tok := c.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return false, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return false, err
	}
	ct, ok := tok.(*paho.ConnectToken)
	if !ok {
		return false, errors.New("unexpected connect token")
	}
	return ct.SessionPresent(), nil
}

// handle receives every message (subscriptions are made without their own
// handlers, so messages the resumed session delivers before SUBACK land
// here too).
func (c *client4) handle(_ paho.Client, m paho.Message) {
	c.l.deliver(&inbound{topic: m.Topic(), payload: m.Payload(), retained: m.Retained(),
		ack: func() error { m.Ack(); return nil }})
}

func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *client4) subscribe(ctx context.Context, filters []string) error {
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = c.s.qos
	}
	tok := c.c.SubscribeMultiple(m, nil)
	if err := wait(ctx, tok); err != nil {
		return err
	}
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return errors.New("unexpected subscribe token")
	}
	for f, code := range st.Result() {
		if code >= 0x80 {
			return fmt.Errorf("the broker refused the subscription to %q", f)
		}
		if code < c.s.qos {
			c.s.log.Warn("the broker granted a lower QoS than asked", "topic", f, "granted", code, "asked", c.s.qos)
		}
	}
	return nil
}

func (c *client4) unsubscribe(ctx context.Context, filters []string) error {
	return wait(ctx, c.c.Unsubscribe(filters...))
}

func (c *client4) disconnect() {
	c.once.Do(func() {
		if c.c != nil {
			c.c.Disconnect(quiesce)
		}
	})
}
