package delivery

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// oldRequest is the InvokeRequest as invokeGRPC built it before raw.go: the
// stored event decoded, to be encoded again by the gRPC codec.
func oldRequest(raw []byte, a *Attempt, deadline time.Time) (*functionv1.InvokeRequest, error) {
	ev := &pb.CloudEvent{}
	if err := proto.Unmarshal(raw, ev); err != nil {
		return nil, err
	}
	return &functionv1.InvokeRequest{
		Event:          ev,
		Attempt:        int32(a.Number),
		Trigger:        a.Trigger,
		Deadline:       timestamppb.New(deadline),
		IdempotencyKey: IdempotencyKey(ev),
		Round:          int32(a.Round),
		TraceContext:   a.Trace,
	}, nil
}

// traced is the propagation fields of a sampled span with a trace state.
var traced = map[string]string{
	"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	"tracestate":  "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
}

func str(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func sampleEvents(t testing.TB) map[string]*pb.CloudEvent {
	payload, err := anypb.New(wrapperspb.String("hello"))
	require.NoError(t, err)
	base := func() *pb.CloudEvent {
		return &pb.CloudEvent{Id: "e-1", Source: "/orders", SpecVersion: "1.0", Type: "com.example.order.created"}
	}
	extensions := base()
	extensions.Attributes = map[string]*pb.CloudEventAttributeValue{
		"traceparent":     str("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
		"switchyardhops":  {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: -3}},
		"flag":            {Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: true}},
		"blob":            {Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: []byte{0, 1, 0xff}}},
		"dataschema":      {Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: "https://example.com/schema"}},
		"ref":             {Attr: &pb.CloudEventAttributeValue_CeUriRef{CeUriRef: "/a/b"}},
		"time":            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(time.Date(2024, 5, 1, 12, 0, 0, 123, time.UTC))}},
		"empty":           {},
		"datacontenttype": str("application/json"),
	}
	extensions.Data = &pb.CloudEvent_TextData{TextData: `{"n":1}`}
	binary := base()
	binary.Data = &pb.CloudEvent_BinaryData{BinaryData: bytes.Repeat([]byte{0xde, 0xad, 0, 0xbe}, 300)}
	text := base()
	text.Data = &pb.CloudEvent_TextData{TextData: "héllo wörld ✓"}
	protoData := base()
	protoData.Attributes = map[string]*pb.CloudEventAttributeValue{"datacontenttype": str("application/protobuf")}
	protoData.Data = &pb.CloudEvent_ProtoData{ProtoData: payload}
	return map[string]*pb.CloudEvent{
		"empty":      {},
		"minimal":    base(),
		"extensions": extensions,
		"binary":     binary,
		"text":       text,
		"proto":      protoData,
		"large":      bench1KiB(),
	}
}

// bench1KiB is a 1 KiB JSON event with five extensions.
func bench1KiB() *pb.CloudEvent {
	return &pb.CloudEvent{
		Id: "0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b", Source: "/shop/orders", SpecVersion: "1.0", Type: "com.example.order.created",
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"datacontenttype": str("application/json"),
			"subject":         str("order-42"),
			"time":            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))}},
			"traceparent":     str("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
			"tenant":          str("acme"),
			"region":          str("eu-west-1"),
			"switchyardhops":  {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: 1}},
		},
		Data: &pb.CloudEvent_TextData{TextData: `{"items":"` + strings.Repeat("x", 1024-12) + `"}`},
	}
}

var deadlines = []time.Time{
	time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC),
	time.Unix(1700000000, 0),
	time.Unix(0, 5),
	time.Unix(-1, 999999999), // before 1970: negative seconds
	{},                       // no deadline
}

// The hand-encoded request is the request the decode and re-encode built,
// down to the bytes when the event was stored deterministically.
func TestEncodeInvokeRequestMatchesDecodedRequest(t *testing.T) {
	det := proto.MarshalOptions{Deterministic: true}
	for name, ev := range sampleEvents(t) {
		t.Run(name, func(t *testing.T) {
			raw, err := det.Marshal(ev)
			require.NoError(t, err)
			key, err := ScanEvent(raw)
			require.NoError(t, err)
			require.Equal(t, IdempotencyKey(ev), key)
			for _, a := range []*Attempt{
				{Trigger: "orders", Number: 1},
				{Trigger: "orders-with-a-much-longer-name", Number: 1 << 20},
				{Number: 0},
				{Trigger: "orders", Number: 1, Round: 1},
				{Trigger: "orders", Number: 7, Round: 1 << 20},
				{Trigger: "orders", Number: 1, Round: -1}, // never sent; encoded as proto.Marshal would
				{Trigger: "orders", Number: 2, Trace: traced},
				{Trigger: "orders", Number: 1, Round: 3, Trace: map[string]string{"traceparent": traced["traceparent"]}},
				{Trigger: "orders", Number: 1, Trace: map[string]string{"": "", "baggage": "k=v"}}, // empty key and value are still written
			} {
				a.Raw, a.Key = raw, key
				for _, dl := range deadlines {
					got := encodeInvokeRequest(a, dl)
					want, err := oldRequest(raw, a, dl)
					require.NoError(t, err)
					dec := &functionv1.InvokeRequest{}
					require.NoError(t, proto.Unmarshal(got, dec))
					require.True(t, proto.Equal(want, dec), "got %v\nwant %v", dec, want)
					wantBytes, err := det.Marshal(want)
					require.NoError(t, err)
					require.Equal(t, wantBytes, got)
				}
			}
		})
	}
}

func TestScanEventRejectsWhatUnmarshalRejects(t *testing.T) {
	valid, err := proto.Marshal(bench1KiB())
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"truncated":         valid[:len(valid)-1],
		"bad tag":           {0x00},
		"field too large":   {0x80, 0x80, 0x80, 0x80, 0x10, 0x00}, // number 1<<29, a varint
		"stray end group":   {0x0c},
		"bad group":         {0x0b, 0x14}, // ends group 2, started group 1
		"bad utf-8 id":      {0x0a, 0x01, 0xff},
		"bad utf-8 map key": {0x2a, 0x03, 0x0a, 0x01, 0xff},
		"bad utf-8 ext":     {0x2a, 0x08, 0x0a, 0x01, 'k', 0x12, 0x03, 0x1a, 0x01, 0xff},
		"bad nested ts":     {0x2a, 0x06, 0x12, 0x04, 0x3a, 0x02, 0x08, 0x80},
		"bad any type url":  {0x42, 0x03, 0x0a, 0x01, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			require.Error(t, proto.Unmarshal(b, &pb.CloudEvent{}), "the case itself")
			_, err := ScanEvent(b)
			require.Error(t, err)
		})
	}
}

// ScanEvent accepts exactly what proto.Unmarshal accepts, never panics, and
// what it accepts encodes to the request the old code built, in every round
// and with any trace context.
func FuzzScanEvent(f *testing.F) {
	for _, ev := range sampleEvents(f) {
		b, err := proto.Marshal(ev)
		require.NoError(f, err)
		f.Add(b, int32(0), "", "")
		f.Add(b, int32(3), traced["traceparent"], traced["tracestate"])
		f.Add(b[:len(b)/2], int32(1), traced["traceparent"], "")
	}
	for _, b := range [][]byte{
		{},
		{0x0a, 0x01, 0xff},
		{0x0b, 0x08, 0x01, 0x0c}, // a group, as an unknown field
		{0x08, 0x01, 0x30, 0x02, 0x45, 1, 2, 3, 4}, // known numbers, other wire types
	} {
		f.Add(b, int32(0), "", "")
	}
	f.Fuzz(func(t *testing.T, raw []byte, round int32, traceparent, tracestate string) {
		a := &Attempt{Trigger: "t", Number: 2, Raw: raw, Round: int(round)}
		if traceparent != "" || tracestate != "" {
			// The router's propagator writes ASCII; proto3 strings are UTF-8.
			a.Trace = map[string]string{"traceparent": strings.ToValidUTF8(traceparent, "?"), "tracestate": strings.ToValidUTF8(tracestate, "?")}
		}
		dl := deadlines[0]
		want, werr := oldRequest(raw, a, dl)
		key, err := ScanEvent(raw)
		if werr != nil {
			require.Error(t, err, "proto.Unmarshal: %v", werr)
			return
		}
		require.NoError(t, err)
		require.Equal(t, want.IdempotencyKey, key)
		a.Key = key
		dec := &functionv1.InvokeRequest{}
		require.NoError(t, proto.Unmarshal(encodeInvokeRequest(a, dl), dec))
		require.True(t, proto.Equal(want, dec), "got %v\nwant %v", dec, want)
	})
}

type recorder struct {
	functionv1.UnimplementedFunctionServiceServer
	req         *functionv1.InvokeRequest
	contentType []string
	md          metadata.MD
}

func (r *recorder) Invoke(ctx context.Context, req *functionv1.InvokeRequest) (*functionv1.InvokeResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.req, r.contentType, r.md = req, md.Get("content-type"), md
	return &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_RETRY, Reason: "later", Replies: []*pb.CloudEvent{{Id: "r-1"}}}, nil
}

// Over gRPC, a target receives the stored event and the attempt's fields as
// before, with the proto content type, and its response is decoded.
func TestInvokeGRPCSendsStoredEvent(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	rec := &recorder{}
	functionv1.RegisterFunctionServiceServer(srv, rec)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()

	ev := sampleEvents(t)["extensions"]
	raw, err := proto.Marshal(ev)
	require.NoError(t, err)
	key, err := ScanEvent(raw)
	require.NoError(t, err)
	res := tg.Invoke(context.Background(), &Attempt{Trigger: "orders", GRPC: lis.Addr().String(), Raw: raw, Key: key, Number: 3, Round: 2, Timeout: 10 * time.Second, Trace: traced})
	require.Equal(t, Retry, res.Verdict, res.Message)
	require.Equal(t, "later", res.Message)
	require.Len(t, res.Replies, 1)
	require.Equal(t, "r-1", res.Replies[0].GetId())

	require.Equal(t, []string{"application/grpc+proto"}, rec.contentType)
	require.EqualValues(t, 2, rec.req.GetRound())
	// The attempt's trace context, in the request and, on a unary call, as
	// metadata.
	require.Equal(t, traced, rec.req.GetTraceContext())
	require.Equal(t, []string{traced["traceparent"]}, rec.md.Get("traceparent"))
	require.Equal(t, []string{traced["tracestate"]}, rec.md.Get("tracestate"))
	want, err := oldRequest(raw, &Attempt{Trigger: "orders", Number: 3, Round: 2, Trace: traced}, rec.req.GetDeadline().AsTime())
	require.NoError(t, err)
	require.True(t, proto.Equal(want, rec.req), "got %v\nwant %v", rec.req, want)
	require.WithinDuration(t, time.Now().Add(10*time.Second), rec.req.GetDeadline().AsTime(), 5*time.Second)
}

func BenchmarkEncodeInvokeRequest(b *testing.B) {
	raw, err := proto.Marshal(bench1KiB())
	require.NoError(b, err)
	dl := time.Now().Add(30 * time.Second)
	a := &Attempt{Trigger: "orders", Number: 1, Raw: raw}
	b.Logf("stored event: %d bytes", len(raw))
	// Before: decode the stored event, encode the request (what the gRPC
	// proto codec did with the InvokeRequest).
	b.Run("decode+marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req, err := oldRequest(raw, a, dl)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := proto.Marshal(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	// After: check the stored bytes and splice them in.
	b.Run("scan+splice", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			key, err := ScanEvent(raw)
			if err != nil {
				b.Fatal(err)
			}
			a.Key = key
			_ = encodeInvokeRequest(a, dl)
		}
	})
}
