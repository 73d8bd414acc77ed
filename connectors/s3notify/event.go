package s3notify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// Events maps the records of n to CloudEvents (the CloudEvents AWS S3
// adapter mapping, see the package's Emits). Every event is valid: an
// attribute that would not be (a key with control characters, a source
// that is no URI-reference) is percent-encoded, and ids that repeat
// within the notification are made distinct deterministically.
func Events(n Notification, decodeKeys bool) []*pb.CloudEvent {
	out := make([]*pb.CloudEvent, 0, len(n.Records))
	used := make(map[string]bool, len(n.Records))
	for _, r := range n.Records {
		ev := recordEvent(r, decodeKeys)
		if used[ev.Id] { // a multi-object delete: one request, several records
			base := ev.Id + "." + shortHash(r.Key, r.VersionID, r.Sequencer, r.EventName, r.ETag)
			ev.Id = base
			for i := 2; used[ev.Id]; i++ { // identical records: keep them apart anyway
				ev.Id = base + "." + strconv.Itoa(i)
			}
		}
		used[ev.Id] = true
		out = append(out, ev)
	}
	return out
}

func recordEvent(r Record, decodeKeys bool) *pb.CloudEvent {
	id := recordID(r)
	subject := r.Key
	if decodeKeys {
		if k, err := url.QueryUnescape(r.Key); err == nil {
			subject = k
		}
	}
	ev := &pb.CloudEvent{
		Id:          id,
		Source:      r.EventSource + "." + r.AWSRegion + "." + r.Bucket,
		SpecVersion: cloudevent.SpecVersion,
		Type:        TypePrefix + strings.TrimPrefix(r.EventName, "s3:"),
		Attributes: map[string]*pb.CloudEventAttributeValue{
			cloudevent.AttrDataContentType: {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/json"}},
		},
	}
	if subject != "" {
		ev.Attributes[cloudevent.AttrSubject] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: subject}}
	}
	if t, err := time.Parse(time.RFC3339Nano, r.EventTime); err == nil && t.Year() >= 1 && t.Year() <= 9999 {
		ev.Attributes[cloudevent.AttrTime] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}}
	}
	if utf8.Valid(r.Raw) {
		ev.Data = &pb.CloudEvent_TextData{TextData: string(r.Raw)}
	} else {
		ev.Data = &pb.CloudEvent_BinaryData{BinaryData: append([]byte(nil), r.Raw...)}
	}
	sanitize(ev, r)
	return ev
}

// recordID is the adapter's id, or a hash of what identifies the record
// when the sender left responseElements out.
func recordID(r Record) string {
	switch {
	case r.RequestID != "" && r.HostID != "":
		return r.RequestID + "." + r.HostID
	case r.RequestID != "":
		return r.RequestID
	}
	return fallbackID(r)
}

func fallbackID(r Record) string {
	h := sha256.New()
	for _, s := range []string{r.EventName, r.Bucket, r.Key, r.VersionID, r.Sequencer, r.ETag, r.EventTime} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "s3-" + hex.EncodeToString(h.Sum(nil))
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// sanitize makes ev valid by re-encoding the attributes Validate objects to.
func sanitize(ev *pb.CloudEvent, r Record) {
	for range 8 {
		err := cloudevent.Validate(ev)
		var ce *cloudevent.Error
		if err == nil || !errors.As(err, &ce) {
			return
		}
		switch ce.Attribute {
		case cloudevent.AttrID:
			if ev.Id != fallbackID(r) {
				ev.Id = fallbackID(r)
			} else {
				ev.Id = escapeAll(ev.Id)
			}
		case cloudevent.AttrSource:
			ev.Source = escapeAll(ev.Source)
		case cloudevent.AttrType:
			ev.Type = TypePrefix + escapeAll(strings.TrimPrefix(r.EventName, "s3:"))
		case cloudevent.AttrSubject:
			if s := ev.Attributes[cloudevent.AttrSubject].GetCeString(); s != r.Key && cloudevent.ValidString(r.Key) {
				ev.Attributes[cloudevent.AttrSubject].Attr = &pb.CloudEventAttributeValue_CeString{CeString: r.Key}
			} else {
				ev.Attributes[cloudevent.AttrSubject].Attr = &pb.CloudEventAttributeValue_CeString{CeString: escapeAll(s)}
			}
		default:
			delete(ev.Attributes, ce.Attribute)
		}
	}
}

// escapeAll percent-encodes every byte but ASCII letters, digits and
// "-._~": the result is a valid CloudEvents string and URI-reference.
func escapeAll(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}
