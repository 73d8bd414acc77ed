package mqtt

import (
	"bytes"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

func testDecoder() *decoder {
	return &decoder{typ: DefaultType, source: "mqtt://127.0.0.1:1883", idProperty: "message-id",
		now: func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }}
}

func attr(ev *pb.CloudEvent, name string) string {
	s, _ := cloudevent.Attribute(ev, name)
	return s
}

func TestWrapIDs(t *testing.T) {
	d := testDecoder()
	base := &inbound{topic: "sensors/1/temp", payload: []byte(`{"c":21.5}`)}
	first, notCE := d.decode(base)
	if notCE != nil {
		t.Fatal(notCE)
	}
	if len(first.Id) != 64 {
		t.Fatalf("id %q is not a SHA-256", first.Id)
	}
	if again, _ := d.decode(&inbound{topic: "sensors/1/temp", payload: []byte(`{"c":21.5}`)}); again.Id != first.Id {
		t.Fatal("same content, different id")
	}
	// An MQTT 5 message without properties hashes like an MQTT 3.1.1 one.
	if v5, _ := d.decode(&inbound{topic: "sensors/1/temp", payload: []byte(`{"c":21.5}`), props: &props5{}}); v5.Id != first.Id {
		t.Fatal("empty MQTT 5 properties changed the id")
	}
	pf := byte(1)
	for name, m := range map[string]*inbound{
		"payload":      {topic: "sensors/1/temp", payload: []byte(`{"c":22}`)},
		"topic":        {topic: "sensors/2/temp", payload: []byte(`{"c":21.5}`)},
		"retained":     {topic: "sensors/1/temp", payload: []byte(`{"c":21.5}`), retained: true},
		"user prop":    {topic: "sensors/1/temp", payload: []byte(`{"c":21.5}`), props: &props5{user: []userProp{{"k", "v"}}}},
		"content type": {topic: "sensors/1/temp", payload: []byte(`{"c":21.5}`), props: &props5{contentType: "application/json"}},
		"format":       {topic: "sensors/1/temp", payload: []byte(`{"c":21.5}`), props: &props5{payloadFormat: &pf}},
		"correlation":  {topic: "sensors/1/temp", payload: []byte(`{"c":21.5}`), props: &props5{correlation: []byte{1}}},
	} {
		if ev, _ := d.decode(m); ev.Id == first.Id {
			t.Errorf("changing the %s kept the id", name)
		}
	}
	withID := &inbound{topic: "t", payload: []byte("x"), props: &props5{user: []userProp{{"message-id", "m-1"}}}}
	if ev, _ := d.decode(withID); ev.Id != "m-1" {
		t.Errorf("id %q, want the id property", ev.Id)
	}
	badID := &inbound{topic: "t", payload: []byte("x"), props: &props5{user: []userProp{{"message-id", "\x01"}}}}
	if ev, _ := d.decode(badID); len(ev.Id) != 64 {
		t.Errorf("an invalid id property was used: %q", ev.Id)
	}
}

func TestWrapAttributes(t *testing.T) {
	d := testDecoder()
	withCT := *d
	withCT.contentType = "application/json"
	cases := map[string]struct {
		d           *decoder
		in          inbound
		subject, ct string
		text        string
		binary      []byte
	}{
		"v4 text":                  {d: d, in: inbound{topic: "a/b", payload: []byte("21.5")}, subject: "a/b", text: "21.5"},
		"v4 bytes":                 {d: d, in: inbound{topic: "a/b", payload: []byte{0xff, 0}}, subject: "a/b", binary: []byte{0xff, 0}},
		"v4 with content_type":     {d: &withCT, in: inbound{topic: "a", payload: []byte(`{"x":1}`)}, subject: "a", ct: "application/json", text: `{"x":1}`},
		"v5 content type wins":     {d: &withCT, in: inbound{topic: "a", payload: []byte("abc"), props: &props5{contentType: "application/octet-stream"}}, subject: "a", ct: "application/octet-stream", binary: []byte("abc")},
		"invalid content type":     {d: d, in: inbound{topic: "a", payload: []byte("abc"), props: &props5{contentType: "nonsense"}}, subject: "a", text: "abc"},
		"empty payload":            {d: d, in: inbound{topic: "a"}, subject: "a"},
		"control character topic":  {d: d, in: inbound{topic: "a\x01", payload: []byte("x")}, text: "x"},
		"plain JSON with no specv": {d: d, in: inbound{topic: "a", payload: []byte(`{"id":"1","type":"t"}`)}, subject: "a", text: `{"id":"1","type":"t"}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ev, notCE := tc.d.decode(&tc.in)
			if notCE != nil {
				t.Fatal(notCE)
			}
			if err := cloudevent.Validate(ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type != DefaultType || ev.Source != d.source || attr(ev, "time") != "2025-03-01T12:00:00Z" {
				t.Errorf("type/source/time %q %q %q", ev.Type, ev.Source, attr(ev, "time"))
			}
			if got := attr(ev, "subject"); got != tc.subject {
				t.Errorf("subject %q, want %q", got, tc.subject)
			}
			if got := attr(ev, "datacontenttype"); got != tc.ct {
				t.Errorf("datacontenttype %q, want %q", got, tc.ct)
			}
			if ev.GetTextData() != tc.text || !bytes.Equal(ev.GetBinaryData(), tc.binary) {
				t.Errorf("data %v, want text %q binary %v", ev.GetData(), tc.text, tc.binary)
			}
		})
	}
}

func TestCloudEventsBinaryMode(t *testing.T) {
	d := testDecoder()
	m := &inbound{topic: "orders", payload: []byte(`{"id":1}`), props: &props5{contentType: "application/json", user: []userProp{
		{"specversion", "1.0"}, {"id", "ce-1"}, {"source", "/orders"}, {"type", "order.created"},
		{"time", "2024-05-01T10:00:00.5Z"}, {"subject", "o-1"}, {"dataschema", "https://example.com/s"}, {"tenant", "acme"},
		{"Trace-Id", "ignored"}, {"message-id", "ignored"},
	}}}
	ev, notCE := d.decode(m)
	if notCE != nil {
		t.Fatal(notCE)
	}
	if ev.Id != "ce-1" || ev.Source != "/orders" || ev.Type != "order.created" || ev.GetTextData() != `{"id":1}` {
		t.Fatalf("unexpected event %v", ev)
	}
	for name, want := range map[string]string{"time": "2024-05-01T10:00:00.5Z", "subject": "o-1", "dataschema": "https://example.com/s",
		"tenant": "acme", "datacontenttype": "application/json"} {
		if got := attr(ev, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if len(ev.Attributes) != 5 {
		t.Errorf("attributes %v: user properties that are not attribute names were taken", ev.Attributes)
	}
	bad := map[string][]userProp{
		"missing id":   {{"specversion", "1.0"}, {"source", "/s"}, {"type", "t"}},
		"repeated":     {{"specversion", "1.0"}, {"id", "1"}, {"id", "2"}, {"source", "/s"}, {"type", "t"}},
		"bad time":     {{"specversion", "1.0"}, {"id", "1"}, {"source", "/s"}, {"type", "t"}, {"time", "noon"}},
		"bad version":  {{"specversion", "2.0"}, {"id", "1"}, {"source", "/s"}, {"type", "t"}},
		"empty source": {{"specversion", "1.0"}, {"id", "1"}, {"source", ""}, {"type", "t"}},
	}
	for name, user := range bad {
		t.Run(name, func(t *testing.T) {
			ev, notCE := d.decode(&inbound{topic: "x", payload: []byte("p"), props: &props5{user: user}})
			if notCE == nil {
				t.Fatal("an invalid CloudEvent was accepted")
			}
			if ev.Type != DefaultType || ev.GetTextData() != "p" || cloudevent.Validate(ev) != nil {
				t.Fatalf("not wrapped: %v", ev)
			}
		})
	}
}

func TestCloudEventsStructuredMode(t *testing.T) {
	d := testDecoder()
	body := []byte(` {"specversion":"1.0","id":"s-1","source":"/src","type":"t.created","data":{"a":1}}`)
	// MQTT 5 with the content type, MQTT 5 without, MQTT 3.1.1.
	for name, m := range map[string]*inbound{
		"v5 content type": {topic: "x", payload: body, props: &props5{contentType: "application/cloudevents+json"}},
		"v5 sniffed":      {topic: "x", payload: body, props: &props5{}},
		"v4 sniffed":      {topic: "x", payload: body},
	} {
		ev, notCE := d.decode(m)
		if notCE != nil || ev.Id != "s-1" || ev.GetTextData() != `{"a":1}` {
			t.Errorf("%s: %v %v", name, ev, notCE)
		}
	}
	// A declared structured event that is invalid is wrapped and reported;
	// sniffed JSON that is not a valid event is just JSON.
	ev, notCE := d.decode(&inbound{topic: "x", payload: []byte(`{"specversion":"1.0"}`), props: &props5{contentType: "application/cloudevents+json"}})
	if notCE == nil || ev.Type != DefaultType {
		t.Errorf("invalid declared event: %v %v", ev, notCE)
	}
	ev, notCE = d.decode(&inbound{topic: "x", payload: []byte(`{"specversion":"1.0","note":"not an event"}`)})
	if notCE != nil || ev.Type != DefaultType || ev.GetTextData() != `{"specversion":"1.0","note":"not an event"}` {
		t.Errorf("sniffed non-event: %v %v", ev, notCE)
	}
	// A content type other than the structured one disables sniffing.
	ev, _ = d.decode(&inbound{topic: "x", payload: body, props: &props5{contentType: "application/json"}})
	if ev.Type != DefaultType {
		t.Errorf("JSON with an explicit content type decoded as a CloudEvent: %v", ev)
	}
}

func TestCheckFilter(t *testing.T) {
	for f, ok := range map[string]bool{
		"a": true, "a/b": true, "a/+/c": true, "#": true, "a/#": true, "+": true, "/": true, "$share/g/a/#": true, "$SYS/#": true,
		"": false, "a/#/b": false, "a+": false, "a/b#": false, "$share//a": false, "$share/g": false, "$share/g+/a": false, "a\x00": false, "\xff": false,
	} {
		if err := checkFilter(f); (err == nil) != ok {
			t.Errorf("%q: %v", f, err)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t"}`), "a/b", "", "specversion", "1.0", "id", "x", false, true)
	f.Add([]byte{0xff}, "\x01", "application/cloudevents+json", "time", "bad", "message-id", "\x00", true, true)
	f.Add([]byte(`{"a":1}`), "t", "text/plain", "", "", "", "", false, false)
	d := testDecoder()
	f.Fuzz(func(t *testing.T, payload []byte, topic, ct, k1, v1, k2, v2 string, retained, v5 bool) {
		m := &inbound{topic: topic, payload: payload, retained: retained}
		if v5 {
			m.props = &props5{contentType: ct, user: []userProp{{k1, v1}, {k2, v2}, {"source", "/s"}, {"type", "t"}}}
		}
		ev, notCE := d.decode(m)
		if err := cloudevent.Validate(ev); err != nil {
			t.Fatalf("invalid event %v: %v", ev, err)
		}
		// Only a structured-mode event has other data than the payload.
		structured := notCE == nil && (wrap.LooksStructured(payload) || (v5 && wrap.IsStructured(ct)))
		if !structured && !bytes.Equal(cloudevent.Data(ev), payload) {
			t.Fatalf("data %q, want the payload %q", cloudevent.Data(ev), payload)
		}
		again, _ := d.decode(m)
		if again.Id != ev.Id {
			t.Fatalf("id not deterministic: %s then %s", ev.Id, again.Id)
		}
	})
}
