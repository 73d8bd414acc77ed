package directory

import (
	"encoding/json"
	"math"
	"mime"
	"path"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// fileData is the event's data without include_content.
type fileData struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	ModTime string `json:"mod_time"`
	SHA256  string `json:"sha256,omitempty"`
}

// eventID is derived from the change and the file version it concerns.
func eventID(c change) string {
	return wrap.TerminatedHash(c.kind, c.rel, strconv.FormatInt(c.st.Mod, 10), strconv.FormatInt(c.st.Size, 10))
}

func str(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func stamp(t time.Time) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}}
}

func (s *Source) event(c change) *pb.CloudEvent {
	mod := time.Unix(0, c.st.Mod).UTC()
	ev := &pb.CloudEvent{
		Id: eventID(c), Source: s.source, SpecVersion: cloudevent.SpecVersion,
		Type: "com.switchyard.file." + c.kind,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			cloudevent.AttrSubject: str(wrap.SafeSubject(c.rel)),
		},
	}
	if at := c.at.UTC(); at.Year() >= 1 && at.Year() <= 9999 {
		ev.Attributes[cloudevent.AttrTime] = stamp(at)
	}
	if c.kind != "removed" && c.hasData {
		ct := mime.TypeByExtension(path.Ext(c.rel))
		if ct == "" {
			ct = "application/octet-stream"
		}
		ev.Attributes[cloudevent.AttrDataContentType] = str(ct)
		if c.st.Size <= math.MaxInt32 {
			ev.Attributes["filesize"] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: int32(c.st.Size)}}
		}
		if mod.Year() >= 1 && mod.Year() <= 9999 {
			ev.Attributes["filemodtime"] = stamp(mod)
		}
		if c.sum != "" {
			ev.Attributes["filesha256"] = str(c.sum)
		}
		if len(c.content) > 0 {
			ev.Data = &pb.CloudEvent_BinaryData{BinaryData: c.content}
		}
		return ev
	}
	data, _ := json.Marshal(fileData{Path: c.rel, Size: c.st.Size, ModTime: mod.Format(time.RFC3339Nano), SHA256: c.sum})
	ev.Attributes[cloudevent.AttrDataContentType] = str("application/json")
	ev.Data = &pb.CloudEvent_TextData{TextData: string(data)}
	return ev
}
