package logging

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Keys the Handler adds.
const (
	KeyTraceID   = "trace_id"
	KeySpanID    = "span_id"
	KeyRequestID = "request_id"
)

// Handler wraps a slog.Handler: a record logged with a context carrying a
// valid span gets trace_id and span_id, and one carrying a request id gets
// request_id. A key the record (or the logger, through With) sets already
// is not added twice: the router logs an event's own trace id, which wins.
// Inside a group (WithGroup) the keys land in the group.
type Handler struct {
	inner slog.Handler
	// has records the keys the logger's own attributes set (With, outside
	// any group).
	has     keySet
	grouped bool
}

type keySet uint8

const (
	hasTrace keySet = 1 << iota
	hasSpan
	hasRequest
)

func keyBit(k string) keySet {
	switch k {
	case KeyTraceID:
		return hasTrace
	case KeySpanID:
		return hasSpan
	case KeyRequestID:
		return hasRequest
	}
	return 0
}

// NewHandler wraps inner; wrapping a Handler returns it unchanged.
func NewHandler(inner slog.Handler) slog.Handler {
	if h, ok := inner.(*Handler); ok {
		return h
	}
	return &Handler{inner: inner}
}

// Wrap returns log with its handler wrapped by NewHandler (log itself when
// it is already).
func Wrap(log *slog.Logger) *slog.Logger {
	if _, ok := log.Handler().(*Handler); ok {
		return log
	}
	return slog.New(NewHandler(log.Handler()))
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.inner.Handle(ctx, r)
	}
	sc := trace.SpanContextFromContext(ctx)
	rid := RequestID(ctx)
	if !sc.IsValid() && rid == "" {
		return h.inner.Handle(ctx, r)
	}
	has := h.has
	if !h.grouped {
		r.Attrs(func(a slog.Attr) bool {
			has |= keyBit(a.Key)
			return true
		})
	}
	r = r.Clone()
	if sc.IsValid() {
		if has&hasTrace == 0 {
			r.AddAttrs(slog.String(KeyTraceID, sc.TraceID().String()))
		}
		if has&hasSpan == 0 {
			r.AddAttrs(slog.String(KeySpanID, sc.SpanID().String()))
		}
	}
	if rid != "" && has&hasRequest == 0 {
		r.AddAttrs(slog.String(KeyRequestID, rid))
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := &Handler{inner: h.inner.WithAttrs(attrs), has: h.has, grouped: h.grouped}
	if !h.grouped {
		for _, a := range attrs {
			n.has |= keyBit(a.Key)
		}
	}
	return n
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{inner: h.inner.WithGroup(name), has: h.has, grouped: true}
}
