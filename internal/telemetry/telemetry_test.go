package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/switchyard-io/switchyard/internal/otlpsink"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

func TestFromEnv(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want Config
		bad  bool
	}{
		"unset: off":           {env: nil, want: Config{}},
		"none: off":            {env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}, want: Config{}},
		"otlp":                 {env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: Config{Exporter: ExporterOTLP}},
		"otlp among none":      {env: map[string]string{"OTEL_TRACES_EXPORTER": "none, otlp"}, want: Config{Exporter: ExporterOTLP}},
		"grpc":                 {env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: Config{Exporter: ExporterOTLP, Protocol: ProtocolGRPC}},
		"traces protocol wins": {env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, want: Config{Exporter: ExporterOTLP, Protocol: ProtocolHTTP}},
		"sdk disabled":         {env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, want: Config{}},
		"ratio sampler":        {env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, want: Config{Exporter: ExporterOTLP}},
		"console refused":      {env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, bad: true},
		"http/json refused":    {env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, bad: true},
		"unknown sampler":      {env: map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, bad: true},
		"ratio out of range":   {env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, bad: true},
		"ratio not a number":   {env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, bad: true},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tc.env[k] })
			if tc.bad {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := (Config{Exporter: "zipkin"}).Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("exporter: %v", err)
	}
	if err := (Config{Exporter: ExporterOTLP, Protocol: "udp"}).Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("protocol: %v", err)
	}
	if _, err := New(context.Background(), Config{}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("New when off: %v", err)
	}
}

// A span reaches the OTLP receiver over each protocol, with the service
// name from the environment, once Shutdown has flushed it.
func TestProviderExports(t *testing.T) {
	sink, err := otlpsink.Start(true)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			endpoint := sink.HTTPEndpoint()
			if proto == ProtocolGRPC {
				endpoint = "http://" + sink.GRPCAddr()
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_SERVICE_NAME", "switchyard-"+proto)
			cfg := Config{Exporter: ExporterOTLP, Protocol: proto, InstanceID: "i-1"}
			p, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			_, span := p.TracerProvider().Tracer("test").Start(context.Background(), "span-"+proto)
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			var found bool
			testenv.Eventually(t, 5*time.Second, func() bool {
				for _, s := range sink.Spans() {
					if s.Name == "span-"+proto && s.Service == "switchyard-"+proto {
						found = true
					}
				}
				return found
			}, "span over %s", proto)
		})
	}
}

func TestPropagatorFields(t *testing.T) {
	got := map[string]bool{}
	for _, f := range Propagator().Fields() {
		got[f] = true
	}
	for _, f := range (propagation.TraceContext{}).Fields() {
		if !got[f] {
			t.Errorf("propagator lacks %s", f)
		}
	}
}
