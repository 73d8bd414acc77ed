package wrap

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
)

func TestIsStructured(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/cloudevents+json":                  true,
		"Application/CloudEvents+JSON; charset=utf-8":   true,
		" application/cloudevents+json ":                true,
		"application/cloudevents+json; charset":         true, // a malformed parameter: the type still says it
		"application/cloudevents-batch+json":            false,
		"application/json":                              false,
		"":                                              false,
		"application/cloudevents+json x":                false,
		"text/plain; x=application/cloudevents+json":    false,
		"application/cloudevents+jsonx; charset=utf-8":  false,
		"application/cloudevents+json;;charset=utf-8":   true,
		"application/cloudevents+json; charset=\"utf-8": true,
	} {
		if got := IsStructured(ct); got != want {
			t.Errorf("IsStructured(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestLooksStructured(t *testing.T) {
	for p, want := range map[string]bool{
		`{"specversion":"1.0"}`:                                 true,
		" \n\t" + strings.Repeat(" ", 40) + `{"specversion":1}`: true, // however much whitespace leads
		`["specversion"]`:                                       false,
		`{"id":"1"}`:                                            false,
		``:                                                      false,
		`plain "specversion"`:                                   false,
	} {
		if got := LooksStructured([]byte(p)); got != want {
			t.Errorf("LooksStructured(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestCheckSourceType(t *testing.T) {
	for name, c := range map[string]struct{ source, typ, field string }{
		"valid":      {"/orders", "com.example.created", ""},
		"bad source": {"a b", "t", "fields.src"},
		"no source":  {"", "t", "fields.src"},
		"no type":    {"/s", "", "fields.kind"},
		"bad type":   {"/s", "a\x00b", "fields.kind"},
	} {
		t.Run(name, func(t *testing.T) {
			err := CheckSourceType(c.source, c.typ, "src", "kind")
			if c.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), c.field+": ") {
				t.Fatalf("error %v, want one starting %q", err, c.field+": ")
			}
		})
	}
}

func TestDropInvalid(t *testing.T) {
	event := func() *pb.CloudEvent {
		return &pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: cloudevent.SpecVersion, Type: "t",
			Attributes: map[string]*pb.CloudEventAttributeValue{
				cloudevent.AttrSubject:         cloudevent.StringValue("bad\x01subject"),
				cloudevent.AttrDataContentType: cloudevent.StringValue("not a media type"),
				cloudevent.AttrTime:            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: &timestamppb.Timestamp{Seconds: -1 << 40}}},
				"tenant":                       cloudevent.StringValue("acme"),
			}}
	}
	ev := event()
	DropInvalid(ev, func() string { return "text/plain" })
	if err := cloudevent.Validate(ev); err != nil {
		t.Fatalf("still invalid: %v", err)
	}
	if _, ok := ev.Attributes[cloudevent.AttrSubject]; ok {
		t.Error("subject kept")
	}
	if _, ok := ev.Attributes[cloudevent.AttrTime]; ok {
		t.Error("time kept")
	}
	if got, _ := cloudevent.Attribute(ev, cloudevent.AttrDataContentType); got != "text/plain" {
		t.Errorf("datacontenttype %q, want the replacement", got)
	}
	if got, _ := cloudevent.Attribute(ev, "tenant"); got != "acme" {
		t.Errorf("a valid attribute was touched: tenant %q", got)
	}

	ev = event()
	DropInvalid(ev, func() string { return "" })
	if _, ok := ev.Attributes[cloudevent.AttrDataContentType]; ok {
		t.Error("datacontenttype kept when no replacement was given")
	}

	// A fault in what the connector set itself is left to its validation.
	ev = &pb.CloudEvent{Id: "1", Source: "a b", SpecVersion: cloudevent.SpecVersion, Type: "t",
		Attributes: map[string]*pb.CloudEventAttributeValue{cloudevent.AttrSubject: cloudevent.StringValue("ok")}}
	DropInvalid(ev, func() string { return "" })
	if cloudevent.Validate(ev) == nil || ev.Attributes[cloudevent.AttrSubject] == nil {
		t.Fatal("DropInvalid changed an event whose fault is not an optional attribute")
	}
}

func TestSafeSubject(t *testing.T) {
	for in, want := range map[string]string{
		"a/b c.txt":   "a/b c.txt",
		"é/ü%41":      "é/ü%41",
		"a\nb":        "a%0Ab",
		"bad\xffutf8": "bad%FFutf8",
		"\u0085x":     "%C2%85x",
		"\uFFFEx":     "%EF%BF%BEx",
		"":            "%00",
	} {
		got := SafeSubject(in)
		if got != want {
			t.Errorf("SafeSubject(%q) = %q, want %q", in, got, want)
		}
		if !cloudevent.ValidString(got) {
			t.Errorf("SafeSubject(%q) = %q is not a valid CloudEvents string", in, got)
		}
	}
}

// The hash is unambiguous: moving bytes between parts changes it, the same
// parts give the same hash.
func TestContentHash(t *testing.T) {
	sum := func(parts ...string) string {
		h := NewContentHash()
		for _, p := range parts {
			h.Text(p)
		}
		return h.Hex()
	}
	if sum("ab", "c") == sum("a", "bc") {
		t.Fatal("parts split differently hash alike")
	}
	if sum("", "x") == sum("x") {
		t.Fatal("an empty part is not counted")
	}
	if a, b := sum("topic", "payload"), sum("topic", "payload"); a != b || len(a) != 64 {
		t.Fatalf("same parts hash %s and %s; want equal 64-digit hex", a, b)
	}
	h1, h2 := NewContentHash(), NewContentHash()
	h1.Text("x")
	h2.Bytes([]byte("x"))
	if h1.Hex() != h2.Hex() {
		t.Fatal("Text and Bytes of the same content differ")
	}
}

// TerminatedHash hashes each part followed by a NUL, exactly: the ids of
// directory and s3poll changes must stay what earlier versions made.
func TestTerminatedHash(t *testing.T) {
	sum := sha256.Sum256([]byte("created\x00a/b.txt\x0042\x00"))
	if got, want := TerminatedHash("created", "a/b.txt", "42"), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("TerminatedHash = %s, want %s", got, want)
	}
	if TerminatedHash("ab", "c") == TerminatedHash("a", "bc") {
		t.Fatal("parts split differently hash alike")
	}
}
