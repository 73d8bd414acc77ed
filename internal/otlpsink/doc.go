// Package otlpsink is an OTLP trace receiver on loopback, built on the OTLP
// collector protos: the gRPC TraceService and the OTLP/HTTP protobuf
// endpoint (/v1/traces). Tests point Switchyard's exporter at it and assert
// the spans it received; `switchyard bench` uses it, keeping nothing, as the
// collector of its traced run so that export costs what it costs against a
// real one. It is not a collector: it keeps spans in memory (or only counts
// them) and never forwards them.
package otlpsink
