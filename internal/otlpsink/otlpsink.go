package otlpsink

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// maxBody bounds one OTLP/HTTP request.
const maxBody = 64 << 20

// Span is one received span, flattened with its resource's service name.
type Span struct {
	Service      string
	TraceID      string // hex
	SpanID       string // hex
	ParentSpanID string // hex, "" for a root
	Name         string
	Kind         tracepb.Span_SpanKind
	Attributes   map[string]any // string, int64, float64, bool; other types as their string form
	Links        []Link
	Status       tracepb.Status_StatusCode
	Start, End   time.Time
}

// Link is a span link.
type Link struct{ TraceID, SpanID string }

// Sink receives spans over OTLP/gRPC (GRPCAddr) and OTLP/HTTP
// (HTTPEndpoint), both on loopback with random ports.
type Sink struct {
	collectortrace.UnimplementedTraceServiceServer
	keep  bool
	count atomic.Int64

	mu    sync.Mutex
	spans []Span

	gsrv       *grpc.Server
	hsrv       *http.Server
	glis, hlis net.Listener
	wg         sync.WaitGroup
}

// Start starts a sink; with keep false it only counts the spans. Close it.
func Start(keep bool) (*Sink, error) {
	s := &Sink{keep: keep}
	var err error
	if s.glis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if s.hlis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		_ = s.glis.Close()
		return nil, err
	}
	s.gsrv = grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(s.gsrv, s)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.serveHTTP)
	s.hsrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); _ = s.gsrv.Serve(s.glis) }()
	go func() { defer s.wg.Done(); _ = s.hsrv.Serve(s.hlis) }()
	return s, nil
}

// GRPCAddr is the host:port of the OTLP/gRPC receiver.
func (s *Sink) GRPCAddr() string { return s.glis.Addr().String() }

// HTTPEndpoint is the base URL of the OTLP/HTTP receiver (the exporter
// appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT).
func (s *Sink) HTTPEndpoint() string { return "http://" + s.hlis.Addr().String() }

// Close stops both receivers.
func (s *Sink) Close() {
	s.gsrv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.hsrv.Shutdown(ctx)
	s.wg.Wait()
}

// Count is the number of spans received.
func (s *Sink) Count() int64 { return s.count.Load() }

// Spans returns a copy of the spans kept so far.
func (s *Sink) Spans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Span(nil), s.spans...)
}

// Export implements the OTLP TraceService.
func (s *Sink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	s.take(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (s *Sink) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	req := &collectortrace.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.take(req)
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (s *Sink) take(req *collectortrace.ExportTraceServiceRequest) {
	var n int64
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			n += int64(len(ss.GetSpans()))
			if !s.keep {
				continue
			}
			for _, sp := range ss.GetSpans() {
				got = append(got, flatten(service, sp))
			}
		}
	}
	s.count.Add(n)
	if len(got) > 0 {
		s.mu.Lock()
		s.spans = append(s.spans, got...)
		s.mu.Unlock()
	}
}

func flatten(service string, sp *tracepb.Span) Span {
	out := Span{
		Service: service, TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
		Name: sp.GetName(), Kind: sp.GetKind(), Attributes: attributes(sp.GetAttributes()), Status: sp.GetStatus().GetCode(),
		Start: time.Unix(0, int64(sp.GetStartTimeUnixNano())), End: time.Unix(0, int64(sp.GetEndTimeUnixNano())),
	}
	if p := sp.GetParentSpanId(); len(p) > 0 {
		out.ParentSpanID = hex.EncodeToString(p)
	}
	for _, l := range sp.GetLinks() {
		out.Links = append(out.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
	}
	return out
}

func attributes(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = v.IntValue
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = v.DoubleValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = v.BoolValue
		default:
			m[kv.GetKey()] = kv.GetValue().String()
		}
	}
	return m
}
