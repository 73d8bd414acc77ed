package sdk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	format "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchyard-io/switchyard/cloudevent"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// Client talks to a Switchyard instance over one gRPC connection. It is safe
// for concurrent use; create one per process and Close it when done.
type Client struct {
	conn     *grpc.ClientConn
	timeout  time.Duration
	events   switchyardv1.EventServiceClient
	triggers switchyardv1.TriggerServiceClient
	dlq      switchyardv1.DeadLetterServiceClient
	sources  switchyardv1.SourceServiceClient
	tokens   switchyardv1.TokenServiceClient
	audit    switchyardv1.AuditServiceClient
	archive  switchyardv1.ArchiveServiceClient
	// dryRunChecked is set once the server proved it supports dry runs
	// (see DryRunApplyTrigger).
	dryRunChecked atomic.Bool
}

// streamWindow and connWindow are the HTTP/2 flow-control windows of the
// client's connection, fixed (cfg.DialOptions may set others). With gRPC's
// default (windows sized by BDP estimation) the client answers the first
// data it receives after a quiet moment with a window update and a PING,
// which the server must read and answer: below saturation that is after
// nearly every call, a read, a write and two wake-ups more for the server
// (issue 11). The estimate would grow a window to 16 MiB at most.
const (
	streamWindow = 4 << 20
	connWindow   = 16 << 20
)

// New validates cfg (see [Config.Validate]), applies its defaults and
// returns a Client. Like grpc.NewClient it does not connect: the connection
// is made by the first call, and connection problems surface as call errors
// wrapping [ErrUnavailable].
//
// When cfg.DialOptions carry no transport credentials, the connection is
// plaintext.
func New(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{tracingOption(cfg),
		grpc.WithStaticStreamWindowSize(streamWindow), grpc.WithStaticConnWindowSize(connWindow)}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(newTokenCredentials(cfg)))
	}
	cfg.DialOptions = append(opts, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.Address, cfg.DialOptions...)
	if err != nil {
		// grpc refuses options without transport security; anything else
		// fails again below and is reported then.
		opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, cfg.DialOptions...)
		conn, err = grpc.NewClient(cfg.Address, opts...)
		if err != nil {
			return nil, fmt.Errorf("switchyard: connecting to %s: %w", cfg.Address, err)
		}
	}
	return &Client{
		conn:     conn,
		timeout:  cfg.Timeout,
		events:   switchyardv1.NewEventServiceClient(conn),
		triggers: switchyardv1.NewTriggerServiceClient(conn),
		dlq:      switchyardv1.NewDeadLetterServiceClient(conn),
		sources:  switchyardv1.NewSourceServiceClient(conn),
		tokens:   switchyardv1.NewTokenServiceClient(conn),
		audit:    switchyardv1.NewAuditServiceClient(conn),
		archive:  switchyardv1.NewArchiveServiceClient(conn),
	}, nil
}

// Close closes the connection. Calls in progress fail with CANCELED.
func (c *Client) Close() error {
	return c.conn.Close()
}

// Events returns the generated EventService client on the Client's
// connection. Its calls get neither the default timeout nor typed errors.
func (c *Client) Events() switchyardv1.EventServiceClient { return c.events }

// Triggers returns the generated TriggerService client on the Client's
// connection, for the calls without a wrapper (CreateTrigger, UpdateTrigger
// with an expected generation). Its calls get neither the default timeout
// nor typed errors.
func (c *Client) Triggers() switchyardv1.TriggerServiceClient { return c.triggers }

// DeadLetters returns the generated DeadLetterService client on the Client's
// connection, to list, replay and purge dead letters. Its calls get neither
// the default timeout nor typed errors.
func (c *Client) DeadLetters() switchyardv1.DeadLetterServiceClient { return c.dlq }

// Archive returns the generated ArchiveService client on the Client's
// connection, to read the event archive and run replays of it. Its calls
// get neither the default timeout nor typed errors.
func (c *Client) Archive() switchyardv1.ArchiveServiceClient { return c.archive }

// Sources returns the generated SourceService client on the Client's
// connection, to list the connectors the server runs.
func (c *Client) Sources() switchyardv1.SourceServiceClient { return c.sources }

// Tokens returns the generated TokenService client on the Client's
// connection, to create, list and revoke API keys (role admin).
func (c *Client) Tokens() switchyardv1.TokenServiceClient { return c.tokens }

// Audit returns the generated AuditService client on the Client's
// connection, to read the audit log (role admin).
func (c *Client) Audit() switchyardv1.AuditServiceClient { return c.audit }

func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// Publish sends one event and returns once Switchyard has stored it durably
// for every trigger it matches (an event matching no trigger is accepted and
// dropped). The event is validated first (ev.Validate); an invalid event is
// reported as an [*InvalidEventError] without a call. Other errors are
// described in errors.go: [*PushbackError] when a matching trigger's queue
// is full, [ErrUnavailable] when Switchyard cannot be reached.
func (c *Client) Publish(ctx context.Context, ev event.Event) error {
	p, err := encode(&ev, "event")
	if err != nil {
		return err
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	_, err = c.events.Publish(ctx, &switchyardv1.PublishRequest{Event: p})
	return mapError(err, eventCall)
}

// PublishBatch sends events atomically: Switchyard accepts all of them or
// none (Switchyard takes at most 1000 per call). Every event is validated
// first; the returned [*InvalidEventError] lists the violations of all
// invalid events, with field paths naming their index ("events[3].source").
// An empty batch returns nil without a call. Errors are as for
// [Client.Publish].
func (c *Client) PublishBatch(ctx context.Context, evs []event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	req := &switchyardv1.PublishBatchRequest{Events: make([]*pb.CloudEvent, len(evs))}
	var invalid []*InvalidEventError
	for i := range evs {
		p, err := encode(&evs[i], fmt.Sprintf("events[%d]", i))
		if err != nil {
			var ie *InvalidEventError
			if !errors.As(err, &ie) {
				return err
			}
			invalid = append(invalid, ie)
			continue
		}
		req.Events[i] = p
	}
	if len(invalid) > 0 {
		all := &InvalidEventError{}
		var errs []error
		for _, ie := range invalid {
			all.Violations = append(all.Violations, ie.Violations...)
			errs = append(errs, ie.Err)
		}
		all.Err = errors.Join(errs...)
		return all
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	_, err := c.events.PublishBatch(ctx, req)
	return mapError(err, eventCall)
}

// encode validates an event and converts it to the protobuf format; path
// prefixes the violations' field paths.
func encode(ev *event.Event, path string) (*pb.CloudEvent, error) {
	if err := ev.Validate(); err != nil {
		return nil, &InvalidEventError{Violations: validationViolations(path, err), Err: fmt.Errorf("%s: %w", path, err)}
	}
	p, err := format.ToProto(ev)
	if err != nil {
		return nil, &InvalidEventError{Violations: []Violation{{Field: path, Description: err.Error()}}, Err: fmt.Errorf("%s: %w", path, err)}
	}
	if ev.DataEncoded == nil {
		// No data: send none rather than empty bytes.
		p.Data = nil
	}
	return p, nil
}

// validationViolations turns an sdk-go validation error into violations
// sorted by field, each naming the field of the protobuf CloudEvent as the
// server does ("spec_version", `attributes["subject"]`).
func validationViolations(path string, err error) []Violation {
	var ve event.ValidationError
	if !errors.As(err, &ve) {
		return []Violation{{Field: path, Description: err.Error()}}
	}
	vs := make([]Violation, 0, len(ve))
	for field, ferr := range ve {
		vs = append(vs, Violation{
			Field:       path + "." + cloudevent.ProtoField(strings.TrimPrefix(field, "extension:")),
			Description: ferr.Error(),
		})
	}
	slices.SortFunc(vs, func(a, b Violation) int { return strings.Compare(a.Field, b.Field) })
	return vs
}

// ApplyTrigger creates the trigger t or replaces the one with the same name;
// the response has the stored trigger and says whether it was created or
// changed. It returns once every live Switchyard instance routes by the
// trigger, or names in LaggingInstances those that had not confirmed it in
// time. A refused trigger is reported as an [*InvalidTriggerError].
func (c *Client) ApplyTrigger(ctx context.Context, t *switchyardv1.Trigger) (*switchyardv1.ApplyTriggerResponse, error) {
	if t == nil {
		return nil, &InvalidTriggerError{Violations: []Violation{{Field: "trigger", Description: "required"}}}
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.triggers.ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{Trigger: t})
	if err != nil {
		return nil, mapError(err, triggerCall)
	}
	return resp, nil
}

// GetTrigger returns the named trigger. An unknown trigger gives a gRPC
// NOT_FOUND status error (check with status.Code).
func (c *Client) GetTrigger(ctx context.Context, name string) (*switchyardv1.Trigger, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.triggers.GetTrigger(ctx, &switchyardv1.GetTriggerRequest{Name: name})
	if err != nil {
		return nil, mapError(err, triggerCall)
	}
	return resp.GetTrigger(), nil
}

// ListTriggers returns every trigger, sorted by name.
func (c *Client) ListTriggers(ctx context.Context) ([]*switchyardv1.Trigger, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.triggers.ListTriggers(ctx, &switchyardv1.ListTriggersRequest{})
	if err != nil {
		return nil, mapError(err, triggerCall)
	}
	return resp.GetTriggers(), nil
}

// DeleteTrigger removes the named trigger. Its queued events stay in the
// store, and resume if a trigger of that name is created again, unless purge
// is set, which also deletes them with the trigger's retries and dead
// letters. The response counts the events kept and, as ApplyTrigger's,
// names the instances still routing by the deleted trigger, if any.
func (c *Client) DeleteTrigger(ctx context.Context, name string, purge bool) (*switchyardv1.DeleteTriggerResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.triggers.DeleteTrigger(ctx, &switchyardv1.DeleteTriggerRequest{Name: name, Purge: purge})
	if err != nil {
		return nil, mapError(err, triggerCall)
	}
	return resp, nil
}

// SkipLane unblocks the lane of ordering key key of an ordered trigger,
// stopped by a dead letter (on_dead block), without replaying the dead
// letter: the lane's next event is delivered. key is as TriggerStats shows
// it in BlockedLanes.
func (c *Client) SkipLane(ctx context.Context, trigger, key string) error {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	if _, err := c.triggers.SkipLane(ctx, &switchyardv1.SkipLaneRequest{Name: trigger, Key: key}); err != nil {
		return mapError(err, triggerCall)
	}
	return nil
}

// TriggerStats returns the queue and delivery figures of the named trigger,
// or of every trigger (sorted by name) when name is empty.
func (c *Client) TriggerStats(ctx context.Context, name string) ([]*switchyardv1.TriggerStats, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.triggers.GetTriggerStats(ctx, &switchyardv1.GetTriggerStatsRequest{Name: name})
	if err != nil {
		return nil, mapError(err, triggerCall)
	}
	return resp.GetStats(), nil
}
