package redisstreams

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// Entry field conventions for entries that already are CloudEvents.
const (
	// entryStructured holds a whole event in the JSON event format.
	entryStructured = "cloudevent"
	// attrPrefix starts the fields of a binary-mode event (ce_id, ce_type…).
	attrPrefix = "ce_"
	// entryData and entryContentType hold a binary-mode event's data and
	// datacontenttype (also the content type of data_field values).
	entryData        = "data"
	entryContentType = "content-type"
)

// decoder turns stream entries into CloudEvents. It is immutable.
type decoder struct {
	stream       string
	typ, source  string
	dataField    string // "" to wrap every field as a JSON object
	contentType  string // for data_field values without a content-type field
	subjectField string
}

// decode returns the CloudEvent of one entry. It never fails: an entry that
// claims to be a CloudEvent but is not a valid one is wrapped like any other,
// so nothing is dropped. The result always passes cloudevent.Validate when
// the configured type and source are valid (New checks them).
func (d decoder) decode(id string, values map[string]any) *pb.CloudEvent {
	if s, ok := values[entryStructured]; ok {
		if ev, err := cloudevent.DecodeStructured([]byte(str(s))); err == nil {
			return ev
		}
	} else if _, ok := values[attrPrefix+cloudevent.AttrSpecVersion]; ok {
		if ev, err := binaryEvent(values); err == nil {
			return ev
		}
	}
	return d.wrap(id, values)
}

// binaryEvent reads an entry in binary mode: one ce_<attribute> field per
// attribute, the data in `data` and its media type in `content-type`.
func binaryEvent(values map[string]any) (*pb.CloudEvent, error) {
	ev := &pb.CloudEvent{}
	for k, v := range values {
		name, ok := strings.CutPrefix(k, attrPrefix)
		if !ok {
			continue
		}
		if name == "" || name == cloudevent.AttrDataContentType {
			return nil, fmt.Errorf("field %q: not an attribute field", k)
		}
		cloudevent.SetAttribute(ev, name, str(v))
	}
	ct, hasCT := values[entryContentType]
	if hasCT {
		cloudevent.SetAttributeValue(ev, cloudevent.AttrDataContentType, cloudevent.StringValue(str(ct)))
	}
	if data, ok := values[entryData]; ok {
		cloudevent.SetData(ev, "", []byte(str(data)))
	}
	if err := cloudevent.Validate(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// wrap makes an event of an entry that is not a CloudEvent.
func (d decoder) wrap(id string, values map[string]any) *pb.CloudEvent {
	ev := &pb.CloudEvent{
		Id: d.stream + ":" + id, Source: d.source, SpecVersion: cloudevent.SpecVersion, Type: d.typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{},
	}
	if t, ok := entryTime(id); ok {
		ev.Attributes[cloudevent.AttrTime] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}}
	}
	if d.subjectField != "" {
		if s, ok := values[d.subjectField]; ok && str(s) != "" {
			cloudevent.SetAttributeValue(ev, cloudevent.AttrSubject, cloudevent.StringValue(str(s)))
		}
	}
	if d.dataField != "" {
		ct := d.contentType
		if v, ok := values[entryContentType]; ok {
			ct = str(v)
		}
		payload := []byte(str(values[d.dataField]))
		if ct == "" {
			ct = cloudevent.SniffContentType(payload)
		}
		cloudevent.SetAttributeValue(ev, cloudevent.AttrDataContentType, cloudevent.StringValue(ct))
		cloudevent.SetData(ev, "", payload)
	} else {
		fields := make(map[string]string, len(values))
		for k, v := range values {
			fields[k] = str(v)
		}
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(fields) // a map of strings always encodes; keys come out sorted
		cloudevent.SetAttributeValue(ev, cloudevent.AttrDataContentType, cloudevent.StringValue("application/json"))
		ev.Data = &pb.CloudEvent_TextData{TextData: strings.TrimSuffix(b.String(), "\n")}
	}
	wrap.DropInvalid(ev, func() string {
		// A content type that is not a media type (taken from the entry)
		// is dropped; text that is not JSON then says it is text.
		if _, text := ev.Data.(*pb.CloudEvent_TextData); text && !json.Valid([]byte(ev.GetTextData())) {
			return "text/plain; charset=utf-8"
		}
		return ""
	})
	return ev
}

// entryTime reads the milliseconds of an entry id ("1700000000000-0"): the
// time Redis added the entry, unless the producer chose explicit ids.
func entryTime(id string) (time.Time, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 || n > 253402300799999 { // up to 9999-12-31
		return time.Time{}, false
	}
	return time.UnixMilli(n).UTC(), true
}

// str renders a field value; go-redis returns strings.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}
