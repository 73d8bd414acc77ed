package server

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-io/switchyard/internal/telemetry"
)

// The ingest continues the traceparent header; without one, the binary-mode
// ce-traceparent (the event's own extension); with neither, nothing.
func TestIngestPropagator(t *testing.T) {
	const (
		header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		ce     = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	p := ingestPropagator{telemetry.Propagator()}
	for name, tc := range map[string]struct {
		headers map[string]string
		want    string // trace id, "" for none
	}{
		"header":         {map[string]string{"traceparent": header}, "0af7651916cd43dd8448eb211c80319c"},
		"both":           {map[string]string{"traceparent": header, "ce-traceparent": ce}, "0af7651916cd43dd8448eb211c80319c"},
		"extension only": {map[string]string{"ce-traceparent": ce, "ce-tracestate": "k=v"}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		"bad header":     {map[string]string{"traceparent": "garbage", "ce-traceparent": ce}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		"neither":        {map[string]string{"ce-id": "1"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			sc := trace.SpanContextFromContext(p.Extract(context.Background(), propagation.HeaderCarrier(h)))
			if tc.want == "" {
				if sc.IsValid() {
					t.Fatalf("extracted %v", sc)
				}
				return
			}
			if sc.TraceID().String() != tc.want || !sc.IsRemote() {
				t.Fatalf("trace %s remote %v, want %s", sc.TraceID(), sc.IsRemote(), tc.want)
			}
			if name == "extension only" && sc.TraceState().String() != "k=v" {
				t.Fatalf("trace state %q", sc.TraceState())
			}
		})
	}
}
