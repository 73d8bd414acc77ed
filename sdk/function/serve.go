package function

import (
	"context"
	"errors"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// gracePeriod bounds GracefulStop before ServeListener falls back to Stop.
const gracePeriod = 10 * time.Second

// Serve listens on the TCP address addr ("host:port"; ":0" picks a free port)
// and serves h with [ServeListener].
func Serve(ctx context.Context, addr string, h Handler, opts ...grpc.ServerOption) error {
	if h == nil {
		return errors.New("function: Serve called with a nil Handler")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ServeListener(ctx, lis, h, opts...)
}

// ServeListener serves h on lis until ctx is done. It creates a grpc.Server
// with opts (transport credentials, interceptors, message size limits...),
// registers the FunctionService calling h and the standard gRPC health
// service (grpc.health.v1.Health, SERVING for "" and for
// "switchyard.function.v1.FunctionService").
//
// When ctx is done, the health status turns NOT_SERVING and the server stops
// gracefully: it refuses new calls and waits for running handlers; handlers
// still running after 10 seconds are cancelled (grpc.Server.Stop).
// ServeListener returns nil after such a shutdown, or the error that made the
// server fail. It always closes lis.
func ServeListener(ctx context.Context, lis net.Listener, h Handler, opts ...grpc.ServerOption) error {
	return serveListener(ctx, lis, h, gracePeriod, opts...)
}

func serveListener(ctx context.Context, lis net.Listener, h Handler, grace time.Duration, opts ...grpc.ServerOption) error {
	if h == nil {
		_ = lis.Close()
		return errors.New("function: ServeListener called with a nil Handler")
	}
	srv := grpc.NewServer(append(windowOptions(), opts...)...)
	functionv1.RegisterFunctionServiceServer(srv, NewService(h))
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(functionv1.FunctionService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	select {
	case err := <-served:
		// Serve failed on its own (the listener broke).
		hs.Shutdown()
		srv.Stop()
		return err
	case <-ctx.Done():
	}

	hs.Shutdown()
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		srv.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// windowOptions fix the HTTP/2 flow-control windows of the function's
// connections (options given to Serve may set others). With gRPC's default
// (windows sized by BDP estimation) the function answers the first data it
// receives after a quiet moment with a window update and a PING, which
// Switchyard must read and answer: below saturation that is every attempt.
// The estimate would grow a window to 16 MiB at most.
func windowOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StaticStreamWindowSize(4 << 20), grpc.StaticConnWindowSize(16 << 20)}
}
