package function

import (
	"fmt"
	"mime"
	"strings"
	"time"

	format "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
)

// FromProto converts an event of the CloudEvents protobuf format into the
// sdk-go event a Handler receives: every attribute and extension intact, the
// data byte-exact. Consumers that pull events (sdk.Client.Subscribe) decode
// them with it too.
func FromProto(in *pb.CloudEvent) (event.Event, error) { return fromProto(in) }

// fromProto converts an event of the CloudEvents protobuf format into an
// sdk-go event, keeping the data byte-exact.
//
// format.FromProto is used for the context attributes only: for text_data it
// calls event.SetData, which re-encodes the text with the data content type's
// codec (JSON text becomes a quoted JSON string, unknown types fail), and it
// silently drops core attributes that arrive with a variant other than the
// one it expects (e.g. time as ce_string). Both are handled here.
func fromProto(in *pb.CloudEvent) (event.Event, error) {
	head := &pb.CloudEvent{
		Id:          in.GetId(),
		Source:      in.GetSource(),
		SpecVersion: in.GetSpecVersion(),
		Type:        in.GetType(),
		Attributes:  in.GetAttributes(),
	}
	e, err := format.FromProto(head)
	if err != nil {
		return event.Event{}, err
	}
	if err := fixCoreAttributes(e, in.GetAttributes()); err != nil {
		return event.Event{}, err
	}
	switch d := in.GetData().(type) {
	case *pb.CloudEvent_BinaryData:
		e.DataEncoded = d.BinaryData
		// Binary data that is not text renders as data_base64 should the
		// handler marshal the event to the JSON format.
		e.DataBase64 = !isTextual(e.DataContentType())
	case *pb.CloudEvent_TextData:
		e.DataEncoded = []byte(d.TextData)
		e.DataBase64 = false
	case *pb.CloudEvent_ProtoData:
		if _, ok := in.GetAttributes()["datacontenttype"]; !ok {
			e.SetDataContentType(format.ContentTypeProtobuf)
		}
		e.DataEncoded = d.ProtoData.GetValue()
		if e.DataEncoded == nil {
			e.DataEncoded = []byte{}
		}
		e.DataBase64 = true
	}
	return *e, nil
}

// fixCoreAttributes restores the optional core attributes format.FromProto
// drops when they do not have the variant it expects.
func fixCoreAttributes(e *event.Event, attrs map[string]*pb.CloudEventAttributeValue) error {
	for name, v := range attrs {
		switch name {
		case "datacontenttype":
			if e.DataContentType() == "" {
				if s, ok := stringForm(v); ok {
					e.SetDataContentType(s)
				}
			}
		case "dataschema":
			if e.DataSchema() == "" {
				if s, ok := stringForm(v); ok && s != "" {
					e.SetDataSchema(s)
				}
			}
		case "subject":
			if e.Subject() == "" {
				if s, ok := stringForm(v); ok {
					e.SetSubject(s)
				}
			}
		case "time":
			if e.Time().IsZero() {
				if s, ok := stringForm(v); ok && s != "" {
					t, err := time.Parse(time.RFC3339Nano, s)
					if err != nil {
						return fmt.Errorf("attribute time: %w", err)
					}
					e.SetTime(t)
				}
			}
		}
	}
	return nil
}

// stringForm returns a string-like attribute value as a string.
func stringForm(v *pb.CloudEventAttributeValue) (string, bool) {
	switch a := v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeString:
		return a.CeString, true
	case *pb.CloudEventAttributeValue_CeUri:
		return a.CeUri, true
	case *pb.CloudEventAttributeValue_CeUriRef:
		return a.CeUriRef, true
	}
	return "", false
}

// isTextual reports whether data of the content type is text: JSON (the
// default when the type is absent would be JSON in the JSON format, but in
// the protobuf format absent means unknown, hence binary), XML or text/*.
func isTextual(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"):
		return true
	}
	return false
}

// toProto converts an sdk-go event into the CloudEvents protobuf format with
// format.ToProto (data goes to binary_data, or proto_data for
// application/protobuf, byte-exact), leaving the data unset for an event
// without data instead of sending empty bytes.
func toProto(ev *event.Event) (*pb.CloudEvent, error) {
	out, err := format.ToProto(ev)
	if err != nil {
		return nil, err
	}
	if ev.DataEncoded == nil {
		out.Data = nil
	}
	return out, nil
}
