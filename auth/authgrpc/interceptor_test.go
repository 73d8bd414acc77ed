package authgrpc_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cepb "github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/auth/authgrpc"
	"github.com/switchyard-io/switchyard/auth/internal/authtest"
	"github.com/switchyard-io/switchyard/internal/testenv"
	pb "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

const adminToken = "bootstrap-0123456789abcdef0123456789abcdef"

// The services below stand in for the server's handlers: they make the
// handler-side decisions the real ones must make (scope of the event, of
// the trigger) on the identity the interceptor put in the context, and
// answer with the caller's subject so the test sees who arrived.
type events struct {
	pb.UnimplementedEventServiceServer
}

func (events) Publish(ctx context.Context, r *pb.PublishRequest) (*pb.PublishResponse, error) {
	id, _ := auth.FromContext(ctx)
	if err := id.AllowPublish(r.GetEvent().GetSource(), r.GetEvent().GetType()); err != nil {
		return nil, authgrpc.Status(err)
	}
	return &pb.PublishResponse{Triggers: []string{id.Subject}}, nil
}

type triggers struct {
	pb.UnimplementedTriggerServiceServer
}

func (triggers) DeleteTrigger(ctx context.Context, r *pb.DeleteTriggerRequest) (*pb.DeleteTriggerResponse, error) {
	id, _ := auth.FromContext(ctx)
	if err := id.AllowTrigger(auth.PermTriggersWrite, r.GetName()); err != nil {
		return nil, authgrpc.Status(err)
	}
	return &pb.DeleteTriggerResponse{}, nil
}

type deadLetters struct {
	pb.UnimplementedDeadLetterServiceServer
}

func (deadLetters) ReplayDeadLetters(r *pb.ReplayDeadLettersRequest, s grpc.ServerStreamingServer[pb.ReplayDeadLettersResponse]) error {
	id, _ := auth.FromContext(s.Context())
	if err := id.AllowTrigger(auth.PermDeadLettersWrite, r.GetTrigger()); err != nil {
		return authgrpc.Status(err)
	}
	return s.Send(&pb.ReplayDeadLettersResponse{Done: true, Total: int64(len(id.Subject))})
}

type fixture struct {
	a    *auth.Authenticator
	conn *grpc.ClientConn
	keys map[string]string // name → API key
}

func newServer(t *testing.T, a *auth.Authenticator, creds credentials.TransportCredentials) (*grpc.Server, string) {
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(authgrpc.UnaryInterceptor(a, authgrpc.DefaultPolicy())),
		grpc.ChainStreamInterceptor(authgrpc.StreamInterceptor(a, authgrpc.DefaultPolicy())),
	}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	s := grpc.NewServer(opts...)
	pb.RegisterEventServiceServer(s, events{})
	pb.RegisterTriggerServiceServer(s, triggers{})
	pb.RegisterDeadLetterServiceServer(s, deadLetters{})
	pb.RegisterSourceServiceServer(s, pb.UnimplementedSourceServiceServer{})
	healthpb.RegisterHealthServer(s, health.NewServer())
	reflection.Register(s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return s, ln.Addr().String()
}

func setup(t *testing.T) *fixture {
	b := testenv.Real(t)
	a, err := auth.New(auth.Config{KeyPrefix: b.Prefix, AdminToken: adminToken}, b.Client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	f := &fixture{a: a, keys: map[string]string{}}
	for _, spec := range []auth.KeySpec{
		{Name: "publisher", Roles: []auth.Role{auth.RolePublisher}, Scope: auth.Scope{Sources: []string{"/shop/"}}},
		{Name: "viewer", Roles: []auth.Role{auth.RoleViewer}},
		{Name: "shop-operator", Roles: []auth.Role{auth.RoleOperator}, Scope: auth.Scope{Triggers: []string{"shop-"}}},
	} {
		key, _, err := a.Keys().Create(context.Background(), auth.Anonymous(), spec)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[spec.Name] = key
	}
	_, addr := newServer(t, a, nil)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	f.conn = conn
	return f
}

func as(key string) context.Context {
	if key == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), contains) {
		t.Fatalf("got %v (%q), want %v containing %q", st.Code(), st.Message(), code, contains)
	}
	return st
}

func event(source, typ string) *pb.PublishRequest {
	return &pb.PublishRequest{Event: &cepb.CloudEvent{Id: "1", Source: source, Type: typ, SpecVersion: "1.0"}}
}

func TestInterceptors(t *testing.T) {
	f := setup(t)
	evc := pb.NewEventServiceClient(f.conn)
	trc := pb.NewTriggerServiceClient(f.conn)
	dlc := pb.NewDeadLetterServiceClient(f.conn)

	t.Run("no token", func(t *testing.T) {
		_, err := evc.Publish(as(""), event("/shop/a", "t"))
		wantCode(t, err, codes.Unauthenticated, "no credentials")
	})
	t.Run("bad token", func(t *testing.T) {
		_, err := evc.Publish(as("syk_nothing"), event("/shop/a", "t"))
		wantCode(t, err, codes.Unauthenticated, "malformed API key")
	})
	t.Run("two authorization values", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer a", "authorization", "Bearer b")
		_, err := evc.Publish(ctx, event("/shop/a", "t"))
		wantCode(t, err, codes.Unauthenticated, "more than one")
	})
	t.Run("publisher publishes; identity reaches the handler", func(t *testing.T) {
		r, err := evc.Publish(as(f.keys["publisher"]), event("/shop/a", "t"))
		if err != nil || len(r.Triggers) != 1 || r.Triggers[0] != "publisher" {
			t.Fatalf("%v %v", r, err)
		}
	})
	t.Run("publisher out of its source scope", func(t *testing.T) {
		_, err := evc.Publish(as(f.keys["publisher"]), event("/bank/a", "t"))
		st := wantCode(t, err, codes.PermissionDenied, `source "/bank/a"`)
		var info *errdetails.ErrorInfo
		var br *errdetails.BadRequest
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *errdetails.ErrorInfo:
				info = d
			case *errdetails.BadRequest:
				br = d
			}
		}
		if info == nil || info.Reason != "PERMISSION_DENIED" || info.Metadata["field"] != "source" || info.Metadata["permission"] != string(auth.PermPublish) {
			t.Fatalf("ErrorInfo %v", info)
		}
		if br == nil || br.FieldViolations[0].Field != "source" {
			t.Fatalf("BadRequest %v", br)
		}
	})
	t.Run("publisher calling DeleteTrigger", func(t *testing.T) {
		_, err := trc.DeleteTrigger(as(f.keys["publisher"]), &pb.DeleteTriggerRequest{Name: "shop-a"})
		wantCode(t, err, codes.PermissionDenied, string(auth.PermTriggersWrite))
	})
	t.Run("viewer cannot delete", func(t *testing.T) {
		_, err := trc.DeleteTrigger(as(f.keys["viewer"]), &pb.DeleteTriggerRequest{Name: "x"})
		wantCode(t, err, codes.PermissionDenied, "lacks")
	})
	t.Run("tenant operator deletes its own trigger, not another's", func(t *testing.T) {
		if _, err := trc.DeleteTrigger(as(f.keys["shop-operator"]), &pb.DeleteTriggerRequest{Name: "shop-orders"}); err != nil {
			t.Fatal(err)
		}
		_, err := trc.DeleteTrigger(as(f.keys["shop-operator"]), &pb.DeleteTriggerRequest{Name: "bank-ledger"})
		wantCode(t, err, codes.PermissionDenied, `trigger "bank-ledger"`)
	})
	t.Run("bootstrap admin", func(t *testing.T) {
		if _, err := trc.DeleteTrigger(as(adminToken), &pb.DeleteTriggerRequest{Name: "x"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("stream interceptor", func(t *testing.T) {
		s, err := dlc.ReplayDeadLetters(as(f.keys["shop-operator"]), &pb.ReplayDeadLettersRequest{Trigger: "shop-orders", All: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Recv()
		if err != nil || !r.Done || r.Total != int64(len("shop-operator")) {
			t.Fatalf("%v %v", r, err)
		}
		s, _ = dlc.ReplayDeadLetters(as(f.keys["shop-operator"]), &pb.ReplayDeadLettersRequest{Trigger: "bank-ledger", All: true})
		_, err = s.Recv()
		wantCode(t, err, codes.PermissionDenied, "bank-ledger")
		s, _ = dlc.ReplayDeadLetters(as(f.keys["viewer"]), &pb.ReplayDeadLettersRequest{Trigger: "x", All: true})
		_, err = s.Recv()
		wantCode(t, err, codes.PermissionDenied, string(auth.PermDeadLettersWrite))
		s, _ = dlc.ReplayDeadLetters(as(""), &pb.ReplayDeadLettersRequest{Trigger: "x", All: true})
		_, err = s.Recv()
		wantCode(t, err, codes.Unauthenticated, "")
	})
	t.Run("health is public", func(t *testing.T) {
		r, err := healthpb.NewHealthClient(f.conn).Check(as(""), &healthpb.HealthCheckRequest{})
		if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%v %v", r, err)
		}
	})
	t.Run("a method missing from the policy is denied, even to the admin", func(t *testing.T) {
		s, err := reflectionpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(as(adminToken))
		if err == nil {
			_ = s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			_, err = s.Recv()
		}
		wantCode(t, err, codes.PermissionDenied, "not in the permission table")
		// Without credentials it is unauthenticated first.
		s, err = reflectionpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(as(""))
		if err == nil {
			_ = s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			_, err = s.Recv()
		}
		wantCode(t, err, codes.Unauthenticated, "")
	})
}

func TestCheckCoverage(t *testing.T) {
	a, err := auth.New(auth.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newServer(t, a, nil)
	p := authgrpc.DefaultPolicy()
	err = authgrpc.CheckCoverage(s.GetServiceInfo(), p)
	if err == nil || !strings.Contains(err.Error(), "ServerReflectionInfo") {
		t.Fatalf("reflection should be reported as uncovered: %v", err)
	}
	if strings.Contains(err.Error(), "switchyard.v1") {
		t.Fatalf("the default policy misses a switchyard method: %v", err)
	}
	p.Methods["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"] = auth.PermTriggersRead
	p.Methods["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] = auth.PermTriggersRead
	if err := authgrpc.CheckCoverage(s.GetServiceInfo(), p); err != nil {
		t.Fatal(err)
	}
	delete(p.Methods, pb.TriggerService_DeleteTrigger_FullMethodName)
	if err := authgrpc.CheckCoverage(s.GetServiceInfo(), p); err == nil || !strings.Contains(err.Error(), "DeleteTrigger") {
		t.Fatalf("a missing method not reported: %v", err)
	}
	p.Public[pb.TriggerService_GetTrigger_FullMethodName] = true
	if err := authgrpc.CheckCoverage(s.GetServiceInfo(), p); err == nil || !strings.Contains(err.Error(), "both public") {
		t.Fatalf("a method both public and permissioned not reported: %v", err)
	}
}

// TestAuthenticationOff: with nothing configured every caller is the
// anonymous identity with every permission.
func TestAuthenticationOff(t *testing.T) {
	a, err := auth.New(auth.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := newServer(t, a, nil)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := pb.NewEventServiceClient(conn).Publish(as(""), event("/any", "t"))
	if err != nil || r.Triggers[0] != "anonymous" {
		t.Fatalf("%v %v", r, err)
	}
	if _, err := pb.NewTriggerServiceClient(conn).DeleteTrigger(as(""), &pb.DeleteTriggerRequest{Name: "x"}); err != nil {
		t.Fatal(err)
	}
}

// TestMTLSOverGRPC: a client certificate from the client CA authenticates
// over a real TLS connection; one from another CA never gets through.
func TestMTLSOverGRPC(t *testing.T) {
	serverCA, clientCA, otherCA := authtest.NewCA(t, "server"), authtest.NewCA(t, "client"), authtest.NewCA(t, "other")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, clientCA.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{
		APIKeys: auth.APIKeyConfig{Disabled: true}, MTLS: auth.MTLSConfig{ClientCAFile: caFile},
		Identities: []auth.StaticIdentity{{Subject: "spiffe://shop/ingest", Roles: []auth.Role{auth.RolePublisher}}},
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tcfg := &tls.Config{Certificates: []tls.Certificate{serverCA.Server(t)}, MinVersion: tls.VersionTLS12}
	a.ConfigureServerTLS(tcfg)
	_, addr := newServer(t, a, credentials.NewTLS(tcfg))

	dial := func(cert tls.Certificate) pb.EventServiceClient {
		ccfg := &tls.Config{RootCAs: serverCA.Pool(), ServerName: "localhost",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(ccfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return pb.NewEventServiceClient(conn)
	}
	r, err := dial(clientCA.Client(t, "x", "spiffe://shop/ingest")).Publish(context.Background(), event("/a", "t"))
	if err != nil || r.Triggers[0] != "spiffe://shop/ingest" {
		t.Fatalf("%v %v", r, err)
	}
	_, err = dial(otherCA.Client(t, "x", "spiffe://shop/ingest")).Publish(context.Background(), event("/a", "t"))
	if st, _ := status.FromError(err); err == nil || st.Code() == codes.OK {
		t.Fatal("a certificate from another CA got through")
	}
	// A plaintext client cannot talk to the TLS listener at all.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pb.NewEventServiceClient(conn).Publish(context.Background(), event("/a", "t")); err == nil {
		t.Fatal("plaintext reached a TLS listener")
	}
}

func TestStatus(t *testing.T) {
	cases := map[error]codes.Code{
		nil:                             codes.OK,
		auth.ErrUnauthenticated:         codes.Unauthenticated,
		&auth.UnauthenticatedError{}:    codes.Unauthenticated,
		auth.ErrPermissionDenied:        codes.PermissionDenied,
		&auth.DeniedError{}:             codes.PermissionDenied,
		auth.ErrUnavailable:             codes.Unavailable,
		errors.New("redis: secret=xyz"): codes.Internal,
	}
	for err, want := range cases {
		got := status.Code(authgrpc.Status(err))
		if got != want {
			t.Errorf("Status(%v) = %v, want %v", err, got, want)
		}
	}
	if strings.Contains(authgrpc.Status(errors.New("redis: secret=xyz")).Error(), "xyz") {
		t.Fatal("an internal error's text reached the caller")
	}
}

func FuzzBearerFromMetadata(f *testing.F) {
	f.Add("Bearer abc", "")
	f.Add("Bearer abc", "Bearer def")
	f.Add("basic x", "")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		md := metadata.MD{}
		for _, v := range []string{v1, v2} {
			if v != "" {
				md.Append("authorization", v)
			}
		}
		ctx := metadata.NewIncomingContext(context.Background(), md)
		tok, err := authgrpc.BearerFromMetadata(ctx)
		if err != nil {
			if tok != "" || !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("%q %v", tok, err)
			}
			return
		}
		if len(md.Get("authorization")) > 1 {
			t.Fatal("two values accepted")
		}
		if tok != "" && !strings.HasSuffix(v1+v2, tok) {
			t.Fatalf("token %q not from %q %q", tok, v1, v2)
		}
	})
}
