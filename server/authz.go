package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/auth/authgrpc"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/store"
)

// This file holds the handlers' authorization decisions. The transport
// adapters (authgrpc, authhttp) have already authenticated the caller and
// checked that it holds the method's permission; what is decided here
// depends on what the call names: the trigger it acts on, the events it
// publishes.
//
// A trigger outside the caller's scope answers NOT_FOUND, with the very
// message a missing trigger gets, for every call that names an existing
// trigger (get, update, delete, stats, dead letters): the answer then says
// nothing about another tenant's triggers, not even whether a name is
// taken. Creating or applying a trigger whose name lies outside the scope
// is PERMISSION_DENIED instead: that answer too is the same whether the
// name exists or not, and it tells the caller what is wrong. The audit log
// records the real reason of either.

// caller returns the identity the interceptors put in ctx; nil (which
// denies everything) when there is none.
func caller(ctx context.Context) *auth.Identity {
	id, _ := auth.FromContext(ctx)
	return id
}

// triggerNotFound is what the store answers for a trigger that does not
// exist.
func triggerNotFound(name string) error {
	return StatusFor(fmt.Errorf("trigger %q: %w", name, store.ErrNotFound))
}

// allowTriggers checks perm on each named trigger (empty names are skipped:
// the handler reports a missing name itself). A trigger outside the
// caller's scope answers as if it did not exist; the audit record of the
// call gets the real refusal.
func allowTriggers(ctx context.Context, perm auth.Permission, names ...string) error {
	id := caller(ctx)
	for _, n := range names {
		if n == "" {
			continue
		}
		if err := id.AllowTrigger(perm, n); err != nil {
			noteDenied(ctx, err)
			var de *auth.DeniedError
			if errors.As(err, &de) && de.Field == "trigger" {
				return triggerNotFound(n)
			}
			return authgrpc.Status(err)
		}
	}
	return nil
}

// visibleTriggers keeps the names the caller may see, in order.
func visibleTriggers(ctx context.Context, names []string) []string {
	id := caller(ctx)
	out := names[:0:0]
	for _, n := range names {
		if id.CanSeeTrigger(n) {
			out = append(out, n)
		}
	}
	return out
}

// scopeTrigger gives a trigger being created or changed the caller's event
// scope: where the caller's scope restricts event sources (or types), the
// trigger's scope must too, within the caller's, so the trigger can never
// receive events the caller could not publish. A dimension the request
// leaves empty takes the caller's prefixes; a wider one is refused, naming
// perm (triggers.write for a change, triggers.read for a filter test of a
// trigger the caller sends). t is the normalized trigger, changed in place.
func scopeTrigger(ctx context.Context, t *switchyardv1.Trigger, perm auth.Permission) error {
	id := caller(ctx)
	if id == nil {
		return authgrpc.Status(auth.ErrPermissionDenied)
	}
	sc := t.GetScope()
	want := auth.Scope{Sources: sc.GetSources(), Types: sc.GetTypes(), Triggers: id.Scope.Triggers}
	if len(id.Scope.Sources) > 0 && len(want.Sources) == 0 {
		want.Sources = id.Scope.Sources
	}
	if len(id.Scope.Types) > 0 && len(want.Types) == 0 {
		want.Types = id.Scope.Types
	}
	if !id.Covers(want) {
		err := &auth.DeniedError{Subject: id.Subject, Permission: perm, Field: "trigger.scope",
			Value: strings.Join(append(append([]string{}, sc.GetSources()...), sc.GetTypes()...), ",")}
		noteDenied(ctx, err)
		return authgrpc.Status(err)
	}
	if len(want.Sources) > 0 || len(want.Types) > 0 {
		t.Scope = &switchyardv1.EventScope{Sources: want.Sources, Types: want.Types}
	}
	return nil
}

// publishDenial is the first event of a publish the caller may not send.
type publishDenial struct {
	index int // position in the call; -1 for a single event
	err   *auth.DeniedError
}

// path names the refused attribute as a request names it: prefix
// "event" (one event) or "events" (a batch: "events[2].source").
func (d *publishDenial) path(single string) string {
	field := d.err.Field
	if field == "" {
		return ""
	}
	if d.index < 0 {
		if single == "" {
			return field
		}
		return single + "." + field
	}
	return fmt.Sprintf("events[%d].%s", d.index, field)
}

// authorizePublish checks every event against the caller's scope (its
// source and type, and the right to set the hop count when the event
// carries one) and returns the first refusal: the whole call is then
// refused, so nothing is ever partly accepted.
func authorizePublish(id *auth.Identity, events []*pb.CloudEvent, batch bool) *publishDenial {
	for i, ev := range events {
		err := id.AllowPublish(ev.GetSource(), ev.GetType())
		if err == nil {
			if _, ok := ev.GetAttributes()[auth.HopsAttribute]; ok {
				err = id.AllowHops()
			}
		}
		if err == nil {
			continue
		}
		d := &publishDenial{index: -1}
		if batch {
			d.index = i
		}
		if !errors.As(err, &d.err) {
			d.err = &auth.DeniedError{Permission: auth.PermPublish}
		}
		return d
	}
	return nil
}

// badInput reports whether the refusal is of the event rather than of the
// caller's reach: a hop count set by a publisher without the right to set
// it is invalid input (400 / INVALID_ARGUMENT, as a negative one is), so a
// loop cannot be restarted by resetting the counter, and a client treats it
// as a malformed event to fix, not as a permission to ask for.
func (d *publishDenial) badInput() bool { return d.err.Permission == auth.PermSetHops }

// status is the gRPC refusal of a publish: PERMISSION_DENIED with an
// ErrorInfo and a BadRequest naming the attribute ("event.source",
// "events[2].type").
func (d *publishDenial) status() error {
	path := d.path("event")
	msg := d.err.Error() + "; nothing was accepted"
	if path != "" {
		msg = path + ": " + msg
	}
	md := map[string]string{"permission": string(d.err.Permission)}
	details := []protoMessage{}
	if path != "" {
		md["field"], md["value"] = path, d.err.Value
	}
	code, reason := codes.PermissionDenied, "PERMISSION_DENIED"
	if d.badInput() {
		code, reason = codes.InvalidArgument, "HOP_COUNT_NOT_ALLOWED"
	}
	details = append(details, &errdetails.ErrorInfo{Reason: reason, Domain: "switchyard.io", Metadata: md})
	if path != "" {
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: path, Description: msg}}})
	}
	return withDetails(code, msg, details...)
}

// problem is the HTTP refusal of a publish: 403 problem JSON naming the
// attribute (and, in a batch, the event's index).
func (d *publishDenial) problem() Problem {
	path := d.path("")
	p := Problem{Type: "/problems/permission-denied", Title: "Permission denied", Status: http.StatusForbidden,
		Detail: d.err.Error() + "; nothing was accepted"}
	if d.badInput() {
		p.Type, p.Title, p.Status = "/problems/invalid-event", "Invalid event", http.StatusBadRequest
	}
	if path != "" {
		p.Detail = path + ": " + p.Detail
		pd := ProblemDetail{Attribute: d.err.Field, Field: path, Detail: d.err.Error()}
		if d.index >= 0 {
			i := d.index
			pd.Index = &i
		}
		p.Errors = []ProblemDetail{pd}
	}
	return p
}

// sourcesVisible reports whether the caller may see the server's sources:
// they belong to the platform, not to a tenant, so a scoped identity sees
// none.
func sourcesVisible(ctx context.Context) bool {
	id := caller(ctx)
	return id != nil && id.Scope.Unrestricted()
}

// allowNewTrigger checks that the caller may write the trigger it names in
// a create, apply or update. A name outside its scope is PERMISSION_DENIED
// for create and apply (the answer does not depend on whether the name is
// taken), NOT_FOUND for update (which needs an existing trigger, so it
// answers as for one that does not exist).
func allowNewTrigger(ctx context.Context, name string, update bool) error {
	if name == "" || update {
		return allowTriggers(ctx, auth.PermTriggersWrite, name)
	}
	return allowTriggerName(ctx, auth.PermTriggersWrite, name)
}

// allowTriggerName checks perm on a trigger the request carries rather
// than names: one outside the caller's scope is PERMISSION_DENIED naming
// "trigger.name".
func allowTriggerName(ctx context.Context, perm auth.Permission, name string) error {
	if err := caller(ctx).AllowTrigger(perm, name); err != nil {
		noteDenied(ctx, err)
		var de *auth.DeniedError
		if errors.As(err, &de) && de.Field == "trigger" {
			de.Field = "trigger.name"
		}
		return authgrpc.Status(err)
	}
	return nil
}

// archivedEventsVisible returns which archived events the caller may read:
// those inside its event scope (sources and types). An identity scoped by
// trigger names alone is refused (PERMISSION_DENIED): nothing tells its
// events from another tenant's.
func archivedEventsVisible(ctx context.Context) (func(*pb.CloudEvent) bool, error) {
	id := caller(ctx)
	if id == nil {
		return nil, authgrpc.Status(auth.ErrPermissionDenied)
	}
	if len(id.Scope.Sources) == 0 && len(id.Scope.Types) == 0 && len(id.Scope.Triggers) > 0 {
		noteDenied(ctx, &auth.DeniedError{Subject: id.Subject, Permission: auth.PermArchiveRead, Field: "scope"})
		return nil, withDetails(codes.PermissionDenied,
			"permission denied: archived events are read within an event scope (sources or types), and this identity is scoped by trigger names only",
			&errdetails.ErrorInfo{Reason: "PERMISSION_DENIED", Domain: "switchyard.io", Metadata: map[string]string{"permission": string(auth.PermArchiveRead)}})
	}
	return func(ev *pb.CloudEvent) bool {
		return id.Scope.AllowsSource(ev.GetSource()) && id.Scope.AllowsType(ev.GetType())
	}, nil
}

// replayVisible reports whether the caller may see (and, with
// archive.replay, cancel) a job: one into a trigger it may see, or an
// all-matching one whose creator's trigger scope lies within its own.
func replayVisible(id *auth.Identity, spec *switchyardv1.ReplaySpec) bool {
	switch {
	case id == nil:
		return false
	case len(id.Scope.Triggers) == 0:
		return true
	case spec.GetTrigger() != "":
		return id.CanSeeTrigger(spec.GetTrigger())
	case len(spec.GetScopeTriggers()) == 0:
		return false
	}
	for _, p := range spec.GetScopeTriggers() {
		if !id.Scope.AllowsTrigger(p) {
			return false
		}
	}
	return true
}
