package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/logging"
)

// Every API call, HTTP or gRPC, has a request id: the one the caller sent
// (X-Request-Id header, x-request-id metadata) when logging.CleanRequestID
// keeps it, else a new one. It is returned in the answer's header (metadata)
// and carried in the call's context, so every line logged with that context
// has it (logging.Handler). At debug level each call also logs one line
// (method, path or RPC, status, duration).

// requestIDMetadata is the gRPC metadata key of the request id.
var requestIDMetadata = strings.ToLower(logging.RequestIDHeader)

// withRequestID gives every HTTP request its request id.
func withRequestID(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := logging.RequestIDFrom(req.Header.Get(logging.RequestIDHeader))
		w.Header().Set(logging.RequestIDHeader, id)
		ctx := logging.WithRequestID(req.Context(), id)
		req = req.WithContext(ctx)
		if !log.Enabled(ctx, slog.LevelDebug) {
			next.ServeHTTP(w, req)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, req)
		log.LogAttrs(ctx, slog.LevelDebug, "http request", slog.String("method", req.Method), slog.String("path", req.URL.Path),
			slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)))
	})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer's Flush and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestIDOf returns the request id for a gRPC call's incoming metadata.
func requestIDOf(ctx context.Context) string {
	var sent string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestIDMetadata); len(v) > 0 {
			sent = v[0]
		}
	}
	return logging.RequestIDFrom(sent)
}

// requestIDUnary gives every unary gRPC call its request id.
func requestIDUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		id := requestIDOf(ctx)
		_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDMetadata, id))
		ctx = logging.WithRequestID(ctx, id)
		start := time.Now()
		resp, err := h(ctx, req)
		logCall(ctx, log, info.FullMethod, err, start)
		return resp, err
	}
}

// requestIDStream gives every streaming gRPC call its request id.
func requestIDStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		id := requestIDOf(ss.Context())
		_ = ss.SetHeader(metadata.Pairs(requestIDMetadata, id))
		ctx := logging.WithRequestID(ss.Context(), id)
		start := time.Now()
		err := h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
		logCall(ctx, log, info.FullMethod, err, start)
		return err
	}
}

func logCall(ctx context.Context, log *slog.Logger, method string, err error, start time.Time) {
	if log.Enabled(ctx, slog.LevelDebug) {
		log.LogAttrs(ctx, slog.LevelDebug, "grpc call", slog.String("method", method), slog.String("code", status.Code(err).String()),
			slog.Duration("duration", time.Since(start)))
	}
}

// ctxStream is a server stream with another context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }
