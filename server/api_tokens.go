package server

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/auth/authgrpc"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// tokenService manages API keys through auth.KeyStore, which enforces who
// may grant what (Identity.AllowGrant) and what a scoped admin sees.
type tokenService struct {
	switchyardv1.UnimplementedTokenServiceServer
	keys *auth.KeyStore
}

func tokenOf(k auth.KeyInfo) *switchyardv1.Token {
	t := &switchyardv1.Token{
		Name: k.Name, Id: k.ID, CreatedBy: k.CreatedBy, CreateTime: timestamppb.New(k.Created),
		Scope: &switchyardv1.TokenScope{Sources: k.Scope.Sources, Types: k.Scope.Types, Triggers: k.Scope.Triggers},
	}
	for _, r := range k.Roles {
		t.Roles = append(t.Roles, string(r))
	}
	if !k.Expires.IsZero() {
		t.ExpireTime = timestamppb.New(k.Expires)
	}
	return t
}

// tokenStatus maps an error of the key store to its status.
func tokenStatus(err error) error {
	var fe auth.FieldErrors
	switch {
	case errors.As(err, &fe):
		br := &errdetails.BadRequest{}
		msgs := make([]string, len(fe))
		for i, f := range fe {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Path, Description: f.Msg})
			msgs[i] = f.Error()
		}
		return withDetails(codes.InvalidArgument, "invalid token request: "+strings.Join(msgs, "; "), br)
	case errors.Is(err, auth.ErrKeyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, auth.ErrKeyNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, auth.ErrPermissionDenied), errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrUnavailable):
		return authgrpc.Status(err)
	}
	// The store is full, or no unique id could be drawn.
	return status.Error(codes.FailedPrecondition, err.Error())
}

func (s *tokenService) CreateToken(ctx context.Context, req *switchyardv1.CreateTokenRequest) (*switchyardv1.CreateTokenResponse, error) {
	spec := auth.KeySpec{
		Name: req.GetName(),
		Scope: auth.Scope{Sources: slices.Clone(req.GetScope().GetSources()), Types: slices.Clone(req.GetScope().GetTypes()),
			Triggers: slices.Clone(req.GetScope().GetTriggers())},
		TTL: req.GetTtl().AsDuration(),
	}
	for _, r := range req.GetRoles() {
		spec.Roles = append(spec.Roles, auth.Role(r))
	}
	key, info, err := s.keys.Create(ctx, caller(ctx), spec)
	if err != nil {
		return nil, tokenStatus(err)
	}
	noteDetail(ctx, "id %s, roles %s", info.ID, strings.Join(req.GetRoles(), ","))
	return &switchyardv1.CreateTokenResponse{Token: tokenOf(info), Secret: key}, nil
}

func (s *tokenService) ListTokens(ctx context.Context, _ *switchyardv1.ListTokensRequest) (*switchyardv1.ListTokensResponse, error) {
	keys, err := s.keys.List(ctx, caller(ctx))
	if err != nil {
		return nil, tokenStatus(err)
	}
	out := &switchyardv1.ListTokensResponse{}
	for _, k := range keys {
		out.Tokens = append(out.Tokens, tokenOf(k))
	}
	return out, nil
}

func (s *tokenService) RevokeToken(ctx context.Context, req *switchyardv1.RevokeTokenRequest) (*switchyardv1.RevokeTokenResponse, error) {
	info, err := s.keys.Revoke(ctx, caller(ctx), req.GetName())
	if err != nil {
		return nil, tokenStatus(err)
	}
	noteDetail(ctx, "id %s", info.ID)
	return &switchyardv1.RevokeTokenResponse{Token: tokenOf(info)}, nil
}

// auditService reads the audit log.
type auditService struct {
	switchyardv1.UnimplementedAuditServiceServer
	a *auth.Auditor
}

// ListAuditRecords returns the records the caller may see: all of them for
// an unrestricted admin; for one whose scope restricts trigger names, the
// records of its triggers only (token records name no trigger, so they are
// left out).
func (s *auditService) ListAuditRecords(ctx context.Context, req *switchyardv1.ListAuditRecordsRequest) (*switchyardv1.ListAuditRecordsResponse, error) {
	if req.GetLimit() < 0 {
		return nil, withDetails(codes.InvalidArgument, "limit must not be negative",
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "limit", Description: "must not be negative"}}})
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, auth.MaxAuditList)
	id := caller(ctx)
	scoped := len(id.Scope.Triggers) > 0
	fetch := limit
	if scoped {
		fetch = auth.MaxAuditList // filtered below; read a full page to fill the answer
	}
	var since time.Time // zero: the latest records
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	recs, err := s.a.List(ctx, since, fetch)
	if err != nil {
		return nil, authgrpc.Status(err)
	}
	out := &switchyardv1.ListAuditRecordsResponse{}
	for _, r := range recs {
		if scoped && (strings.HasPrefix(r.Action, "token.") || !id.CanSeeTrigger(r.Target)) {
			continue
		}
		out.Records = append(out.Records, &switchyardv1.AuditRecord{
			Id: r.ID, Time: timestamppb.New(r.Time), Subject: r.Subject, AuthMethod: string(r.AuthMethod), Method: r.Method,
			Action: r.Action, Target: r.Target, Remote: r.Remote, Outcome: r.Outcome, Detail: r.Detail,
		})
	}
	if len(out.Records) > limit {
		if req.GetSince() == nil {
			out.Records = out.Records[len(out.Records)-limit:] // the latest ones
		} else {
			out.Records = out.Records[:limit]
		}
	}
	return out, nil
}
