package natsjs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/nats-io/nats.go"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/targets"
)

// server is one URL of the url field.
type server struct {
	raw      string
	scheme   string
	hostPort string
}

// servers splits the url field into its URLs (4222 by default).
func servers(raw string) []server {
	var out []server
	for _, s := range strings.Split(raw, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			out = append(out, server{raw: s})
			continue
		}
		hp := u.Host
		if u.Port() == "" {
			hp = net.JoinHostPort(u.Hostname(), "4222")
		}
		out = append(out, server{raw: s, scheme: strings.ToLower(u.Scheme), hostPort: hp})
	}
	return out
}

func check(c targets.Config) []targets.FieldProblem {
	var out []targets.FieldProblem
	add := func(field, format string, a ...any) {
		out = append(out, targets.FieldProblem{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	srv := servers(c.String(fieldURL))
	if len(srv) == 0 {
		add(fieldURL, "give at least one URL")
	}
	tlsCount := 0
	for _, s := range srv {
		switch {
		case targets.NoUserinfo(s.raw) != nil:
			add(fieldURL, "%v", targets.NoUserinfo(s.raw))
		case s.hostPort == "":
			add(fieldURL, "%q is not a URL with a host", s.raw)
		case s.scheme != "nats" && s.scheme != "tls":
			add(fieldURL, "%q: scheme must be nats:// or tls://", s.raw)
		}
		if s.scheme == "tls" {
			tlsCount++
		}
	}
	if tlsCount != 0 && tlsCount != len(srv) {
		add(fieldURL, "use tls:// for every URL or for none")
	}
	subj := c.String(fieldSubject)
	if subj == "" || strings.ContainsAny(subj, "*> \t\r\n") || strings.HasPrefix(subj, ".") || strings.HasSuffix(subj, ".") || strings.Contains(subj, "..") {
		add(fieldSubject, "%q is not a subject to publish to: dot-separated tokens, no wildcards or spaces", subj)
	}
	if c.String(fieldTokenSecret) != "" && (c.String(fieldUser) != "" || c.String(fieldPasswordSecret) != "") {
		add(fieldTokenSecret, "give a token or a user and password, not both")
	}
	if (c.String(fieldUser) == "") != (c.String(fieldPasswordSecret) == "") {
		add(fieldPasswordSecret, "user and password_secret go together")
	}
	if d := c.Duration(fieldAckWait); d < time.Millisecond || d > 5*time.Minute {
		add(fieldAckWait, "must be between 1ms and 5m, got %s", d)
	}
	return out
}

func secure(c targets.Config) bool {
	srv := servers(c.String(fieldURL))
	return len(srv) > 0 && srv[0].scheme == "tls"
}

func display(c targets.Config) string {
	var hosts []string
	for _, s := range servers(c.String(fieldURL)) {
		hosts = append(hosts, s.hostPort)
	}
	return fmt.Sprintf("nats://%s subject=%s", strings.Join(hosts, ","), c.String(fieldSubject))
}

// publisher is a watermill-nats publisher on one connection.
type publisher struct {
	nc      *nats.Conn
	js      nats.JetStreamContext
	pub     *wmnats.Publisher
	subject string
	dedup   bool
	wg      sync.WaitGroup // publishes still running past their attempt
}

// dialer connects through the egress guard.
type dialer struct {
	env     targets.Env
	timeout time.Duration
}

func (d dialer) Dial(network, address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	return d.env.Dial(ctx, network, address)
}

// New connects to the server and builds the publisher.
func New(_ context.Context, c targets.Config, env targets.Env) (targets.Publisher, error) {
	ackWait := c.Duration(fieldAckWait)
	var urls []string
	for _, s := range servers(c.String(fieldURL)) {
		urls = append(urls, s.raw)
	}
	opts := []nats.Option{
		nats.Name("switchyard"),
		nats.SetCustomDialer(dialer{env: env, timeout: 5 * time.Second}),
		nats.MaxReconnects(-1), // the connection outlives broker restarts; attempts time out meanwhile
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(5 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			env.Logger.Warn("nats_jetstream target: asynchronous error", "err", err)
		}),
	}
	if secure(c) {
		srv := servers(c.String(fieldURL))
		host, _, _ := net.SplitHostPort(srv[0].hostPort)
		opts = append(opts, nats.Secure(env.TLS(host)))
	}
	if name := c.String(fieldPasswordSecret); name != "" {
		pw, err := env.Secret(name)
		if err != nil {
			return nil, targets.Fail(targets.Misconfigured, err)
		}
		opts = append(opts, nats.UserInfo(c.String(fieldUser), pw))
	}
	if name := c.String(fieldTokenSecret); name != "" {
		tok, err := env.Secret(name)
		if err != nil {
			return nil, targets.Fail(targets.Misconfigured, err)
		}
		opts = append(opts, nats.Token(tok))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return nil, classify(err)
	}
	pub, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         marshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream: wmnats.JetStreamConfig{
			ConnectOptions: []nats.JSOpt{nats.MaxWait(ackWait)},
			PublishOptions: []nats.PubOpt{nats.AckWait(ackWait)},
		},
	}, watermill.NewSlogLogger(env.Logger))
	if err != nil {
		nc.Close()
		return nil, classify(err)
	}
	js, err := nc.JetStream(nats.MaxWait(ackWait))
	if err != nil {
		nc.Close()
		return nil, classify(err)
	}
	return &publisher{nc: nc, js: js, pub: pub, subject: c.String(fieldSubject), dedup: c.Bool(fieldDeduplicate)}, nil
}

// Publish implements targets.Publisher.
func (p *publisher) Publish(ctx context.Context, ev *pb.CloudEvent) error {
	msg := Message(ev, p.dedup)
	err := targets.Bounded(ctx, &p.wg, func() error { return p.pub.Publish(p.subject, msg) })
	if err == nil {
		return nil
	}
	if errors.Is(err, nats.ErrNoStreamResponse) {
		// No stream answered: either none captures the subject, or
		// JetStream is not up (yet). Its API tells the two apart.
		_, lerr := p.js.StreamNameBySubject(p.subject, nats.Context(ctx))
		if errors.Is(lerr, nats.ErrNoMatchingStream) {
			return targets.Failf(targets.NotFound, "no JetStream stream captures subject %q", p.subject)
		}
		return targets.Failf(targets.Unavailable, "JetStream did not answer a publish to %q: %v (stream lookup: %v)", p.subject, err, lerr)
	}
	return classify(err)
}

// Close implements targets.Publisher: it closes the connection (which ends
// the publishes still waiting) and waits for them.
func (p *publisher) Close() error {
	p.nc.Close()
	p.wg.Wait()
	return nil
}

// Message is the Watermill message of an event: the binding's headers as
// metadata, the data as payload.
func Message(ev *pb.CloudEvent, dedup bool) *message.Message {
	md := message.Metadata{}
	for _, a := range targets.Attributes(ev) {
		md[attrPrefix+a.Name] = targets.PercentEncode(a.Text)
	}
	if ct := targets.ContentType(ev); ct != "" {
		md[headerContentType] = ct
	}
	if dedup {
		md[headerMsgID] = targets.DedupID(ev)
	}
	m := message.NewMessage(ev.GetId(), cloudevent.Data(ev))
	m.Metadata = md
	return m
}

// marshaler writes a message's metadata as headers, as they are, and its
// payload as the data.
type marshaler struct{}

func (marshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	h := make(nats.Header, len(msg.Metadata))
	for k, v := range msg.Metadata {
		h[k] = []string{v}
	}
	return &nats.Msg{Subject: topic, Header: h, Data: msg.Payload}, nil
}

// classify names the failure of a connection or a publish.
func classify(err error) error {
	var api *nats.APIError
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked),
		errors.Is(err, nats.ErrPermissionViolation), strings.Contains(strings.ToLower(err.Error()), "permissions violation"),
		strings.Contains(strings.ToLower(err.Error()), "authorization violation"):
		return targets.Fail(targets.Unauthorized, err)
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return targets.Fail(targets.Timeout, err)
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionDraining):
		return targets.Fail(targets.Unreachable, err)
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, nats.ErrBadSubject), errors.Is(err, nats.ErrHeadersNotSupported):
		return targets.Fail(targets.Rejected, err)
	case errors.As(err, &api):
		if api.Code == 503 {
			return targets.Fail(targets.Unavailable, err)
		}
		return targets.Fail(targets.Rejected, err)
	}
	return targets.Fail(targets.FailureOf(err), err)
}
