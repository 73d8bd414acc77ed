package kafka

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// Kafka protocol binding names.
const (
	attrPrefix        = "ce_"
	headerContentType = "content-type"
	attrPartitionKey  = "partitionkey"
)

// decoder turns records into CloudEvents. It is immutable.
type decoder struct {
	typ    string
	source string // "" for kafka://{broker}/{topic}
	broker string
}

// decode returns the CloudEvent of one record. It never fails: a record that
// claims to be a CloudEvent but is not a valid one is wrapped like any
// other, so nothing is dropped. The result always passes cloudevent.Validate
// when the configured type and source are valid (New checks them).
func (d decoder) decode(r *kgo.Record) *pb.CloudEvent {
	ct, hasCT := header(r.Headers, headerContentType)
	var ev *pb.CloudEvent
	switch {
	case hasCT && wrap.IsStructured(ct):
		ev, _ = cloudevent.DecodeStructured(r.Value)
	case hasHeader(r.Headers, attrPrefix+cloudevent.AttrSpecVersion):
		ev, _ = binaryEvent(r.Headers, ct, hasCT, r.Value)
	}
	if ev == nil {
		ev = d.wrap(r, ct)
	}
	if _, has := ev.GetAttributes()[attrPartitionKey]; !has && len(r.Key) > 0 && utf8.Valid(r.Key) {
		cloudevent.SetAttributeValue(ev, attrPartitionKey, cloudevent.StringValue(string(r.Key)))
		if cloudevent.Validate(ev) != nil {
			delete(ev.Attributes, attrPartitionKey)
		}
	}
	return ev
}

// header returns the first value of a header, its name matched without
// regard to case.
func header(h []kgo.RecordHeader, name string) (string, bool) {
	for _, x := range h {
		if strings.EqualFold(x.Key, name) {
			return string(x.Value), true
		}
	}
	return "", false
}

func hasHeader(h []kgo.RecordHeader, name string) bool {
	_, ok := header(h, name)
	return ok
}

// binaryEvent reads a binary-mode record: ce_<attribute> headers holding
// UTF-8 values, content-type for datacontenttype.
func binaryEvent(h []kgo.RecordHeader, ct string, hasCT bool, value []byte) (*pb.CloudEvent, error) {
	ev := &pb.CloudEvent{}
	seen := map[string]bool{}
	for _, x := range h {
		if len(x.Key) <= len(attrPrefix) || !strings.EqualFold(x.Key[:len(attrPrefix)], attrPrefix) {
			continue
		}
		name := strings.ToLower(x.Key[len(attrPrefix):])
		if seen[name] {
			return nil, errors.New("header " + x.Key + " is repeated")
		}
		seen[name] = true
		if name == cloudevent.AttrDataContentType {
			return nil, errors.New("datacontenttype travels in content-type")
		}
		cloudevent.SetAttribute(ev, name, string(x.Value))
	}
	if hasCT {
		cloudevent.SetAttributeValue(ev, cloudevent.AttrDataContentType, cloudevent.StringValue(ct))
	}
	cloudevent.SetData(ev, "", value)
	if err := cloudevent.Validate(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// wrap makes an event of a record that is not a CloudEvent.
func (d decoder) wrap(r *kgo.Record, ct string) *pb.CloudEvent {
	src := d.source
	if src == "" {
		src = defaultSource(d.broker, r.Topic)
	}
	ev := &pb.CloudEvent{
		Id:     r.Topic + "-" + strconv.FormatInt(int64(r.Partition), 10) + "-" + strconv.FormatInt(r.Offset, 10),
		Source: src, SpecVersion: cloudevent.SpecVersion, Type: d.typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{},
	}
	if !r.Timestamp.IsZero() && r.Timestamp.Year() > 0 && r.Timestamp.Year() < 10000 {
		ev.Attributes[cloudevent.AttrTime] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(r.Timestamp)}}
	}
	if len(r.Key) > 0 && utf8.Valid(r.Key) {
		cloudevent.SetAttributeValue(ev, cloudevent.AttrSubject, cloudevent.StringValue(string(r.Key)))
	}
	if len(r.Value) > 0 {
		if ct == "" {
			ct = cloudevent.SniffContentType(r.Value)
		}
		cloudevent.SetAttributeValue(ev, cloudevent.AttrDataContentType, cloudevent.StringValue(ct))
		cloudevent.SetData(ev, "", r.Value)
	}
	wrap.DropInvalid(ev, func() string { return cloudevent.SniffContentType(r.Value) })
	return ev
}

// defaultSource is kafka://{broker}/{topic}.
func defaultSource(broker, topic string) string {
	return (&url.URL{Scheme: "kafka", Host: broker, Path: "/" + topic}).String()
}
