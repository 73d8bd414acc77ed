// Package telemetry sets up Switchyard's OpenTelemetry tracing from the
// standard OTEL_* environment variables: which exporter (OTEL_TRACES_EXPORTER:
// "otlp" turns tracing on; unset or "none" leaves it off), the OTLP protocol
// (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL: "grpc"
// or "http/protobuf"), and, read by the OpenTelemetry SDK and its OTLP
// exporters themselves, the endpoint, headers, timeout, compression and
// certificates (OTEL_EXPORTER_OTLP_*), the sampler (OTEL_TRACES_SAMPLER,
// OTEL_TRACES_SAMPLER_ARG), the batch processor (OTEL_BSP_*) and the
// resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
//
// Off is the default because tracing every event has a price that an
// operator should choose to pay; when off, nothing of OpenTelemetry is
// installed at all (no provider, no gRPC stats handler, no HTTP middleware),
// so it costs nothing. [FromEnv] reads and checks the selection, so that a
// misspelt exporter, protocol or sampler is refused by --check-config
// rather than silently ignored; [New] builds the provider, and
// [Provider.Shutdown] flushes the spans still buffered.
package telemetry
