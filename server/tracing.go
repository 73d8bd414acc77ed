package server

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/switchyard-io/switchyard/internal/telemetry"
	"github.com/switchyard-io/switchyard/router"
)

// Tracing on the listeners, installed only when tracing is on (off, the
// listeners run exactly as without it):
//   - gRPC: otelgrpc's server stats handler, for the switchyard.v1 API only
//     (health checks and reflection make no spans); a Publish or
//     PublishBatch span continues the caller's trace from the gRPC metadata
//     (traceparent, tracestate). A stats handler sees a call before any
//     interceptor, so calls refused by authentication have spans too.
//   - HTTP: otelhttp's middleware on /events only (not on probes, push
//     sources or /metrics), outside authentication as on gRPC; the server
//     span continues the caller's traceparent and
//     tracestate headers, or, when they are absent, the event's own
//     ce-traceparent and ce-tracestate (binary mode): a publisher that set
//     only the CloudEvents extension is still the caller.
// Spans of the router (publish, deliver) are children of these; metrics of
// the instrumentation are not recorded (Prometheus has its own).

// grpcTracing returns the gRPC server option that traces the API.
func grpcTracing(p *telemetry.Provider) grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(p.TracerProvider()),
		otelgrpc.WithPropagators(p.Propagator()),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(filters.ServicePrefix("switchyard.v1.")),
	))
}

// httpTracing traces the requests to /events through h, the listener's
// handler (authentication included, so a refused request has its span
// too); other paths go to h untraced.
func httpTracing(p *telemetry.Provider, h http.Handler) http.Handler {
	traced := otelhttp.NewHandler(h, "POST /events",
		otelhttp.WithTracerProvider(p.TracerProvider()),
		otelhttp.WithPropagators(ingestPropagator{p.Propagator()}),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " /events" }),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			traced.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// routerTracing is the router's share of the provider.
func routerTracing(p *telemetry.Provider) router.Tracing {
	return router.Tracing{Provider: p.TracerProvider(), Propagator: p.Propagator()}
}

// ingestPropagator extracts the caller's trace context from the standard
// headers and, when they hold none, from the CloudEvents binary-mode
// headers of the distributed tracing extension.
type ingestPropagator struct{ propagation.TextMapPropagator }

func (p ingestPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	out := p.TextMapPropagator.Extract(ctx, c)
	if trace.SpanContextFromContext(out).IsValid() {
		return out
	}
	return propagation.TraceContext{}.Extract(ctx, ceHeaders{c})
}

// ceHeaders reads traceparent and tracestate from their ce- headers.
type ceHeaders struct{ propagation.TextMapCarrier }

func (c ceHeaders) Get(key string) string { return c.TextMapCarrier.Get("ce-" + key) }
