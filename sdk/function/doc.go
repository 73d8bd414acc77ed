// Package function is what Switchyard function authors import: it turns a
// plain Go [Handler] into a gRPC server implementing the
// switchyard.function.v1.FunctionService contract, which Switchyard calls to
// deliver each event routed to a trigger whose target is "grpc://host:port".
// The service serves both of the contract's RPCs: the unary Invoke, one call
// per event, and the bidirectional InvokeStream, which carries many
// invocations, run concurrently and answered in any order, over one
// long-lived stream. The handler sees no difference between them.
//
// A handler receives the event as an sdk-go [event.Event] with every context
// attribute and extension intact and its data byte-exact, and decides what
// happens to it:
//
//   - return a nil error to acknowledge the event (optionally with reply
//     events, see [Reply]; replies are published to the bus by Switchyard);
//   - return [RetryAfter] to ask for another attempt after a delay;
//   - return [Dead] to send the event to the dead-letter queue at once;
//   - return a gRPC status error (status.Error) to answer with that code,
//     which Switchyard classifies: UNAVAILABLE, DEADLINE_EXCEEDED,
//     RESOURCE_EXHAUSTED, ABORTED, INTERNAL and UNKNOWN are retried,
//     INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION and the other
//     permanent codes dead-letter the event;
//   - return any other error to ask for another attempt after the trigger's
//     backoff.
//
// A handler that panics is recovered; the attempt is answered with the gRPC
// code INTERNAL, which Switchyard retries. Invocation metadata (attempt
// number, trigger, deadline, idempotency key) is available through
// [FromContext].
//
// [Serve] and [ServeListener] run a complete server (the function service and
// the standard gRPC health service) until their context is done;
// [NewService] gives the bare service for callers that run their own
// grpc.Server.
//
// Switchyard delivers at least once: use [Info.IdempotencyKey] to deduplicate
// when side effects must not repeat.
//
// A trigger can authenticate its deliveries with secrets held by the
// Switchyard server: [RequireBearer] makes a gRPC function refuse calls
// without the trigger's bearer token, and [WebhookVerifier] checks the
// Standard Webhooks signature of HTTP deliveries (net/http middleware).
//
// Tracing: the handler's context continues the trace of Switchyard's
// delivery attempt (W3C Trace Context, sent with every attempt when
// Switchyard traces), so spans the handler starts are children of it. With
// OpenTelemetry's global tracer provider set (otel.SetTracerProvider), the
// service also records a "process <trigger>" span around the handler, and
// reply events without a traceparent continue its trace.
//
// The package deliberately depends only on gRPC (with the google.rpc status
// and error detail types), protobuf, the CloudEvents Go SDK (event and
// protobuf format), the OpenTelemetry API (not its SDK) and the generated
// contract package
// github.com/switchyard-io/switchyard/proto/switchyard/function/v1, so that
// importing it stays cheap for function authors.
package function
