package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// Source consumes one stream through a durable pull consumer.
type Source struct {
	log            *slog.Logger
	name           string
	url            string
	stream         string
	subjects       []string
	createStream   bool
	consumerConfig jetstream.ConsumerConfig
	dec            decoder

	nc *nats.Conn
	it jetstream.MessagesContext
}

// New builds a nats_jetstream source.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		log: env.Logger, name: env.Name, url: cfg.String(fieldURL),
		stream: cfg.String(fieldStream), subjects: cfg.StringList(fieldSubjects), createStream: cfg.Bool(fieldCreateStream),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var errs []error
	if !validName(s.stream) {
		errs = append(errs, fmt.Errorf("fields.%s: %q: want a stream name without spaces, '.', '*', '>', '/' or '\\'", fieldStream, s.stream))
	}
	durable := cfg.String(fieldDurable)
	if durable == "" {
		durable = "switchyard-" + env.Name
	}
	if !validName(durable) {
		errs = append(errs, fmt.Errorf("fields.%s: %q: want a name without spaces, '.', '*', '>', '/' or '\\'", fieldDurable, durable))
	}
	var policy jetstream.DeliverPolicy
	switch p := cfg.String(fieldDeliverPolicy); p {
	case "all":
		policy = jetstream.DeliverAllPolicy
	case "new":
		policy = jetstream.DeliverNewPolicy
	default:
		errs = append(errs, fmt.Errorf("fields.%s: %q: want all or new", fieldDeliverPolicy, p))
	}
	ackWait := cfg.Duration(fieldAckWait)
	if ackWait < time.Second {
		errs = append(errs, fmt.Errorf("fields.%s: %s: want at least 1s", fieldAckWait, ackWait))
	}
	maxAckPending := cfg.Int(fieldMaxAckPending)
	if maxAckPending <= 0 {
		errs = append(errs, fmt.Errorf("fields.%s: %d: want a positive number", fieldMaxAckPending, maxAckPending))
	}
	for _, list := range []struct {
		field string
		subs  []string
	}{{fieldSubjects, s.subjects}, {fieldFilterSubjects, cfg.StringList(fieldFilterSubjects)}} {
		for _, sub := range list.subs {
			if sub == "" || strings.ContainsAny(sub, " \t\r\n") {
				errs = append(errs, fmt.Errorf("fields.%s: %q is not a subject", list.field, sub))
			}
		}
	}
	s.consumerConfig = jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, DeliverPolicy: policy,
		MaxAckPending: maxAckPending, Description: "Switchyard source " + env.Name,
	}
	// One filter goes in FilterSubject, which servers before 2.10 understand;
	// several need FilterSubjects (nats-server 2.10+).
	switch f := cfg.StringList(fieldFilterSubjects); len(f) {
	case 0:
	case 1:
		s.consumerConfig.FilterSubject = f[0]
	default:
		s.consumerConfig.FilterSubjects = f
	}
	src := cfg.String(fieldSource)
	if src == "" {
		host := "127.0.0.1:4222"
		if u, err := url.Parse(strings.TrimSpace(strings.Split(s.url, ",")[0])); err == nil && u.Host != "" {
			host = u.Host
		}
		src = (&url.URL{Scheme: "nats", Host: host, Path: "/" + s.stream}).String()
	}
	s.dec = decoder{stream: s.stream, typ: cfg.String(fieldType), source: src}
	if err := wrap.CheckSourceType(src, s.dec.typ, fieldSource, fieldType); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// validName checks a stream or consumer name as JetStream restricts them.
func validName(n string) bool {
	return n != "" && !strings.ContainsAny(n, " \t\r\n.*>/\\")
}

// Connect implements connectors.Source: it connects, finds (or creates) the
// stream, creates or updates the durable consumer and starts pulling.
func (s *Source) Connect(ctx context.Context) error {
	opts := []nats.Option{
		nats.Name("switchyard " + s.name),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("disconnected from NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { s.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }),
	}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(max(time.Until(dl), time.Millisecond)))
	}
	nc, err := nats.Connect(s.url, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	s.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	stream, err := js.Stream(ctx, s.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && s.createStream {
		subjects := s.subjects
		if len(subjects) == 0 {
			subjects = []string{s.stream}
		}
		stream, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: s.stream, Subjects: subjects, Storage: jetstream.FileStorage})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created concurrently
			stream, err = js.Stream(ctx, s.stream)
		}
		if err == nil {
			s.log.Info("created JetStream stream", "stream", s.stream, "subjects", subjects)
		}
	}
	if err != nil {
		return fmt.Errorf("stream %q: %w", s.stream, err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, s.consumerConfig)
	if err != nil {
		return fmt.Errorf("durable consumer %q on stream %q: %w", s.consumerConfig.Durable, s.stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(500, s.consumerConfig.MaxAckPending)))
	if err != nil {
		return fmt.Errorf("pull from consumer %q: %w", s.consumerConfig.Durable, err)
	}
	s.it = it
	return nil
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	if s.it == nil {
		return nil, fmt.Errorf("nats_jetstream: read before connect: %w", connectors.ErrNotConnected)
	}
	msg, err := s.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pull from consumer %q: %v: %w", s.consumerConfig.Durable, err, connectors.ErrNotConnected)
	}
	md, err := msg.Metadata()
	if err != nil { // not a JetStream message: cannot be positioned or acked
		return nil, fmt.Errorf("message without JetStream metadata: %v: %w", err, connectors.ErrNotConnected)
	}
	ev := s.dec.decode(record{seq: md.Sequence.Stream, subject: msg.Subject(), stored: md.Timestamp, header: msg.Headers(), data: msg.Data()})
	return &connectors.Message{
		Event:    ev,
		Position: strconv.FormatUint(md.Sequence.Stream, 10),
		// The consumer's pending count: messages of the stream it has not
		// delivered yet.
		Backlog: int64(md.NumPending), BacklogKnown: true,
		Ack: func(_ context.Context, err error) error {
			if err != nil {
				// The delay keeps the message from going to a pull request
				// of this connection that is about to end (the runner
				// refuses messages when it stops); see Close.
				return msg.NakWithDelay(closeNakDelay)
			}
			return msg.Ack()
		},
	}, nil
}

// Close implements connectors.Source: it stops pulling, Naks the messages
// pulled but not handed over (so they come again without waiting for
// ack_wait), flushes the acks and closes the connection.
func (s *Source) Close(ctx context.Context) error {
	if s.it != nil {
		// Stop pulling but keep what was pulled, then Nak it with a short
		// delay: a pull request of this connection may still wait at the
		// server (servers before 2.10 keep it until it expires), and a
		// message redelivered to it would only come back after ack_wait.
		// Closing the connection removes the request well within the delay.
		s.it.Drain()
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		for {
			msg, err := s.it.Next(jetstream.NextContext(dctx))
			if err != nil {
				break
			}
			_ = msg.NakWithDelay(closeNakDelay)
		}
		cancel()
		s.it.Stop()
		s.it = nil
	}
	var err error
	if s.nc != nil {
		if !s.nc.IsClosed() {
			fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = s.nc.FlushWithContext(fctx)
			cancel()
		}
		s.nc.Close()
		s.nc = nil
	}
	return err
}

// closeNakDelay is how long JetStream holds the messages Close gives back.
const closeNakDelay = time.Second

var _ connectors.Source = (*Source)(nil)
