package watermill

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// How a message becomes an event and back (see the package documentation):
// the message's UUID is the event's id, its payload the event's data
// (byte-exact), and each metadata entry an extension attribute. CloudEvents
// attribute names are lower-case letters and digits only, and attribute
// values are strings without control characters, so entries that do not
// fit travel encoded, reversibly:
//
//	key plain, value a CloudEvents string   →  <key> = <value>
//	key not plain, value a CloudEvents string →  wmk<base32hex(key)> = <value>
//	value not a CloudEvents string          →  wmv<base32hex(key)> = base64(<value>)
//
// A plain key is made of a-z and 0-9, is not a CloudEvents core attribute
// (id, source, specversion, type, datacontenttype, dataschema, subject,
// time, data), nor switchyardhops (Switchyard's hop count, which only
// relays may set), and does not start with wmk or wmv (so that decoding is
// unambiguous). base32hex is written in lower case without padding, so the
// encoded names are valid attribute names too. Decoding reverses this; an
// extension that merely looks encoded (wmk… or wmv… that does not decode)
// is kept as it is.

// Prefixes of the extension names of encoded metadata entries.
const (
	encodedKeyPrefix   = "wmk"
	encodedValuePrefix = "wmv"
)

// reservedNames are attribute names a metadata key never becomes as it is.
var reservedNames = map[string]bool{
	"id": true, "source": true, "specversion": true, "type": true, "datacontenttype": true,
	"dataschema": true, "subject": true, "time": true, "data": true, "switchyardhops": true,
}

var keyEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// plainKey reports whether a metadata key can be an extension name as it is.
func plainKey(k string) bool {
	if k == "" || reservedNames[k] || strings.HasPrefix(k, encodedKeyPrefix) || strings.HasPrefix(k, encodedValuePrefix) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ceString reports whether v is a valid CloudEvents String: valid UTF-8
// without control characters or Unicode noncharacters.
func ceString(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		switch {
		case r < 0x20, r >= 0x7f && r <= 0x9f:
			return false
		case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
			return false
		}
	}
	return true
}

// EncodeMetadata returns the extension attribute (name and value) that
// carries the metadata entry key=value.
func EncodeMetadata(key, value string) (name, attr string) {
	switch {
	case !ceString(value):
		return EncodeMetadataName(key, true), base64.StdEncoding.EncodeToString([]byte(value))
	case plainKey(key):
		return key, value
	default:
		return EncodeMetadataName(key, false), value
	}
}

// DecodeMetadata returns the metadata entry an extension attribute carries
// (the inverse of EncodeMetadata); ok is false for an extension that only
// looks encoded, which is then kept as it is.
func DecodeMetadata(name, attr string) (key, value string, ok bool) {
	prefix := name[:min(len(name), 3)]
	if prefix != encodedKeyPrefix && prefix != encodedValuePrefix {
		return name, attr, true
	}
	k, err := keyEncoding.DecodeString(strings.ToUpper(name[3:]))
	if err != nil || EncodeMetadataName(string(k), prefix == encodedValuePrefix) != name {
		return name, attr, false
	}
	if prefix == encodedKeyPrefix {
		return string(k), attr, true
	}
	v, err := base64.StdEncoding.DecodeString(attr)
	if err != nil {
		return name, attr, false
	}
	return string(k), string(v), true
}

// EncodeMetadataName is the extension name of an encoded metadata key
// (valueEncoded: the value is base64 too).
func EncodeMetadataName(key string, valueEncoded bool) string {
	p := encodedKeyPrefix
	if valueEncoded {
		p = encodedValuePrefix
	}
	return p + strings.ToLower(keyEncoding.EncodeToString([]byte(key)))
}

// errNoUUID refuses a message without a UUID: it is the event's id.
var errNoUUID = errors.New("message has no UUID (it becomes the event's id)")

// toEvent builds the event of a message published on topic.
func toEvent(msg *message.Message, typ, source, contentType string) (event.Event, error) {
	if msg.UUID == "" {
		return event.Event{}, errNoUUID
	}
	ev := event.New()
	ev.SetID(msg.UUID)
	ev.SetSource(source)
	ev.SetType(typ)
	if contentType != "" {
		ev.SetDataContentType(contentType)
	}
	if msg.Payload != nil {
		ev.DataEncoded = msg.Payload
	}
	for k, v := range msg.Metadata {
		name, attr := EncodeMetadata(k, v)
		ev.SetExtension(name, attr)
	}
	return ev, nil
}

// toMessage builds the message of a received event: every extension
// becomes a metadata entry (decoded), core attributes do not.
func toMessage(ev event.Event) *message.Message {
	msg := message.NewMessage(ev.ID(), ev.Data())
	for name, v := range ev.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			s = fmt.Sprint(v)
		}
		k, val, _ := DecodeMetadata(name, s)
		msg.Metadata.Set(k, val)
	}
	return msg
}

// TriggerName is the default name of the pull trigger a Subscriber of
// consumer group group uses for topic: "wm-", then group and topic joined
// by '-', made lower-case with each run of other characters than a-z and
// 0-9 turned into one '-' and cut to keep the name within 63 characters,
// then '-' and the first 8 hex digits of the SHA-256 of group, a zero byte
// and topic, so that names that differ only in the characters replaced or
// cut stay apart. Example: group "billing", topic "orders.created" →
// "wm-billing-orders-created-" and 8 hex digits.
func TriggerName(group, topic string) string {
	sum := sha256.Sum256([]byte(group + "\x00" + topic))
	tail := "-" + hex.EncodeToString(sum[:4])
	var b strings.Builder
	dash := true // no leading '-'
	for _, r := range strings.ToLower(group + "-" + topic) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	slug := b.String()
	room := 63 - len("wm-") - len(tail)
	if len(slug) > room {
		slug = slug[:room]
	}
	slug = strings.TrimRight(slug, "-")
	if slug == "" {
		return "wm" + tail
	}
	return "wm-" + slug + tail
}
