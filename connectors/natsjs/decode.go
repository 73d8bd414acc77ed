package natsjs

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// attrPrefix starts the headers of a binary-mode event (NATS binding).
const attrPrefix = "ce-"

// record is what the decoder needs of a JetStream message.
type record struct {
	seq     uint64
	subject string
	stored  time.Time
	header  map[string][]string // nats.Header
	data    []byte
}

// decoder turns JetStream messages into CloudEvents. It is immutable.
type decoder struct {
	stream, typ, source string
}

// decode returns the CloudEvent of one message. It never fails: a message
// that claims to be a CloudEvent but is not a valid one is wrapped like any
// other, so nothing is dropped. The result always passes cloudevent.Validate
// when the configured type and source are valid (New checks them).
func (d decoder) decode(r record) *pb.CloudEvent {
	ct, hasCT := header(r.header, "content-type")
	switch {
	case hasCT && wrap.IsStructured(ct):
		if ev, err := cloudevent.DecodeStructured(r.data); err == nil {
			return ev
		}
	case hasBinaryAttrs(r.header):
		if ev, err := binaryEvent(r.header, ct, hasCT, r.data); err == nil {
			return ev
		}
	case !hasCT && wrap.LooksStructured(r.data):
		// NATS binding 1.0.2: structured mode only, no headers at all.
		if ev, err := cloudevent.DecodeStructured(r.data); err == nil {
			return ev
		}
	}
	return d.wrap(r, ct)
}

// header returns the first value of a header, its name matched without
// regard to case (nats.Header keys are case-sensitive as sent).
func header(h map[string][]string, name string) (string, bool) {
	if v, ok := h[name]; ok && len(v) > 0 {
		return v[0], true
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, name) {
			return v[0], true
		}
	}
	return "", false
}

func hasBinaryAttrs(h map[string][]string) bool {
	_, ok := header(h, attrPrefix+cloudevent.AttrSpecVersion)
	return ok
}

// binaryEvent reads a binary-mode message: ce-<attribute> headers with
// percent-encoded values, Content-Type for datacontenttype.
func binaryEvent(h map[string][]string, ct string, hasCT bool, data []byte) (*pb.CloudEvent, error) {
	ev := &pb.CloudEvent{}
	for k, vals := range h {
		if len(k) <= len(attrPrefix) || !strings.EqualFold(k[:len(attrPrefix)], attrPrefix) {
			continue
		}
		name := strings.ToLower(k[len(attrPrefix):])
		if len(vals) != 1 {
			return nil, errors.New("header " + k + " is repeated")
		}
		if name == cloudevent.AttrDataContentType {
			return nil, errors.New("datacontenttype travels in Content-Type")
		}
		if _, dup := ev.Attributes[name]; dup || isRequired(name) && requiredSet(ev, name) {
			return nil, errors.New("attribute " + name + " is repeated")
		}
		v, err := url.PathUnescape(vals[0])
		if err != nil {
			return nil, err
		}
		cloudevent.SetAttribute(ev, name, v)
	}
	if hasCT {
		cloudevent.SetAttributeValue(ev, cloudevent.AttrDataContentType, cloudevent.StringValue(ct))
	}
	cloudevent.SetData(ev, "", data)
	if err := cloudevent.Validate(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

func isRequired(name string) bool {
	switch name {
	case cloudevent.AttrID, cloudevent.AttrSource, cloudevent.AttrSpecVersion, cloudevent.AttrType:
		return true
	}
	return false
}

func requiredSet(ev *pb.CloudEvent, name string) bool {
	v, _ := cloudevent.Attribute(ev, name)
	return v != ""
}

// wrap makes an event of a message that is not a CloudEvent.
func (d decoder) wrap(r record, ct string) *pb.CloudEvent {
	ev := &pb.CloudEvent{
		Id: d.stream + ":" + strconv.FormatUint(r.seq, 10), Source: d.source, SpecVersion: cloudevent.SpecVersion, Type: d.typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{},
	}
	if !r.stored.IsZero() {
		ev.Attributes[cloudevent.AttrTime] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(r.stored)}}
	}
	if r.subject != "" {
		cloudevent.SetAttributeValue(ev, cloudevent.AttrSubject, cloudevent.StringValue(r.subject))
	}
	if ct == "" {
		ct = cloudevent.SniffContentType(r.data)
	}
	cloudevent.SetAttributeValue(ev, cloudevent.AttrDataContentType, cloudevent.StringValue(ct))
	cloudevent.SetData(ev, "", r.data)
	wrap.DropInvalid(ev, func() string { return cloudevent.SniffContentType(r.data) })
	return ev
}
