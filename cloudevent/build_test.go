package cloudevent

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

func TestBuildHelpers(t *testing.T) {
	ev := &pb.CloudEvent{}
	for name, v := range map[string]string{"id": "1", "source": "/s", "specversion": "1.0", "type": "t", "time": "2026-01-02T03:04:05Z", "dataschema": "https://x/s", "tenant": "acme"} {
		SetAttribute(ev, name, v)
	}
	if err := Validate(ev); err != nil {
		t.Fatal(err)
	}
	if got := ev.GetAttributes()["time"].GetCeTimestamp().AsTime(); !got.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("time %v", got)
	}
	SetAttribute(ev, "time", "yesterday")
	if Validate(ev) == nil {
		t.Fatal("a bad time must stay visible to Validate")
	}
	cases := map[string]struct {
		ct   string
		data []byte
		text bool
	}{
		"json":             {"application/json", []byte(`{"a":1}`), true},
		"unknown utf8":     {"", []byte("hi"), true},
		"binary type":      {"image/png", []byte("png?"), false},
		"invalid utf8":     {"text/plain", []byte{0xff}, false},
		"vendor json":      {"application/vnd.x+json; charset=utf-8", []byte(`[]`), true},
		"empty is no data": {"text/plain", nil, false},
	}
	for name, tc := range cases {
		ev := &pb.CloudEvent{}
		SetData(ev, tc.ct, tc.data)
		if _, isText := ev.GetData().(*pb.CloudEvent_TextData); isText != tc.text {
			t.Errorf("%s: text=%v", name, isText)
		}
		if string(Data(ev)) != string(tc.data) {
			t.Errorf("%s: data not byte-exact", name)
		}
	}
	for in, want := range map[string]string{`{"a":1}`: "application/json", "plain": "text/plain; charset=utf-8", "\xff": "application/octet-stream"} {
		if got := SniffContentType([]byte(in)); got != want {
			t.Errorf("%q: %q", in, got)
		}
	}
}

// ValidString and ValidMediaType give Validate's verdict on a single value,
// which connectors used to get by validating an event built around it.
func TestValidStringAndMediaTypeAgreeWithValidate(t *testing.T) {
	probe := func(id string, attrs map[string]*pb.CloudEventAttributeValue) bool {
		return Validate(&pb.CloudEvent{Id: id, Source: "/", SpecVersion: SpecVersion, Type: "t", Attributes: attrs}) == nil
	}
	for _, s := range []string{"", "a", "orders/eu-1", "é ü", "tab\there", "nul\x00", "del\x7f", "c1\u0085", "bad \xff", "nonchar \ufdd0", "\uffff", " "} {
		if got, want := ValidString(s), probe(s, nil); got != want {
			t.Errorf("ValidString(%q) = %v, Validate says %v", s, got, want)
		}
	}
	for _, ct := range []string{"", "json", "application/json", "text/plain; charset=utf-8", "Application/CloudEvents+JSON", "a/b;", "a/b; x", "a/b; x=\"q\"", "a /b", "/json", "text/", "a/b\x00"} {
		want := ct != "" && probe("i", map[string]*pb.CloudEventAttributeValue{AttrDataContentType: StringValue(ct)})
		if got := ValidMediaType(ct); got != want {
			t.Errorf("ValidMediaType(%q) = %v, Validate says %v", ct, got, want)
		}
	}
}
