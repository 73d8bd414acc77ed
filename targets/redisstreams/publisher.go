package redisstreams

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/targets"
)

// check validates the URL and the stream name.
func check(c targets.Config) []targets.FieldProblem {
	var out []targets.FieldProblem
	raw := c.String(fieldURL)
	if err := targets.NoUserinfo(raw); err != nil {
		out = append(out, targets.FieldProblem{Field: fieldURL, Msg: err.Error()})
	} else if _, err := options(c, ""); err != nil {
		out = append(out, targets.FieldProblem{Field: fieldURL, Msg: err.Error()})
	}
	if s := c.String(fieldStream); s == "" {
		out = append(out, targets.FieldProblem{Field: fieldStream, Msg: "must not be empty"})
	}
	if c.Int(fieldMaxLen) < 0 {
		out = append(out, targets.FieldProblem{Field: fieldMaxLen, Msg: "must not be negative"})
	}
	return out
}

func scheme(raw string) string {
	s, _, _ := strings.Cut(raw, "://")
	return strings.ToLower(s)
}

// hostPort returns the URL's host:port (6379 by default).
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "6379")
	}
	return u.Host
}

func display(c targets.Config) string {
	return fmt.Sprintf("%s://%s stream=%s", scheme(c.String(fieldURL)), hostPort(c.String(fieldURL)), c.String(fieldStream))
}

// options parses the URL into go-redis options, with the user and
// password given.
func options(c targets.Config, password string) (*redis.Options, error) {
	raw := c.String(fieldURL)
	if s := scheme(raw); s != "redis" && s != "rediss" {
		return nil, fmt.Errorf("scheme must be redis:// or rediss://, not %q", s)
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("not a Redis URL: %w", err)
	}
	opt.Username, opt.Password = c.String(fieldUser), password
	return opt, nil
}

// publisher is a watermill-redisstream publisher on one client.
type publisher struct {
	pub    *redisstream.Publisher
	stream string
}

// New builds the publisher; the client connects on the first XADD.
func New(_ context.Context, c targets.Config, env targets.Env) (targets.Publisher, error) {
	var password string
	if name := c.String(fieldPasswordSecret); name != "" {
		v, err := env.Secret(name)
		if err != nil {
			return nil, targets.Fail(targets.Misconfigured, err)
		}
		password = v
	}
	opt, err := options(c, password)
	if err != nil {
		return nil, targets.Fail(targets.Misconfigured, err)
	}
	// The guard dials; TLS, which go-redis adds only in its own dialer,
	// goes on top here.
	dial := env.Dial
	if opt.TLSConfig != nil {
		opt.TLSConfig = nil
		dial = env.DialTLS
	}
	opt.Dialer = dial
	opt.ContextTimeoutEnabled = true // the attempt's deadline bounds every command
	opt.PoolSize = 16
	client := redis.NewClient(opt)
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{
		Client:        client,
		Marshaller:    marshaller{},
		DefaultMaxlen: int64(c.Int(fieldMaxLen)),
	}, watermill.NewSlogLogger(env.Logger))
	if err != nil {
		_ = client.Close()
		return nil, targets.Fail(targets.Misconfigured, err)
	}
	return &publisher{pub: pub, stream: c.String(fieldStream)}, nil
}

// Publish implements targets.Publisher: one XADD, confirmed by its reply.
func (p *publisher) Publish(ctx context.Context, ev *pb.CloudEvent) error {
	msg := Message(ev)
	msg.SetContext(ctx)
	if err := p.pub.Publish(p.stream, msg); err != nil {
		return classify(ctx, err)
	}
	return nil
}

// Close implements targets.Publisher.
func (p *publisher) Close() error { return p.pub.Close() }

// Message is the Watermill message of an event: its entry fields but data
// as metadata, the data as payload.
func Message(ev *pb.CloudEvent) *message.Message {
	md := message.Metadata{}
	for _, a := range targets.Attributes(ev) {
		md[attrPrefix+a.Name] = a.Text
	}
	if ct := targets.ContentType(ev); ct != "" {
		md[entryContentType] = ct
	}
	m := message.NewMessage(ev.GetId(), cloudevent.Data(ev))
	m.Metadata = md
	return m
}

// marshaller writes a message's metadata and payload as the entry's fields.
type marshaller struct{}

func (marshaller) Marshal(_ string, msg *message.Message) (map[string]any, error) {
	values := make(map[string]any, len(msg.Metadata)+1)
	for k, v := range msg.Metadata {
		values[k] = v
	}
	if len(msg.Payload) > 0 {
		values[entryData] = []byte(msg.Payload)
	}
	return values, nil
}

// classify names the failure of an XADD.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return targets.Fail(targets.Timeout, err)
	}
	var re redis.Error
	if errors.As(err, &re) {
		prefix, _, _ := strings.Cut(re.Error(), " ")
		switch prefix {
		case "NOAUTH", "WRONGPASS", "NOPERM":
			return targets.Fail(targets.Unauthorized, err)
		case "WRONGTYPE":
			return targets.Fail(targets.Rejected, fmt.Errorf("the key is not a stream: %w", err))
		case "OOM", "LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "BUSY", "TRYAGAIN", "MOVED", "ASK":
			return targets.Fail(targets.Unavailable, err)
		}
		return targets.Fail(targets.Rejected, err)
	}
	return targets.Fail(targets.FailureOf(err), err)
}
