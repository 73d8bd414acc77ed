package function

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// RequireBearer returns server options that refuse every call without
// "authorization: Bearer <token>" metadata carrying one of tokens (several
// while rotating), with UNAUTHENTICATED, which Switchyard dead-letters. It
// is what a function whose trigger names target.auth.bearer_secret
// passes to Serve:
//
//	function.Serve(ctx, ":7070", h, function.RequireBearer(os.Getenv("FN_TOKEN"))...)
//
// The gRPC health service stays open, for probes. RequireBearer panics
// without a token, or with an empty one.
func RequireBearer(tokens ...string) []grpc.ServerOption {
	if len(tokens) == 0 {
		panic("function: RequireBearer needs at least one token")
	}
	sums := make([][32]byte, len(tokens))
	for i, t := range tokens {
		if t == "" {
			panic("function: RequireBearer given an empty token")
		}
		sums[i] = sha256.Sum256([]byte(t))
	}
	check := func(ctx context.Context, method string) error {
		if strings.HasPrefix(method, "/"+healthpb.Health_ServiceDesc.ServiceName+"/") {
			return nil
		}
		md, _ := metadata.FromIncomingContext(ctx)
		for _, v := range md.Get("authorization") {
			tok, ok := bearerToken(v)
			if !ok {
				continue
			}
			// Compared as digests, in constant time and whatever the
			// lengths, against every token: the time taken says nothing
			// of which (or how much of one) matched.
			got := sha256.Sum256([]byte(tok))
			match := 0
			for i := range sums {
				match |= subtle.ConstantTimeCompare(got[:], sums[i][:])
			}
			if match == 1 {
				return nil
			}
		}
		return status.Error(codes.Unauthenticated, "function: a valid bearer token is required")
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

// bearerToken returns the token of an "authorization" value of the Bearer
// scheme (RFC 6750: the scheme is case-insensitive, one or more spaces
// follow it).
func bearerToken(v string) (string, bool) {
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}
