package authgrpc

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/switchyard-io/switchyard/auth"
	pb "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// Policy says what each gRPC method needs. Methods are full method names
// ("/switchyard.v1.EventService/Publish").
type Policy struct {
	// Methods maps a method to the permission checked (Identity.Allow)
	// before its handler runs.
	Methods map[string]auth.Permission
	// Public methods are served without credentials (health checks). A
	// method is never both.
	Public map[string]bool
}

// Health check methods, public in DefaultPolicy: orchestrators probe them
// without credentials.
const (
	HealthCheck = "/grpc.health.v1.Health/Check"
	HealthWatch = "/grpc.health.v1.Health/Watch"
	HealthList  = "/grpc.health.v1.Health/List"
)

// DefaultPolicy returns a fresh policy for the services of
// switchyard.v1 and gRPC health. Server reflection is left out on purpose
// (so denied): a server that keeps it registered while authentication is on
// must add it, with the permission it thinks right.
func DefaultPolicy() Policy {
	return Policy{
		Methods: map[string]auth.Permission{
			pb.EventService_Publish_FullMethodName:      auth.PermPublish,
			pb.EventService_PublishBatch_FullMethodName: auth.PermPublish,

			pb.TriggerService_CreateTrigger_FullMethodName:   auth.PermTriggersWrite,
			pb.TriggerService_ApplyTrigger_FullMethodName:    auth.PermTriggersWrite,
			pb.TriggerService_UpdateTrigger_FullMethodName:   auth.PermTriggersWrite,
			pb.TriggerService_DeleteTrigger_FullMethodName:   auth.PermTriggersWrite,
			pb.TriggerService_GetTrigger_FullMethodName:      auth.PermTriggersRead,
			pb.TriggerService_ListTriggers_FullMethodName:    auth.PermTriggersRead,
			pb.TriggerService_GetTriggerStats_FullMethodName: auth.PermTriggersRead,
			pb.TriggerService_TestFilter_FullMethodName:      auth.PermTriggersRead,
			// Unblocking a lane acts on a dead letter: an operator's.
			pb.TriggerService_SkipLane_FullMethodName: auth.PermDeadLettersWrite,

			pb.DeadLetterService_ListDeadLetters_FullMethodName:    auth.PermDeadLettersRead,
			pb.DeadLetterService_GetDeadLetter_FullMethodName:      auth.PermDeadLettersRead,
			pb.DeadLetterService_GetDeadLetterStats_FullMethodName: auth.PermDeadLettersRead,
			pb.DeadLetterService_ReplayDeadLetters_FullMethodName:  auth.PermDeadLettersWrite,
			pb.DeadLetterService_PurgeDeadLetters_FullMethodName:   auth.PermDeadLettersWrite,

			// The handlers also check the triggers and events a call
			// reaches against the caller's scope (server/api_archive.go).
			pb.ArchiveService_GetArchiveStats_FullMethodName:    auth.PermArchiveRead,
			pb.ArchiveService_ListArchivedEvents_FullMethodName: auth.PermArchiveRead,
			pb.ArchiveService_GetReplay_FullMethodName:          auth.PermArchiveRead,
			pb.ArchiveService_ListReplays_FullMethodName:        auth.PermArchiveRead,
			pb.ArchiveService_StartReplay_FullMethodName:        auth.PermArchiveReplay,
			pb.ArchiveService_CancelReplay_FullMethodName:       auth.PermArchiveReplay,

			pb.SourceService_ListSources_FullMethodName: auth.PermSourcesRead,

			// The handler also checks the trigger it names against the
			// caller's trigger scope (AllowTrigger).
			pb.PullService_Pull_FullMethodName: auth.PermConsume,
		},
		Public: map[string]bool{HealthCheck: true, HealthWatch: true, HealthList: true},
	}
}

// CheckCoverage returns an error naming every method of the server's
// services (grpc.Server.GetServiceInfo) that the policy does not mention,
// and every method it lists both as public and with a permission. Call it
// after registering the services: such a method would be denied to everyone
// (safe, but a bug).
func CheckCoverage(services map[string]grpc.ServiceInfo, p Policy) error {
	var missing []string
	for svc, info := range services {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			_, hasPerm := p.Methods[full]
			switch {
			case hasPerm && p.Public[full]:
				missing = append(missing, full+" (both public and permissioned)")
			case !hasPerm && !p.Public[full]:
				missing = append(missing, full)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return fmt.Errorf("authgrpc: methods without a permission: %v", missing)
}

// UnaryInterceptor authenticates each call and checks its method's
// permission.
func UnaryInterceptor(v auth.Verifier, p Policy) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := admit(ctx, v, p, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates each stream when it opens and checks its
// method's permission; the handler's stream carries the identity in its
// context.
func StreamInterceptor(v auth.Verifier, p Policy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := admit(ss.Context(), v, p, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &identityStream{ServerStream: ss, ctx: ctx})
	}
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// admit authenticates the caller of method and checks the policy.
func admit(ctx context.Context, v auth.Verifier, p Policy, method string) (context.Context, error) {
	if p.Public[method] {
		return ctx, nil
	}
	creds, err := CredentialsFromContext(ctx)
	if err != nil {
		return ctx, Status(err)
	}
	id, err := v.Authenticate(ctx, creds)
	if err != nil {
		return ctx, Status(err)
	}
	perm, ok := p.Methods[method]
	if !ok {
		return ctx, status.Errorf(codes.PermissionDenied, "permission denied: method %s is not in the permission table", method)
	}
	if err := id.Allow(perm); err != nil {
		return ctx, Status(err)
	}
	return auth.NewContext(ctx, id), nil
}

// CredentialsFromContext collects what the caller of a gRPC call presented:
// the bearer token of its "authorization" metadata, its verified
// certificate chains when it connected with TLS, and its address.
func CredentialsFromContext(ctx context.Context) (auth.Credentials, error) {
	var c auth.Credentials
	tok, err := BearerFromMetadata(ctx)
	if err != nil {
		return c, err
	}
	c.Bearer = tok
	if pr, ok := peer.FromContext(ctx); ok {
		if pr.Addr != nil {
			c.Remote = pr.Addr.String()
		}
		if ti, ok := pr.AuthInfo.(credentials.TLSInfo); ok {
			c.VerifiedChains = ti.State.VerifiedChains
			c.PeerCertificates = ti.State.PeerCertificates
		}
	}
	return c, nil
}

// BearerFromMetadata returns the bearer token of the incoming
// "authorization" metadata ("" when there is none). Several values are
// refused, as is any scheme but Bearer.
func BearerFromMetadata(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return auth.BearerFromValues(md.Get("authorization"))
}

// Status turns an error of the auth package into a gRPC status error:
// UNAUTHENTICATED, PERMISSION_DENIED (with details), UNAVAILABLE; any other
// error becomes INTERNAL without its text.
func Status(err error) error {
	var de *auth.DeniedError
	var ue *auth.UnauthenticatedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue):
		return status.Error(codes.Unauthenticated, ue.Error())
	case errors.Is(err, auth.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, "unauthenticated")
	case errors.As(err, &de):
		st := status.New(codes.PermissionDenied, de.Error())
		md := map[string]string{"permission": string(de.Permission)}
		if de.Field != "" {
			md["field"] = de.Field
			md["value"] = de.Value
		}
		details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: "PERMISSION_DENIED", Domain: "switchyard.io", Metadata: md}}
		if de.Field != "" {
			details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: de.Field, Description: de.Error()}}})
		}
		if st2, derr := st.WithDetails(details...); derr == nil {
			st = st2
		}
		return st.Err()
	case errors.Is(err, auth.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, "permission denied")
	case errors.Is(err, auth.ErrUnavailable):
		return status.Error(codes.Unavailable, "credentials cannot be checked now: the key store is unavailable; retry")
	}
	return status.Error(codes.Internal, "internal error while authenticating")
}
