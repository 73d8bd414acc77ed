package mqtt

import (
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// inbound is one received PUBLISH, whichever the protocol version.
type inbound struct {
	topic    string
	payload  []byte
	retained bool
	// props is nil for MQTT 3.1.1.
	props *props5
	// ack sends the PUBACK (PUBREC for QoS 2).
	ack func() error
}

// props5 holds the MQTT 5 PUBLISH properties the producer set and the
// broker forwards unchanged (not the message expiry, which the broker
// counts down, nor subscription identifiers or topic aliases).
type props5 struct {
	contentType   string
	responseTopic string
	correlation   []byte
	payloadFormat *byte
	user          []userProp // in the order sent
}

// userProp is one MQTT 5 user property.
type userProp struct{ key, value string }

// decoder turns messages into CloudEvents.
type decoder struct {
	typ, source string
	// contentType is assumed for payloads without one ("" for none).
	contentType string
	// idProperty names the MQTT 5 user property holding a message id.
	idProperty string
	now        func() time.Time
}

// decode returns the message's CloudEvent. A message that is a valid
// CloudEvent is returned as it is; anything else is wrapped. notCE is set
// when the message declared itself a CloudEvent (binary-mode user
// properties or the structured content type) but is not a valid one: it
// was wrapped instead, and notCE says why.
func (d *decoder) decode(m *inbound) (ev *pb.CloudEvent, notCE error) {
	ct := ""
	if m.props != nil {
		ct = m.props.contentType
	}
	switch {
	case m.props != nil && hasUserProp(m.props.user, cloudevent.AttrSpecVersion):
		ev, err := binaryEvent(m)
		if err == nil {
			return ev, nil
		}
		notCE = fmt.Errorf("binary-mode CloudEvent: %w", err)
	case wrap.IsStructured(ct):
		ev, err := cloudevent.DecodeStructured(m.payload)
		if err == nil {
			return ev, nil
		}
		notCE = fmt.Errorf("structured-mode CloudEvent: %w", err)
	case ct == "" && wrap.LooksStructured(m.payload):
		// No content type to go by (always so in MQTT 3.1.1): a JSON
		// object with a specversion member is a structured CloudEvent if
		// it is a valid one, else just JSON.
		if ev, err := cloudevent.DecodeStructured(m.payload); err == nil {
			return ev, nil
		}
	}
	return d.wrap(m), notCE
}

// wrap builds an event around a message that is not a CloudEvent. Every
// optional attribute that would make the event invalid is left out, so
// wrap always returns a valid event.
func (d *decoder) wrap(m *inbound) *pb.CloudEvent {
	id := ""
	ct := d.contentType
	if m.props != nil {
		if d.idProperty != "" {
			id = userPropValue(m.props.user, d.idProperty)
		}
		if m.props.contentType != "" {
			ct = m.props.contentType
		}
	}
	if !cloudevent.ValidString(id) {
		id = contentHash(m)
	}
	ev := &pb.CloudEvent{Id: id, Source: d.source, SpecVersion: cloudevent.SpecVersion, Type: d.typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			cloudevent.AttrTime: {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(d.now())}},
		}}
	if cloudevent.ValidString(m.topic) {
		ev.Attributes[cloudevent.AttrSubject] = cloudevent.StringValue(m.topic)
	}
	if !cloudevent.ValidMediaType(ct) {
		ct = ""
	}
	if ct != "" {
		ev.Attributes[cloudevent.AttrDataContentType] = cloudevent.StringValue(ct)
	}
	cloudevent.SetData(ev, ct, m.payload)
	return ev
}

func hasUserProp(ps []userProp, key string) bool {
	for _, p := range ps {
		if p.key == key {
			return true
		}
	}
	return false
}

// userPropValue returns the value of the first user property named key.
func userPropValue(ps []userProp, key string) string {
	for _, p := range ps {
		if p.key == key {
			return p.value
		}
	}
	return ""
}

// attrName reports whether s can be a CloudEvents attribute name.
func attrName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// binaryEvent reads an MQTT 5 binary-mode CloudEvent and validates it.
func binaryEvent(m *inbound) (*pb.CloudEvent, error) {
	ev := &pb.CloudEvent{Attributes: map[string]*pb.CloudEventAttributeValue{}}
	seen := map[string]bool{}
	var propCT string
	for _, p := range m.props.user {
		if !attrName(p.key) {
			continue // not a CloudEvents attribute: an application's own property
		}
		if seen[p.key] {
			return nil, fmt.Errorf("attribute %q is repeated", p.key)
		}
		seen[p.key] = true
		switch p.key {
		case cloudevent.AttrID:
			ev.Id = p.value
		case cloudevent.AttrSource:
			ev.Source = p.value
		case cloudevent.AttrSpecVersion:
			ev.SpecVersion = p.value
		case cloudevent.AttrType:
			ev.Type = p.value
		case cloudevent.AttrDataContentType:
			propCT = p.value
		case cloudevent.AttrTime:
			t, err := time.Parse(time.RFC3339Nano, p.value)
			if err != nil {
				return nil, fmt.Errorf("time: not an RFC 3339 timestamp: %q", p.value)
			}
			ev.Attributes[p.key] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}}
		case cloudevent.AttrDataSchema:
			ev.Attributes[p.key] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: p.value}}
		default:
			ev.Attributes[p.key] = cloudevent.StringValue(p.value)
		}
	}
	// The binding carries datacontenttype in the Content Type property; a
	// user property is accepted when the property is absent.
	ct := m.props.contentType
	if ct == "" {
		ct = propCT
	}
	if ct != "" {
		ev.Attributes[cloudevent.AttrDataContentType] = cloudevent.StringValue(ct)
	}
	if err := cloudevent.Validate(ev); err != nil {
		return nil, err
	}
	cloudevent.SetData(ev, ct, m.payload)
	return ev, nil
}

// contentHash is the hex SHA-256 of what the producer published: stable
// across redeliveries because the broker resends the same content.
func contentHash(m *inbound) string {
	h := wrap.NewContentHash()
	h.Text(m.topic)
	if m.retained {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	h.Bytes(m.payload)
	// Properties count only when there are some, so that a message without
	// any hashes alike over MQTT 3.1.1 and 5.
	if p := m.props; p != nil && (p.contentType != "" || p.responseTopic != "" || len(p.correlation) > 0 || p.payloadFormat != nil || len(p.user) > 0) {
		h.Write([]byte{5})
		h.Text(p.contentType)
		h.Text(p.responseTopic)
		h.Bytes(p.correlation)
		if p.payloadFormat != nil {
			h.Write([]byte{1, *p.payloadFormat})
		} else {
			h.Write([]byte{0})
		}
		h.Uint(uint64(len(p.user)))
		for _, u := range p.user {
			h.Text(u.key)
			h.Text(u.value)
		}
	}
	return h.Hex()
}
