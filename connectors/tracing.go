package connectors

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracedPublish publishes a batch under a span of its own, "receive
// <source>" (CLIENT, messaging operation receive), which starts when the
// batch's first message was read (not while the source waited for it) and
// ends once the batch is acknowledged at the source. The router's publish
// span is its child, so events that carry no trace context of their own
// continue this one.
func (r *Runner) tracedPublish(ctx context.Context, s *running, batch []*Message, first time.Time) {
	ctx, span := r.cfg.Tracer.Start(ctx, "receive "+s.name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(first),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("switchyard"),
			semconv.MessagingOperationTypeReceive,
			semconv.MessagingOperationName("read"),
			semconv.MessagingBatchMessageCount(len(batch)),
			attribute.String("switchyard.source.name", s.name),
			attribute.String("switchyard.source.kind", s.kind),
		))
	defer span.End()
	r.publish(ctx, s, batch)
}
