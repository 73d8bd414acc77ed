// Package logging holds what the server's logs need beyond log/slog:
//
//   - Handler, a slog.Handler wrapper that adds to every record logged with
//     a context the trace_id and span_id of the OpenTelemetry span in it
//     and the request id of the API call it serves (WithRequestID), so the
//     lines of one call, or of one trace, can be found together;
//   - request ids: NewRequestID, and CleanRequestID, which decides whether
//     an id a client sent (X-Request-Id) may be kept;
//   - Limiter, which rate-limits log lines per key (a trigger and a reason)
//     and counts what it suppressed, so a failure repeated for every event
//     at thousands of events a second costs a few lines and a summary
//     ("N similar lines suppressed"), not a line per attempt.
//
// It imports only the standard library and the OpenTelemetry trace API (no
// SDK): a span put in the context by any OpenTelemetry setup is seen.
package logging
