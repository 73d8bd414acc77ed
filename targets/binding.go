package targets

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// Helpers the kinds share to write an event in a binding.

// Attr is one context attribute of an event.
type Attr struct {
	// Name is the attribute's name (lower case).
	Name string
	// Text is its canonical string form (CloudEvents type system).
	Text string
	// Value is its typed value: string, bool, int32, []byte or time.Time.
	Value any
}

// Attributes returns every context attribute of ev but datacontenttype
// (bindings carry it as their content type), sorted by name so that the
// output of a binding does not depend on map order. Values without a
// variant are skipped.
func Attributes(ev *pb.CloudEvent) []Attr {
	out := make([]Attr, 0, 4+len(ev.GetAttributes()))
	for _, a := range [...]Attr{
		{Name: cloudevent.AttrID, Text: ev.GetId()},
		{Name: cloudevent.AttrSource, Text: ev.GetSource()},
		{Name: cloudevent.AttrSpecVersion, Text: ev.GetSpecVersion()},
		{Name: cloudevent.AttrType, Text: ev.GetType()},
	} {
		a.Value = a.Text
		out = append(out, a)
	}
	for name, v := range ev.GetAttributes() {
		switch name {
		case cloudevent.AttrID, cloudevent.AttrSource, cloudevent.AttrSpecVersion, cloudevent.AttrType, cloudevent.AttrDataContentType:
			continue
		}
		text, ok := cloudevent.AttributeValueString(v)
		if !ok {
			continue
		}
		a := Attr{Name: name, Text: text, Value: text}
		switch x := v.GetAttr().(type) {
		case *pb.CloudEventAttributeValue_CeBoolean:
			a.Value = x.CeBoolean
		case *pb.CloudEventAttributeValue_CeInteger:
			a.Value = x.CeInteger
		case *pb.CloudEventAttributeValue_CeBytes:
			a.Value = x.CeBytes
		case *pb.CloudEventAttributeValue_CeTimestamp:
			a.Value = x.CeTimestamp.AsTime().UTC()
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ContentType returns ev's datacontenttype, or "" without one.
func ContentType(ev *pb.CloudEvent) string {
	ct, _ := cloudevent.Attribute(ev, cloudevent.AttrDataContentType)
	return ct
}

// DedupID is a stable identifier of an event (its source and id, the
// CloudEvents identity), usable as a broker's message-deduplication id:
// hex, 32 characters, the same for every attempt and replay.
func DedupID(ev *pb.CloudEvent) string {
	h := sha256.New()
	h.Write([]byte(ev.GetSource()))
	h.Write([]byte{0})
	h.Write([]byte(ev.GetId()))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// PercentEncode escapes a header value as the CloudEvents HTTP and NATS
// bindings do: printable ASCII but space, '%' and '"' as it is, every other
// byte as %XX. url.PathUnescape reverses it.
func PercentEncode(s string) string {
	plain := func(c byte) bool { return c > 0x20 && c < 0x7f && c != '"' && c != '%' }
	i := 0
	for i < len(s) && plain(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	const digits = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', digits[c>>4], digits[c&0xF])
		}
	}
	return string(b)
}

// AttributesJSON renders every attribute but datacontenttype as a JSON
// object as the CloudEvents JSON format writes them: booleans and integers
// as JSON values, binary as base64, timestamps and everything else as
// strings. Keys are sorted.
func AttributesJSON(ev *pb.CloudEvent) []byte {
	m := map[string]any{}
	for _, a := range Attributes(ev) {
		switch v := a.Value.(type) {
		case bool, int32:
			m[a.Name] = v
		case []byte:
			m[a.Name] = base64.StdEncoding.EncodeToString(v)
		case time.Time:
			m[a.Name] = a.Text
		default:
			m[a.Name] = a.Text
		}
	}
	b, _ := json.Marshal(m) // strings, bools and ints always encode
	return b
}
