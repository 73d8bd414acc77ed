package amqp

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// Header name prefixes of the CloudEvents AMQP binding, binary mode.
const (
	cePrefix    = "cloudEvents:"
	cePrefixJMS = "cloudEvents_"
)

// decoder turns deliveries into CloudEvents.
type decoder struct {
	queue, typ, source string
	now                func() time.Time
}

// decode returns the delivery's CloudEvent. A message that is a valid
// CloudEvent is returned as it is; anything else is wrapped. notCE is set
// when the message claimed to be a CloudEvent (binary mode headers or the
// structured content type) but is not a valid one: it was wrapped instead,
// and notCE says why.
func (d *decoder) decode(m *amqp091.Delivery) (ev *pb.CloudEvent, notCE error) {
	if isBinary(m.Headers) {
		ev, err := binaryEvent(m)
		if err == nil {
			return ev, nil
		}
		notCE = fmt.Errorf("binary-mode CloudEvent: %w", err)
	} else if wrap.IsStructured(m.ContentType) {
		ev, err := cloudevent.DecodeStructured(m.Body)
		if err == nil {
			return ev, nil
		}
		notCE = fmt.Errorf("structured-mode CloudEvent: %w", err)
	}
	return d.wrap(m), notCE
}

// wrap builds an event around a message that is not a CloudEvent. Every
// optional attribute that would make the event invalid is left out, so
// wrap always returns a valid event.
func (d *decoder) wrap(m *amqp091.Delivery) *pb.CloudEvent {
	id := m.MessageId
	if !cloudevent.ValidString(id) {
		id = contentHash(d.queue, m)
	}
	ev := &pb.CloudEvent{Id: id, Source: d.source, SpecVersion: cloudevent.SpecVersion, Type: d.typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{}}
	t := d.now()
	if !m.Timestamp.IsZero() && m.Timestamp.Year() >= 1 && m.Timestamp.Year() <= 9999 {
		t = m.Timestamp
	}
	ev.Attributes[cloudevent.AttrTime] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}}
	if cloudevent.ValidString(m.RoutingKey) {
		ev.Attributes[cloudevent.AttrSubject] = cloudevent.StringValue(m.RoutingKey)
	}
	ct := m.ContentType
	if !cloudevent.ValidMediaType(ct) {
		ct = ""
	}
	if ct != "" {
		ev.Attributes[cloudevent.AttrDataContentType] = cloudevent.StringValue(ct)
	}
	cloudevent.SetData(ev, ct, m.Body)
	return ev
}

// isBinary reports whether headers carry a binary-mode CloudEvent (a
// specversion header under either prefix).
func isBinary(h amqp091.Table) bool {
	for k := range h {
		if name, ok := ceAttrName(k); ok && name == cloudevent.AttrSpecVersion {
			return true
		}
	}
	return false
}

// ceAttrName returns the lower-cased attribute name of a binary-mode header
// (prefix matched case-insensitively).
func ceAttrName(key string) (string, bool) {
	for _, p := range [...]string{cePrefix, cePrefixJMS} {
		if len(key) > len(p) && strings.EqualFold(key[:len(p)], p) {
			return strings.ToLower(key[len(p):]), true
		}
	}
	return "", false
}

// binaryEvent reads a binary-mode CloudEvent and validates it.
func binaryEvent(m *amqp091.Delivery) (*pb.CloudEvent, error) {
	ev := &pb.CloudEvent{Attributes: map[string]*pb.CloudEventAttributeValue{}}
	seen := map[string]bool{}
	keys := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys) // errors must not depend on map order
	var headerCT string
	for _, k := range keys {
		name, ok := ceAttrName(k)
		if !ok {
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("attribute %q is carried by more than one header", name)
		}
		seen[name] = true
		v := m.Headers[k]
		switch name {
		case cloudevent.AttrID, cloudevent.AttrSource, cloudevent.AttrSpecVersion, cloudevent.AttrType, cloudevent.AttrDataContentType:
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("header %s: want a string, got %T", k, v)
			}
			switch name {
			case cloudevent.AttrID:
				ev.Id = s
			case cloudevent.AttrSource:
				ev.Source = s
			case cloudevent.AttrSpecVersion:
				ev.SpecVersion = s
			case cloudevent.AttrType:
				ev.Type = s
			case cloudevent.AttrDataContentType:
				headerCT = s
			}
			continue
		}
		av, err := attrValue(name, v)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		ev.Attributes[name] = av
	}
	// The binding carries datacontenttype in the content-type property; a
	// header is accepted when the property is absent.
	ct := m.ContentType
	if ct == "" {
		ct = headerCT
	}
	if ct != "" {
		ev.Attributes[cloudevent.AttrDataContentType] = cloudevent.StringValue(ct)
	}
	if err := cloudevent.Validate(ev); err != nil {
		return nil, err
	}
	cloudevent.SetData(ev, ct, m.Body)
	return ev, nil
}

// attrValue converts one header value into an attribute value, using the
// CloudEvents type of the core attributes and the AMQP type for extensions.
func attrValue(name string, v any) (*pb.CloudEventAttributeValue, error) {
	switch name {
	case cloudevent.AttrTime:
		switch t := v.(type) {
		case time.Time:
			return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}}, nil
		case string:
			ts, err := time.Parse(time.RFC3339Nano, t)
			if err != nil {
				return nil, fmt.Errorf("not an RFC 3339 timestamp: %q", t)
			}
			return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(ts)}}, nil
		}
		return nil, fmt.Errorf("want a timestamp or an RFC 3339 string, got %T", v)
	case cloudevent.AttrDataSchema:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %T", v)
		}
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: s}}, nil
	case cloudevent.AttrSubject:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %T", v)
		}
		return cloudevent.StringValue(s), nil
	}
	switch x := v.(type) {
	case string:
		return cloudevent.StringValue(x), nil
	case bool:
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: x}}, nil
	case []byte:
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: x}}, nil
	case time.Time:
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(x)}}, nil
	}
	var n int64
	switch x := v.(type) {
	case int8:
		n = int64(x)
	case byte:
		n = int64(x)
	case int16:
		n = int64(x)
	case uint16:
		n = int64(x)
	case int32:
		n = int64(x)
	case uint32:
		n = int64(x)
	case int:
		n = int64(x)
	case int64:
		n = x
	default:
		return nil, fmt.Errorf("an AMQP %T cannot be a CloudEvents attribute", v)
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return nil, errors.New("integer outside the CloudEvents 32-bit range")
	}
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: int32(n)}}, nil
}

// brokerHeader reports headers RabbitMQ adds or changes when it redelivers
// or dead-letters a message; they are left out of the content hash.
func brokerHeader(k string) bool {
	return k == "x-delivery-count" || k == "x-death" || strings.HasPrefix(k, "x-first-death-") || strings.HasPrefix(k, "x-last-death-")
}

// contentHash is the hex SHA-256 of what a producer put in the message:
// stable across redeliveries because RabbitMQ never changes it.
func contentHash(queue string, m *amqp091.Delivery) string {
	h := wrap.NewContentHash()
	for _, s := range [...]string{queue, m.Exchange, m.RoutingKey, m.ContentType, m.ContentEncoding, m.CorrelationId,
		m.ReplyTo, m.Type, m.AppId, m.UserId} {
		h.Text(s)
	}
	var ts int64
	if !m.Timestamp.IsZero() {
		ts = m.Timestamp.Unix()
	}
	h.Uint(uint64(ts))
	keys := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		if !brokerHeader(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h.Uint(uint64(len(keys)))
	for _, k := range keys {
		h.Text(k)
		writeValue(h, m.Headers[k])
	}
	h.Bytes(m.Body)
	return h.Hex()
}

// writeValue encodes a header value unambiguously: a type tag, then the
// value (tables with sorted keys, arrays in order).
func writeValue(h wrap.ContentHash, v any) {
	switch x := v.(type) {
	case nil:
		h.Write([]byte{'V'})
	case bool:
		if x {
			h.Write([]byte{'t', 1})
		} else {
			h.Write([]byte{'t', 0})
		}
	case string:
		h.Write([]byte{'S'})
		h.Text(x)
	case []byte:
		h.Write([]byte{'x'})
		h.Bytes(x)
	case time.Time:
		h.Write([]byte{'T'})
		h.Uint(uint64(x.Unix()))
	case float32:
		h.Write([]byte{'f'})
		h.Uint(uint64(math.Float32bits(x)))
	case float64:
		h.Write([]byte{'d'})
		h.Uint(math.Float64bits(x))
	case amqp091.Decimal:
		h.Write([]byte{'D', x.Scale})
		h.Uint(uint64(x.Value))
	case amqp091.Table:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h.Write([]byte{'F'})
		h.Uint(uint64(len(keys)))
		for _, k := range keys {
			h.Text(k)
			writeValue(h, x[k])
		}
	case []any:
		h.Write([]byte{'A'})
		h.Uint(uint64(len(x)))
		for _, e := range x {
			writeValue(h, e)
		}
	case int8:
		writeInt(h, int64(x))
	case byte:
		writeInt(h, int64(x))
	case int16:
		writeInt(h, int64(x))
	case uint16:
		writeInt(h, int64(x))
	case int32:
		writeInt(h, int64(x))
	case uint32:
		writeInt(h, int64(x))
	case int:
		writeInt(h, int64(x))
	case int64:
		writeInt(h, x)
	default: // not an AMQP type; never decoded from the wire
		h.Write([]byte{'?'})
		h.Bytes(fmt.Appendf(nil, "%T:%v", v, v))
	}
}

// writeInt encodes every integer width alike: RabbitMQ may re-encode an
// integer header in another width when it forwards a message.
func writeInt(h wrap.ContentHash, n int64) {
	h.Write([]byte{'I'})
	h.Uint(uint64(n))
}
