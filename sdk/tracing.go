package sdk

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
)

// tracingOption instruments the Client's connection with otelgrpc: a
// client span per call, and the caller's trace context in the metadata,
// which Switchyard continues (a publish's events are delivered in the same
// trace). It records no metrics.
func tracingOption(cfg Config) grpc.DialOption {
	prop := cfg.Propagator
	if prop == nil {
		prop = otel.GetTextMapPropagator() // delegates to whatever is set later
	}
	opts := []otelgrpc.Option{
		otelgrpc.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, prop)),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
	if cfg.TracerProvider != nil {
		opts = append(opts, otelgrpc.WithTracerProvider(cfg.TracerProvider))
	}
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(opts...))
}
