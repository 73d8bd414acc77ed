package server

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/auth/authgrpc"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// auditedMethods are the admin actions: each call of one writes exactly one
// audit record, whatever its outcome (refusals included).
var auditedMethods = map[string]string{
	switchyardv1.TriggerService_CreateTrigger_FullMethodName:        auth.ActionTriggerCreate,
	switchyardv1.TriggerService_ApplyTrigger_FullMethodName:         auth.ActionTriggerApply,
	switchyardv1.TriggerService_UpdateTrigger_FullMethodName:        auth.ActionTriggerUpdate,
	switchyardv1.TriggerService_DeleteTrigger_FullMethodName:        auth.ActionTriggerDelete,
	switchyardv1.DeadLetterService_ReplayDeadLetters_FullMethodName: auth.ActionDeadLetterReplay,
	switchyardv1.DeadLetterService_PurgeDeadLetters_FullMethodName:  auth.ActionDeadLetterPurge,
	switchyardv1.TriggerService_SkipLane_FullMethodName:             auth.ActionLaneSkip,
	switchyardv1.TokenService_CreateToken_FullMethodName:            auth.ActionTokenCreate,
	switchyardv1.TokenService_RevokeToken_FullMethodName:            auth.ActionTokenRevoke,
	switchyardv1.ArchiveService_StartReplay_FullMethodName:          auth.ActionArchiveReplay,
	switchyardv1.ArchiveService_CancelReplay_FullMethodName:         auth.ActionArchiveCancel,
}

// auditedStreams are the audited streaming methods with their request
// type: the interceptor reads the request first so that its record names
// the target even when the call is refused before the handler runs (as a
// unary call's request is decoded before its interceptors run).
var auditedStreams = map[string]func() proto.Message{
	switchyardv1.DeadLetterService_ReplayDeadLetters_FullMethodName: func() proto.Message { return &switchyardv1.ReplayDeadLettersRequest{} },
}

// auditTimeout bounds the write of one record; it runs on a context
// detached from the call's, so a caller that hangs up is audited too.
const auditTimeout = 2 * time.Second

// auditCall collects what the record of one call needs while the call runs.
// The interceptor owns it; the handler goroutine fills it in. A unary call
// and a stream's handler both finish before the interceptor reads it.
type auditCall struct {
	id     *auth.Identity // the caller, once authenticated
	target string
	detail string // what an accepted call did ("purged 3")
	denied error  // the refusal behind an answer that hides it (NOT_FOUND)
	dryRun bool   // the request asked for a dry run: its record says so, refused or not
}

type auditKey struct{}

func auditCallOf(ctx context.Context) *auditCall {
	c, _ := ctx.Value(auditKey{}).(*auditCall)
	return c
}

// noteDenied records err as the real outcome of an audited call that
// answers something else (a trigger out of scope answers NOT_FOUND).
func noteDenied(ctx context.Context, err error) {
	if c := auditCallOf(ctx); c != nil && c.denied == nil {
		c.denied = err
	}
}

// noteDetail sets what an audited call did, for its record.
func noteDetail(ctx context.Context, format string, args ...any) {
	if c := auditCallOf(ctx); c != nil {
		c.detail = fmt.Sprintf(format, args...)
	}
}

// targetOf names what an admin request acts on.
func targetOf(req any) string {
	switch r := req.(type) {
	case interface{ GetTrigger() *switchyardv1.Trigger }: // create, apply, update
		return r.GetTrigger().GetName()
	case *switchyardv1.DeleteTriggerRequest:
		return r.GetName()
	case *switchyardv1.SkipLaneRequest:
		return r.GetName()
	case *switchyardv1.ReplayDeadLettersRequest:
		return r.GetTrigger()
	case *switchyardv1.PurgeDeadLettersRequest:
		return r.GetTrigger()
	case *switchyardv1.CreateTokenRequest:
		return r.GetName()
	case *switchyardv1.RevokeTokenRequest:
		return r.GetName()
	case *switchyardv1.StartReplayRequest:
		return replayTarget(r.GetSpec())
	case *switchyardv1.CancelReplayRequest:
		return r.GetId()
	}
	return ""
}

// isDryRun reports whether an admin request asks for a dry run (trigger
// changes, dead-letter replays), which changes nothing.
func isDryRun(req any) bool {
	if r, ok := req.(*switchyardv1.StartReplayRequest); ok {
		return r.GetSpec().GetDryRun()
	}
	r, ok := req.(interface{ GetDryRun() bool })
	return ok && r.GetDryRun()
}

// auditor writes the records of admin actions. Its interceptors go before
// the authentication interceptors (so refusals are seen) and its capture
// interceptors after them (to learn who called).
type auditor struct {
	a   *auth.Auditor
	v   auth.Verifier
	log *slog.Logger
}

func (au *auditor) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		action, ok := auditedMethods[info.FullMethod]
		if !ok {
			return h(ctx, req)
		}
		call := &auditCall{target: targetOf(req), dryRun: isDryRun(req)}
		resp, err := h(context.WithValue(ctx, auditKey{}, call), req)
		au.record(ctx, call, info.FullMethod, action, err)
		return resp, err
	}
}

func (au *auditor) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		action, ok := auditedMethods[info.FullMethod]
		if !ok {
			return h(srv, ss)
		}
		call := &auditCall{}
		ps := &peekedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), auditKey{}, call)}
		if newReq := auditedStreams[info.FullMethod]; newReq != nil {
			ps.first = newReq()
			if err := ss.RecvMsg(ps.first); err != nil {
				return err
			}
			call.target = targetOf(ps.first)
			call.dryRun = isDryRun(ps.first)
			ps.req = ps.first
		}
		err := h(srv, ps)
		if r, ok := ps.last.(*switchyardv1.ReplayDeadLettersResponse); ok && call.detail == "" {
			req, _ := ps.req.(*switchyardv1.ReplayDeadLettersRequest)
			call.detail = fmt.Sprintf("to %s, dry run %v: replayed %d of %d, missing %d",
				cmp.Or(req.GetToTrigger(), req.GetTrigger()), req.GetDryRun(), r.GetReplayed(), r.GetTotal(), r.GetMissing())
		}
		au.record(ss.Context(), call, info.FullMethod, action, err)
		return err
	}
}

// captureUnary and captureStream run after authentication and hand the
// caller's identity to the audit record.
func captureUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if c := auditCallOf(ctx); c != nil {
		c.id = caller(ctx)
	}
	return h(ctx, req)
}

func captureStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if c := auditCallOf(ss.Context()); c != nil {
		c.id = caller(ss.Context())
	}
	return h(srv, ss)
}

// peekedStream hands the handler the request the interceptor already read,
// carries the audit call in its context, and keeps the last message sent
// (a replay's final progress, for the record's detail).
type peekedStream struct {
	grpc.ServerStream
	ctx   context.Context
	first proto.Message // not yet handed to the handler
	req   proto.Message
	last  any
}

func (s *peekedStream) SendMsg(m any) error {
	s.last = m
	return s.ServerStream.SendMsg(m)
}

func (s *peekedStream) Context() context.Context { return s.ctx }

func (s *peekedStream) RecvMsg(m any) error {
	if s.first == nil {
		return s.ServerStream.RecvMsg(m)
	}
	dst, ok := m.(proto.Message)
	if !ok {
		return status.Error(codes.Internal, "unexpected message type")
	}
	proto.Reset(dst)
	proto.Merge(dst, s.first)
	s.first = nil
	return nil
}

// record writes the call's record. A call refused before its handler ran
// (unauthenticated, or without the method's permission) has no identity
// yet: it is authenticated again here, for the subject, which costs a
// cached lookup and happens only on refusals.
func (au *auditor) record(ctx context.Context, call *auditCall, method, action string, err error) {
	outcome := call.denied
	if outcome == nil {
		outcome = outcomeOf(err)
	}
	id := call.id
	if id == nil {
		id = au.identify(ctx)
	}
	r := auth.RecordFor(id, action, call.target, outcome)
	r.Method = method
	switch {
	case r.Outcome == auth.OutcomeOK:
		r.Detail = call.detail
	case call.dryRun:
		// A refused dry run would otherwise read as a refused change.
		r.Detail = "dry run: " + r.Detail
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if werr := au.a.Record(wctx, r); werr != nil {
		// The log line is written all the same (Auditor.Record).
		au.log.Warn("audit record not stored", "action", action, "target", call.target, "err", werr)
	}
}

func (au *auditor) identify(ctx context.Context) *auth.Identity {
	creds, err := authgrpc.CredentialsFromContext(ctx)
	if err == nil {
		if id, err := au.v.Authenticate(ctx, creds); err == nil {
			return id
		}
	}
	id := &auth.Identity{}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		id.Remote = p.Addr.String()
	}
	return id
}

// statusOutcome is a handler's status error as an outcome auth.RecordFor
// classifies: refusals match the auth sentinels, other errors are failures.
type statusOutcome struct {
	msg  string
	kind error
}

func (e *statusOutcome) Error() string        { return e.msg }
func (e *statusOutcome) Is(target error) bool { return e.kind != nil && target == e.kind }

func outcomeOf(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	o := &statusOutcome{msg: st.Code().String() + ": " + st.Message()}
	switch st.Code() {
	case codes.Unauthenticated:
		o.kind = auth.ErrUnauthenticated
	case codes.PermissionDenied:
		o.kind = auth.ErrPermissionDenied
	}
	return o
}
