package targets

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/connectors"
)

// Publisher writes events to one broker (or database) address with one set
// of credentials. It is safe for concurrent use.
type Publisher interface {
	// Publish writes ev, which is valid (cloudevent.Validate), and returns
	// nil only once the broker confirmed that it holds it. ctx bounds the
	// call: when it ends first, Publish returns an error of Failure
	// Timeout (the broker may still store the event: delivery is at least
	// once, and kinds that can deduplicate say how in their docs).
	Publish(ctx context.Context, ev *pb.CloudEvent) error
	// Close releases the connections. Publish is not called during or
	// after it.
	Close() error
}

// Env is what a kind's constructor gets from the server.
type Env struct {
	// Dial opens every TCP connection of the publisher: the egress
	// guard's DialContext, or a plain dialer. Never nil.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Secret returns the value of a secret named by a field of type
	// connectors.TypeSecretName. Never nil.
	Secret func(name string) (string, error)
	// TLS returns the TLS configuration for a connection to host: the
	// server's target CA (else the system roots) and client certificate,
	// reloaded when their files change. Never nil.
	TLS func(host string) *tls.Config
	// Logger receives the publisher's own log lines. Never nil.
	Logger *slog.Logger
}

// DialTLS dials address through env.Dial and completes a TLS handshake
// with env.TLS, for clients that take a dial function but do not add TLS
// on top of it themselves.
func (env Env) DialTLS(ctx context.Context, network, address string) (net.Conn, error) {
	raw, err := env.Dial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(address)
	c := tls.Client(raw, env.TLS(host))
	if err := c.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, Fail(Unreachable, fmt.Errorf("TLS handshake with %s: %w", address, err))
	}
	return c, nil
}

// Address is one host:port a target connects to, with the field that
// names it (for errors at apply time: "target.publish.url").
type Address struct {
	Field    string
	HostPort string
}

// Spec registers a target kind.
type Spec struct {
	// Kind names the kind in triggers (`publish: {kind: amqp}`).
	Kind string
	// Summary is one line; Description may be longer (Markdown).
	Summary, Description string
	// Fields are the kind's settings beside `kind`, validated with
	// connectors.CheckFields.
	Fields []connectors.Field
	// Layout documents, in Markdown, how an event is written: the binding
	// and mode, where each attribute goes, where the data goes.
	Layout string
	// ReadBack names the source that reads the events back as they were
	// published (e.g. "the `amqp` source").
	ReadBack string
	// Confirms says what the publisher waits for before an event counts as
	// delivered.
	Confirms string
	// Check validates the fields further (formats, combinations), after
	// their types were checked. Each problem names its field. May be nil.
	Check func(Config) []FieldProblem
	// Addresses returns the host:port pairs the fields name, checked
	// against the egress guard when a trigger is applied. Never nil.
	Addresses func(Config) []Address
	// Secure reports whether the connections are encrypted (a server that
	// requires TLS to targets refuses the others). Nil: never.
	Secure func(Config) bool
	// Display renders the target for listings, logs and dead letters
	// (e.g. "amqp://mq:5672/ exchange=orders"); it holds no credential.
	Display func(Config) string
	// New builds a publisher for valid fields. It may connect, or defer
	// connecting to the first Publish; an error is classified like a
	// Publish error (unreachable brokers are retried).
	New func(ctx context.Context, c Config, env Env) (Publisher, error)
}

// Config is a target's fields as validated by Check, typed, with the
// defaults filled in.
type Config = connectors.Config

// FieldProblem is one invalid field: its name and what is wrong.
type FieldProblem = connectors.FieldProblem

var kindRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (s Spec) validate() error {
	var errs []error
	if !kindRE.MatchString(s.Kind) {
		errs = append(errs, fmt.Errorf("target kind %q must be lower-case letters, digits and '_'", s.Kind))
	}
	if s.Summary == "" || s.New == nil || s.Addresses == nil || s.Display == nil || s.Layout == "" || s.Confirms == "" {
		errs = append(errs, fmt.Errorf("target kind %q needs a summary, a layout, what it confirms, Addresses, Display and New", s.Kind))
	}
	seen := map[string]bool{"kind": true}
	for _, f := range s.Fields {
		if f.Name == "" || f.Doc == "" || f.Type == "" {
			errs = append(errs, fmt.Errorf("target kind %q: field %q needs a name, a type and a doc", s.Kind, f.Name))
		}
		if seen[f.Name] {
			errs = append(errs, fmt.Errorf("target kind %q: field %q twice (or named kind)", s.Kind, f.Name))
		}
		seen[f.Name] = true
		if f.Required && f.Default != nil {
			errs = append(errs, fmt.Errorf("target kind %q: required field %q has a default", s.Kind, f.Name))
		}
		if f.Secret {
			errs = append(errs, fmt.Errorf("target kind %q: field %q: targets take credentials by secret name (TypeSecretName), not inline", s.Kind, f.Name))
		}
	}
	if _, problems := connectors.CheckFields(s.Fields, nil); len(problems) > 0 {
		for _, p := range problems {
			if !s.field(p.Field).Required {
				errs = append(errs, fmt.Errorf("target kind %q: field %q: default: %s", s.Kind, p.Field, p.Msg))
			}
		}
	}
	return errors.Join(errs...)
}

func (s Spec) field(name string) connectors.Field {
	for _, f := range s.Fields {
		if f.Name == name {
			return f
		}
	}
	return connectors.Field{}
}

// Build validates raw fields (everything beside `kind`) and returns them
// typed, or every problem: unknown fields, missing required ones, values
// of the wrong type, secret names that are not valid, and what Check finds.
func (s Spec) Build(raw map[string]any) (Config, []FieldProblem) {
	c, problems := connectors.CheckFields(s.Fields, raw)
	for _, f := range s.Fields {
		if f.Type != connectors.TypeSecretName {
			continue
		}
		if v := c.String(f.Name); v != "" && !validSecretName(v) {
			problems = append(problems, FieldProblem{Field: f.Name, Msg: fmt.Sprintf("%q is not a secret name: use 1 to 128 letters, digits, '_' and '-', starting with a letter or digit", v)})
		}
	}
	if len(problems) == 0 && s.Check != nil {
		problems = s.Check(c)
	}
	return c, problems
}

// SecretNames returns the secret names c's fields hold, by field.
func (s Spec) SecretNames(c Config) []Address {
	var out []Address
	for _, f := range s.Fields {
		if f.Type == connectors.TypeSecretName && c.String(f.Name) != "" {
			out = append(out, Address{Field: f.Name, HostPort: c.String(f.Name)})
		}
	}
	return out
}

// validSecretName is internal/secrets.ValidName, repeated so that this
// contract package imports nothing of the server's.
func validSecretName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Failure says why a publish failed, in terms the delivery layer
// classifies (router/delivery: ClassifyPublish).
type Failure int

// Failures.
const (
	// Unreachable: no connection to the broker (refused, reset, DNS, a
	// connection lost before the broker answered).
	Unreachable Failure = iota + 1
	// Timeout: the broker did not answer in time.
	Timeout
	// Unavailable: the broker answered that it cannot take the event now
	// (no leader, a JetStream cluster without quorum, a full disk, a
	// negative publisher confirm, a deadlock or serialization failure).
	Unavailable
	// Unauthorized: the credentials were refused, or they do not allow
	// writing there.
	Unauthorized
	// NotFound: the exchange, subject, stream, topic or table does not
	// exist, or nothing is bound to receive the message.
	NotFound
	// Rejected: the broker refused this event (a constraint violation, a
	// message too large, a value a column cannot hold).
	Rejected
	// Misconfigured: the target's settings cannot work (a secret that is
	// missing or malformed, a TLS setting that does not load).
	Misconfigured
	// Duplicate: the broker already holds this event (the same source and
	// id): an earlier attempt succeeded and its answer was lost.
	Duplicate
)

// String names the failure as dead letters show it (the attempt's code).
func (f Failure) String() string {
	switch f {
	case Unreachable:
		return "BROKER_UNREACHABLE"
	case Timeout:
		return "BROKER_TIMEOUT"
	case Unavailable:
		return "BROKER_UNAVAILABLE"
	case Unauthorized:
		return "BROKER_UNAUTHORIZED"
	case NotFound:
		return "BROKER_NOT_FOUND"
	case Rejected:
		return "BROKER_REJECTED"
	case Misconfigured:
		return "TARGET_MISCONFIGURED"
	case Duplicate:
		return "BROKER_DUPLICATE"
	}
	return "BROKER_ERROR"
}

// Error is a publish failure with its classification.
type Error struct {
	Failure Failure
	Err     error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Fail wraps err with a failure (nil stays nil; an *Error keeps its own).
func Fail(f Failure, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Failure: f, Err: err}
}

// Failf is Fail with a formatted message.
func Failf(f Failure, format string, a ...any) error {
	return &Error{Failure: f, Err: fmt.Errorf(format, a...)}
}

// FailureOf returns the failure err carries. An error without one is
// classified by what the standard library can tell: a context deadline or
// a network timeout is Timeout, any other network error Unreachable, the
// rest Unavailable (retried).
func FailureOf(err error) Failure {
	var e *Error
	if errors.As(err, &e) {
		return e.Failure
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return Timeout
		}
		return Unreachable
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return Unreachable
	}
	return Unavailable
}

// Bounded runs fn, which ignores contexts, and returns its error, or a
// Timeout when ctx ends first. fn goes on in its goroutine until it
// returns (its own timeout, or the publisher's Close, ends it); wg counts
// it so that Close can wait for it.
func Bounded(ctx context.Context, wg interface {
	Add(int)
	Done()
}, fn func() error) error {
	done := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		done <- fn()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return Failf(Timeout, "no confirmation from the broker before the attempt's deadline: %v", context.Cause(ctx))
	}
}

// Until returns the time left before ctx's deadline, at most limit and at
// least a millisecond; limit when ctx has none.
func Until(ctx context.Context, limit time.Duration) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return min(max(time.Until(d), time.Millisecond), limit)
	}
	return limit
}

// NoUserinfo reports an error when a URL-like value carries credentials
// ("scheme://user:pass@host"): credentials go in secrets.
func NoUserinfo(v string) error {
	_, rest, ok := strings.Cut(v, "://")
	if !ok {
		rest = v
	}
	host, _, _ := strings.Cut(rest, "/")
	if strings.Contains(host, "@") {
		return errors.New("holds credentials: give the user in its field and the password as a secret name (password_secret)")
	}
	return nil
}
