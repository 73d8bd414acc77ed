package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Values of Config.Exporter.
const (
	// ExporterNone (or "") leaves tracing off.
	ExporterNone = "none"
	// ExporterOTLP exports spans over OTLP.
	ExporterOTLP = "otlp"
)

// Values of Config.Protocol.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
	// DefaultProtocol is the OpenTelemetry specification's default.
	DefaultProtocol = ProtocolHTTP
)

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise.
const DefaultServiceName = "switchyard"

// ErrInvalid is wrapped by every error of FromEnv and Validate.
var ErrInvalid = errors.New("invalid tracing setting")

// Config selects the trace exporter. The zero value is off.
type Config struct {
	// Exporter is ExporterOTLP to trace, ExporterNone or "" not to.
	Exporter string
	// Protocol is the OTLP transport: ProtocolGRPC or ProtocolHTTP
	// (DefaultProtocol when empty).
	Protocol string
	// ServiceVersion and InstanceID become service.version and
	// service.instance.id of the resource, when set.
	ServiceVersion, InstanceID string
}

// Enabled reports whether c turns tracing on.
func (c Config) Enabled() bool { return c.Exporter == ExporterOTLP }

// Validate reports an exporter or protocol this build does not support.
func (c Config) Validate() error {
	var errs []error
	switch c.Exporter {
	case "", ExporterNone, ExporterOTLP:
	default:
		errs = append(errs, fmt.Errorf("%w: OTEL_TRACES_EXPORTER %q: want otlp or none", ErrInvalid, c.Exporter))
	}
	switch c.Protocol {
	case "", ProtocolGRPC, ProtocolHTTP:
	default:
		errs = append(errs, fmt.Errorf("%w: OTLP protocol %q: want grpc or http/protobuf", ErrInvalid, c.Protocol))
	}
	return errors.Join(errs...)
}

// FromEnv reads the exporter and protocol from the environment (getenv is
// os.Getenv outside tests) and checks the settings the SDK would otherwise
// ignore with a warning: the exporter list, the protocol and the sampler.
// OTEL_SDK_DISABLED=true turns tracing off whatever else is set.
func FromEnv(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return c, nil
	}
	for _, e := range strings.Split(getenv("OTEL_TRACES_EXPORTER"), ",") {
		switch e = strings.TrimSpace(e); e {
		case "", ExporterNone:
		case ExporterOTLP:
			c.Exporter = ExporterOTLP
		default:
			errs = append(errs, fmt.Errorf("%w: OTEL_TRACES_EXPORTER %q: this build exports over OTLP only (want otlp or none)", ErrInvalid, e))
		}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			if v != ProtocolGRPC && v != ProtocolHTTP {
				errs = append(errs, fmt.Errorf("%w: %s %q: want grpc or http/protobuf", ErrInvalid, name, v))
			}
			c.Protocol = v
			break
		}
	}
	errs = append(errs, checkSampler(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG")))
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// checkSampler refuses the sampler names and arguments that the SDK does not
// understand (it would log and sample everything instead).
func checkSampler(name, arg string) error {
	name, arg = strings.TrimSpace(name), strings.TrimSpace(arg)
	switch strings.ToLower(name) {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil
	case "traceidratio", "parentbased_traceidratio":
		if arg == "" {
			return nil // the SDK samples everything
		}
		if r, err := strconv.ParseFloat(arg, 64); err != nil || r < 0 || r > 1 {
			return fmt.Errorf("%w: OTEL_TRACES_SAMPLER_ARG %q: want a ratio between 0 and 1", ErrInvalid, arg)
		}
		return nil
	}
	return fmt.Errorf("%w: OTEL_TRACES_SAMPLER %q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", ErrInvalid, name)
}

// Provider is a running tracer provider with its exporter.
type Provider struct {
	tp   *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
}

// New builds the exporter and the tracer provider for c, which must be
// enabled. The exporter does not connect here: export errors are reported
// later, through log (OpenTelemetry's error handler is process-wide, so
// New points it at log).
func New(ctx context.Context, c Config, log *slog.Logger) (*Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, fmt.Errorf("%w: tracing is off", ErrInvalid)
	}
	if log == nil {
		log = slog.Default()
	}
	var client otlptrace.Client
	switch c.Protocol {
	case ProtocolGRPC:
		client = otlptracegrpc.NewClient()
	default:
		client = otlptracehttp.NewClient()
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("trace exporter: %w", err)
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(DefaultServiceName)}
	if c.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(c.ServiceVersion))
	}
	if c.InstanceID != "" {
		attrs = append(attrs, semconv.ServiceInstanceID(c.InstanceID))
	}
	// Later detectors win: the environment's service name over the default.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithHost(), resource.WithProcessPID(), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		if res == nil {
			_ = exp.Shutdown(ctx)
			return nil, fmt.Errorf("trace resource: %w", err)
		}
		// A malformed OTEL_RESOURCE_ATTRIBUTES entry: the rest is used.
		log.Warn("trace resource", "err", err)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("opentelemetry", "err", err)
	}))
	// The sampler comes from OTEL_TRACES_SAMPLER (parent-based always-on
	// by default), the batching from OTEL_BSP_*.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Provider{tp: tp, prop: Propagator()}, nil
}

// Propagator is what Switchyard reads and writes trace context with: W3C
// Trace Context and Baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// TracerProvider returns the provider.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Propagator returns the provider's propagator.
func (p *Provider) Propagator() propagation.TextMapPropagator { return p.prop }

// Shutdown exports the spans still buffered and stops the exporter, within
// ctx. Nil-safe; later spans are dropped.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}
