package delivery

import (
	"errors"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// The router stores each event as an io.cloudevents.v1.CloudEvent in the
// protobuf encoding, and a gRPC target receives it as the event field of an
// InvokeRequest: the same message. Decoding the stored bytes only to encode
// them again (with a map of attributes, allocation by allocation) was a
// tenth of the server's CPU, so gRPC attempts splice the stored bytes into a
// hand-encoded InvokeRequest instead. A protobuf embedded message is its
// encoding prefixed by its length, so the target still receives a CloudEvent
// in the CloudEvents Protobuf Format, every attribute and unknown field as
// stored. ScanEvent stands in for the decode's checks.

var (
	errWireFormat = errors.New("cannot parse invalid wire-format data")
	errUTF8       = errors.New("string field contains invalid UTF-8")
)

// ScanEvent checks, without decoding it, that raw is an
// io.cloudevents.v1.CloudEvent that proto.Unmarshal accepts (well-formed
// wire format, proto3 strings in UTF-8, at every depth), and returns its
// idempotency key (see IdempotencyKey).
func ScanEvent(raw []byte) (key string, err error) {
	var top [3][]byte // the last id (1) and source (2), as proto.Unmarshal keeps
	if err := scan(raw, cloudEvent, top[:]); err != nil {
		return "", err
	}
	return string(top[2]) + " " + string(top[1]), nil
}

// A field says what proto.Unmarshal checks in a length-delimited field beyond
// its length. A schema lists them by field number; the fields it leaves out
// (varints, bytes, unknown fields, any field with another wire type) need
// only be well-formed.
type field struct {
	utf8 bool    // a proto3 string
	msg  *schema // a message, checked in turn
}

type schema []field

// The checked fields of cloudevent.proto's messages and of the
// google.protobuf ones it uses.
var (
	timestamp = &schema{} // seconds, nanos: varints
	anyMsg    = &schema{1: {utf8: true}}
	attrValue = &schema{3: {utf8: true}, 5: {utf8: true}, 6: {utf8: true}, 7: {msg: timestamp}}
	attrEntry = &schema{1: {utf8: true}, 2: {msg: attrValue}} // map<string, CloudEventAttributeValue>
	// id, source, spec_version, type, attributes, text_data, proto_data.
	cloudEvent = &schema{1: {utf8: true}, 2: {utf8: true}, 3: {utf8: true}, 4: {utf8: true}, 5: {msg: attrEntry}, 7: {utf8: true}, 8: {msg: anyMsg}}
)

// scan checks b as a message of schema s, the way proto.Unmarshal parses it.
// Length-delimited fields whose number is below len(last) are kept there.
func scan(b []byte, s *schema, last [][]byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errWireFormat
		}
		b = b[n:]
		var f field
		if int(num) < len(*s) {
			f = (*s)[num]
		}
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
		} else {
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			switch {
			case n < 0:
			case f.utf8 && !utf8.Valid(v):
				return errUTF8
			case f.msg != nil:
				if err := scan(v, f.msg, nil); err != nil {
					return err
				}
			}
			if int(num) < len(last) {
				last[num] = v
			}
		}
		if n < 0 {
			return errWireFormat
		}
		b = b[n:]
	}
	return nil
}

// Field numbers of switchyard.function.v1.InvokeRequest (function.proto) and
// google.protobuf.Timestamp.
const (
	reqEvent          protowire.Number = 1
	reqAttempt        protowire.Number = 2
	reqTrigger        protowire.Number = 3
	reqDeadline       protowire.Number = 4
	reqIdempotencyKey protowire.Number = 5
	reqRound          protowire.Number = 6
	reqTraceContext   protowire.Number = 7
	mapKey            protowire.Number = 1
	mapValue          protowire.Number = 2
	tsSeconds         protowire.Number = 1
	tsNanos           protowire.Number = 2
)

// encodeInvokeRequest returns the protobuf encoding of the InvokeRequest
// for a, its event field being a.Raw as it is. Fields go in number order and
// zero values are left out, as proto.Marshal does.
func encodeInvokeRequest(a *Attempt, deadline time.Time) []byte {
	capacity := len(a.Raw) + len(a.Trigger) + len(a.Key) + 64
	for k, v := range a.Trace {
		capacity += len(k) + len(v) + 8
	}
	b := make([]byte, 0, capacity)
	b = protowire.AppendTag(b, reqEvent, protowire.BytesType)
	b = protowire.AppendBytes(b, a.Raw)
	if n := int32(a.Number); n != 0 {
		b = protowire.AppendTag(b, reqAttempt, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(n)) // int32: sign-extended
	}
	if a.Trigger != "" {
		b = protowire.AppendTag(b, reqTrigger, protowire.BytesType)
		b = protowire.AppendString(b, a.Trigger)
	}
	secs, nanos := deadline.Unix(), int64(deadline.Nanosecond()) // as timestamppb.New
	size := 0
	if secs != 0 {
		size += protowire.SizeTag(tsSeconds) + protowire.SizeVarint(uint64(secs))
	}
	if nanos != 0 {
		size += protowire.SizeTag(tsNanos) + protowire.SizeVarint(uint64(nanos))
	}
	b = protowire.AppendTag(b, reqDeadline, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if secs != 0 {
		b = protowire.AppendTag(b, tsSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(secs))
	}
	if nanos != 0 {
		b = protowire.AppendTag(b, tsNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(nanos))
	}
	if a.Key != "" {
		b = protowire.AppendTag(b, reqIdempotencyKey, protowire.BytesType)
		b = protowire.AppendString(b, a.Key)
	}
	if n := int32(a.Round); n != 0 { // only replays: a first life costs nothing
		b = protowire.AppendTag(b, reqRound, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(n)) // int32: sign-extended
	}
	if len(a.Trace) > 0 { // only when tracing: off costs nothing
		b = appendStringMap(b, reqTraceContext, a.Trace)
	}
	return b
}

// appendStringMap appends m as the map<string, string> field num, one entry
// per key in key order, as deterministic proto.Marshal writes them (an entry
// holds its key and value even when empty).
func appendStringMap(b []byte, num protowire.Number, m map[string]string) []byte {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		size := protowire.SizeTag(mapKey) + protowire.SizeBytes(len(k)) + protowire.SizeTag(mapValue) + protowire.SizeBytes(len(v))
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		b = protowire.AppendTag(b, mapKey, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, mapValue, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

// preEncoded is a message already in the protobuf encoding.
type preEncoded []byte

// rawCodec is the registered "proto" codec (so requests keep the
// application/grpc+proto content type) that sends a preEncoded message as
// it is.
type rawCodec struct{ encoding.CodecV2 }

// invokeOpts are the generated client's call options plus the codec.
var invokeOpts = []grpc.CallOption{grpc.StaticMethod(), grpc.ForceCodecV2(rawCodec{encoding.GetCodecV2(protocodec.Name)})}

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(preEncoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.CodecV2.Marshal(v)
}
