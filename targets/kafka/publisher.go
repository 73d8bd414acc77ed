package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/targets"
)

var topicRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

func check(c targets.Config) []targets.FieldProblem {
	var out []targets.FieldProblem
	add := func(field, format string, a ...any) {
		out = append(out, targets.FieldProblem{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	if len(c.StringList(fieldBrokers)) == 0 {
		add(fieldBrokers, "give at least one broker")
	}
	for _, b := range c.StringList(fieldBrokers) {
		host, port, err := net.SplitHostPort(b)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			add(fieldBrokers, "%q is not host:port", b)
		}
	}
	if t := c.String(fieldTopic); !topicRE.MatchString(t) || t == "." || t == ".." {
		add(fieldTopic, "%q is not a Kafka topic name: 1 to 249 letters, digits, '.', '_' and '-'", t)
	}
	switch m := c.String(fieldSASL); m {
	case "none":
		if c.String(fieldUser) != "" || c.String(fieldPasswordSecret) != "" {
			add(fieldSASL, "user and password_secret need a SASL mechanism (plain, scram-sha-256, scram-sha-512)")
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.String(fieldUser) == "" || c.String(fieldPasswordSecret) == "" {
			add(fieldSASL, "%s needs user and password_secret", m)
		}
	default:
		add(fieldSASL, "%q: want none, plain, scram-sha-256 or scram-sha-512", m)
	}
	return out
}

func display(c targets.Config) string {
	return fmt.Sprintf("kafka://%s topic=%s", strings.Join(c.StringList(fieldBrokers), ","), c.String(fieldTopic))
}

// publisher produces with one franz-go client.
type publisher struct {
	cl    *kgo.Client
	topic string
}

// New builds the client; it connects on the first produce.
func New(_ context.Context, c targets.Config, env targets.Env) (targets.Publisher, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.StringList(fieldBrokers)...),
		kgo.ClientID(c.String(fieldClientID)),
		kgo.Dialer(env.Dial),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.UnknownTopicRetries(3),
	}
	if c.Bool(fieldTLS) {
		opts[2] = kgo.Dialer(env.DialTLS)
	}
	if m := c.String(fieldSASL); m != "none" {
		pw, err := env.Secret(c.String(fieldPasswordSecret))
		if err != nil {
			return nil, targets.Fail(targets.Misconfigured, err)
		}
		var mech sasl.Mechanism
		user := c.String(fieldUser)
		switch m {
		case "plain":
			mech = plain.Auth{User: user, Pass: pw}.AsMechanism()
		case "scram-sha-256":
			mech = scram.Auth{User: user, Pass: pw}.AsSha256Mechanism()
		default:
			mech = scram.Auth{User: user, Pass: pw}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(mech))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, targets.Fail(targets.Misconfigured, err)
	}
	return &publisher{cl: cl, topic: c.String(fieldTopic)}, nil
}

// Publish implements targets.Publisher.
func (p *publisher) Publish(ctx context.Context, ev *pb.CloudEvent) error {
	if err := p.cl.ProduceSync(ctx, Record(ev, p.topic)).FirstErr(); err != nil {
		return classify(ctx, err)
	}
	return nil
}

// Close implements targets.Publisher.
func (p *publisher) Close() error {
	p.cl.Close()
	return nil
}

// Record is the Kafka record of an event (the binding's binary mode).
func Record(ev *pb.CloudEvent, topic string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: cloudevent.Data(ev)}
	for _, a := range targets.Attributes(ev) {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: attrPrefix + a.Name, Value: []byte(a.Text)})
		if a.Name == attrPartitionKey {
			r.Key = []byte(a.Text)
		}
	}
	if ct := targets.ContentType(ev); ct != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: headerContentType, Value: []byte(ct)})
	}
	return r
}

// classify names a produce failure.
func classify(ctx context.Context, err error) error {
	var ke *kerr.Error
	switch {
	case ctx.Err() != nil, errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, context.DeadlineExceeded):
		return targets.Fail(targets.Timeout, err)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.InvalidTopicException):
		return targets.Fail(targets.NotFound, err)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return targets.Fail(targets.Unauthorized, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge), errors.Is(err, kerr.InvalidRecord),
		errors.Is(err, kerr.CorruptMessage), errors.Is(err, kerr.InvalidRequiredAcks):
		return targets.Fail(targets.Rejected, err)
	case errors.As(err, &ke):
		return targets.Fail(targets.Unavailable, err) // retriable broker states: no leader, not enough replicas…
	}
	return targets.Fail(targets.FailureOf(err), err)
}
