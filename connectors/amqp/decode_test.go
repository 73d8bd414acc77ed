package amqp

import (
	"bytes"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func testDecoder() *decoder {
	return &decoder{queue: "orders", typ: DefaultType, source: "amqp://127.0.0.1:5672/%2F/orders", now: func() time.Time { return fixedNow }}
}

func attr(ev *pb.CloudEvent, name string) string {
	s, _ := cloudevent.Attribute(ev, name)
	return s
}

func TestWrapIDs(t *testing.T) {
	d := testDecoder()
	base := func() *amqp091.Delivery {
		return &amqp091.Delivery{Exchange: "shop", RoutingKey: "order.created", ContentType: "application/json",
			Headers: amqp091.Table{"tenant": "acme", "n": int32(7)}, Body: []byte(`{"order":1}`), DeliveryTag: 1}
	}
	first, notCE := d.decode(base())
	if notCE != nil {
		t.Fatal(notCE)
	}
	if len(first.Id) != 64 {
		t.Fatalf("id %q is not a SHA-256", first.Id)
	}
	// A redelivery: new tag, redelivered flag, broker headers; same content.
	re := base()
	re.DeliveryTag, re.Redelivered = 42, true
	re.Headers["x-delivery-count"] = int64(3)
	re.Headers["x-death"] = []any{amqp091.Table{"count": int64(1), "queue": "orders"}}
	re.Headers["n"] = int64(7) // re-encoded in another width
	if ev, _ := d.decode(re); ev.Id != first.Id {
		t.Fatalf("redelivered message got id %s, want %s", ev.Id, first.Id)
	}
	for name, change := range map[string]func(*amqp091.Delivery){
		"body":        func(m *amqp091.Delivery) { m.Body = []byte(`{"order":2}`) },
		"header":      func(m *amqp091.Delivery) { m.Headers["tenant"] = "other" },
		"routing key": func(m *amqp091.Delivery) { m.RoutingKey = "order.paid" },
		"timestamp":   func(m *amqp091.Delivery) { m.Timestamp = time.Unix(1700000000, 0) },
		"new header":  func(m *amqp091.Delivery) { m.Headers["x-trace"] = []byte{1} },
	} {
		m := base()
		change(m)
		if ev, _ := d.decode(m); ev.Id == first.Id {
			t.Errorf("changing the %s kept the id", name)
		}
	}
	withID := base()
	withID.MessageId = "msg-1"
	if ev, _ := d.decode(withID); ev.Id != "msg-1" {
		t.Errorf("id %q, want the message-id", ev.Id)
	}
	badID := base()
	badID.MessageId = "bad\x01id"
	if ev, _ := d.decode(badID); len(ev.Id) != 64 {
		t.Errorf("an invalid message-id was used: %q", ev.Id)
	}
}

func TestWrapAttributes(t *testing.T) {
	d := testDecoder()
	ts := time.Unix(1700000000, 0).UTC()
	cases := map[string]struct {
		in                  amqp091.Delivery
		subject, ct, evTime string
		text                string
		binary              []byte
	}{
		"json": {in: amqp091.Delivery{RoutingKey: "a.b", ContentType: "application/json", Timestamp: ts, Body: []byte(`{"a":1}`)},
			subject: "a.b", ct: "application/json", evTime: "2023-11-14T22:13:20Z", text: `{"a":1}`},
		"no content type, text":  {in: amqp091.Delivery{Body: []byte("héllo")}, evTime: "2025-03-01T12:00:00Z", text: "héllo"},
		"no content type, bytes": {in: amqp091.Delivery{Body: []byte{0xff, 0, 1}}, evTime: "2025-03-01T12:00:00Z", binary: []byte{0xff, 0, 1}},
		"octet-stream, utf-8 bytes": {in: amqp091.Delivery{ContentType: "application/octet-stream", Body: []byte("abc")},
			ct: "application/octet-stream", evTime: "2025-03-01T12:00:00Z", binary: []byte("abc")},
		"invalid content type dropped": {in: amqp091.Delivery{ContentType: "not a type", Body: []byte("x")}, evTime: "2025-03-01T12:00:00Z", text: "x"},
		"text with charset": {in: amqp091.Delivery{ContentType: "text/plain; charset=utf-8", Body: []byte("x")},
			ct: "text/plain; charset=utf-8", evTime: "2025-03-01T12:00:00Z", text: "x"},
		"empty body": {in: amqp091.Delivery{RoutingKey: "k"}, subject: "k", evTime: "2025-03-01T12:00:00Z"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ev, notCE := d.decode(&tc.in)
			if notCE != nil {
				t.Fatal(notCE)
			}
			if err := cloudevent.Validate(ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type != DefaultType || ev.Source != d.source {
				t.Errorf("type/source %q %q", ev.Type, ev.Source)
			}
			if got := attr(ev, "subject"); got != tc.subject {
				t.Errorf("subject %q, want %q", got, tc.subject)
			}
			if got := attr(ev, "datacontenttype"); got != tc.ct {
				t.Errorf("datacontenttype %q, want %q", got, tc.ct)
			}
			if got := attr(ev, "time"); got != tc.evTime {
				t.Errorf("time %q, want %q", got, tc.evTime)
			}
			if ev.GetTextData() != tc.text || !bytes.Equal(ev.GetBinaryData(), tc.binary) {
				t.Errorf("data %v, want text %q binary %v", ev.GetData(), tc.text, tc.binary)
			}
		})
	}
}

func TestCloudEventsBinaryMode(t *testing.T) {
	d := testDecoder()
	for _, prefix := range []string{"cloudEvents:", "cloudEvents_"} {
		t.Run(prefix, func(t *testing.T) {
			m := &amqp091.Delivery{ContentType: "application/json", MessageId: "ignored", RoutingKey: "rk",
				Headers: amqp091.Table{
					prefix + "specversion": "1.0", prefix + "id": "ce-1", prefix + "source": "/orders",
					prefix + "type": "order.created", prefix + "time": "2024-05-01T10:00:00.5Z", prefix + "subject": "o-1",
					prefix + "dataschema": "https://example.com/schema", prefix + "count": int16(3), prefix + "urgent": true,
					"unrelated": "x",
				}, Body: []byte(`{"id":1}`)}
			ev, notCE := d.decode(m)
			if notCE != nil {
				t.Fatal(notCE)
			}
			if ev.Id != "ce-1" || ev.Source != "/orders" || ev.Type != "order.created" {
				t.Fatalf("unexpected event %v", ev)
			}
			for name, want := range map[string]string{"time": "2024-05-01T10:00:00.5Z", "subject": "o-1", "dataschema": "https://example.com/schema",
				"count": "3", "urgent": "true", "datacontenttype": "application/json"} {
				if got := attr(ev, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if _, ok := ev.Attributes["unrelated"]; ok {
				t.Error("a header without the prefix became an attribute")
			}
			if ev.GetTextData() != `{"id":1}` {
				t.Errorf("data %v", ev.GetData())
			}
		})
	}
	bad := map[string]amqp091.Table{
		"missing source": {"cloudEvents:specversion": "1.0", "cloudEvents:id": "x", "cloudEvents:type": "t"},
		"both prefixes":  {"cloudEvents:specversion": "1.0", "cloudEvents_specversion": "1.0", "cloudEvents:id": "x", "cloudEvents:source": "/s", "cloudEvents:type": "t"},
		"bad time":       {"cloudEvents:specversion": "1.0", "cloudEvents:id": "x", "cloudEvents:source": "/s", "cloudEvents:type": "t", "cloudEvents:time": "yesterday"},
		"bad version":    {"cloudEvents:specversion": "0.3", "cloudEvents:id": "x", "cloudEvents:source": "/s", "cloudEvents:type": "t"},
		"table value":    {"cloudEvents:specversion": "1.0", "cloudEvents:id": "x", "cloudEvents:source": "/s", "cloudEvents:type": "t", "cloudEvents:ext": amqp091.Table{}},
		"int id":         {"cloudEvents:specversion": "1.0", "cloudEvents:id": int32(1), "cloudEvents:source": "/s", "cloudEvents:type": "t"},
	}
	for name, h := range bad {
		t.Run(name, func(t *testing.T) {
			ev, notCE := d.decode(&amqp091.Delivery{Headers: h, Body: []byte("payload")})
			if notCE == nil {
				t.Fatal("an invalid CloudEvent was accepted")
			}
			if ev.Type != DefaultType || ev.GetTextData() != "payload" || cloudevent.Validate(ev) != nil {
				t.Fatalf("not wrapped: %v", ev)
			}
		})
	}
}

func TestCloudEventsStructuredMode(t *testing.T) {
	d := testDecoder()
	body := []byte(`{"specversion":"1.0","id":"s-1","source":"/src","type":"t.created","datacontenttype":"application/json","data":{"a":1}}`)
	ev, notCE := d.decode(&amqp091.Delivery{ContentType: "application/cloudevents+json; charset=utf-8", Body: body, MessageId: "m"})
	if notCE != nil {
		t.Fatal(notCE)
	}
	if ev.Id != "s-1" || ev.Type != "t.created" || ev.GetTextData() != `{"a":1}` {
		t.Fatalf("unexpected event %v", ev)
	}
	ev, notCE = d.decode(&amqp091.Delivery{ContentType: "application/cloudevents+json", Body: []byte(`{"id":"x"}`)})
	if notCE == nil || ev.Type != DefaultType || ev.GetTextData() != `{"id":"x"}` {
		t.Fatalf("invalid structured event not wrapped: %v %v", ev, notCE)
	}
	// Without the content type a JSON CloudEvent is plain JSON: the AMQP
	// binding defines structured mode by content type.
	ev, _ = d.decode(&amqp091.Delivery{ContentType: "application/json", Body: body})
	if ev.Type != DefaultType {
		t.Fatalf("plain JSON decoded as a CloudEvent: %v", ev)
	}
}

func FuzzDecodeDelivery(f *testing.F) {
	f.Add([]byte(`{"a":1}`), "application/json", "", "rk", "cloudEvents:specversion", "1.0", "cloudEvents:id", "i")
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t"}`), "application/cloudevents+json", "m", "", "", "", "", "")
	f.Add([]byte{0xff, 0xfe}, "", "\x00", "\xff", "cloudEvents_time", "2020-01-01T00:00:00Z", "x-death", "1")
	d := testDecoder()
	f.Fuzz(func(t *testing.T, body []byte, ct, msgID, rk, k1, v1, k2, v2 string) {
		h := amqp091.Table{k1: v1, k2: v2,
			"cloudEvents:specversion": "1.0", "cloudEvents:source": "/s", "cloudEvents:type": "t"}
		if len(body) > 0 && body[0]&1 == 0 { // half the inputs are not binary-mode
			delete(h, "cloudEvents:specversion")
		}
		m := &amqp091.Delivery{ContentType: ct, MessageId: msgID, RoutingKey: rk, Headers: h, Body: body}
		ev, notCE := d.decode(m)
		if err := cloudevent.Validate(ev); err != nil {
			t.Fatalf("invalid event %v: %v", ev, err)
		}
		structured := !isBinary(h) && wrap.IsStructured(ct)
		if (!structured || notCE != nil) && !bytes.Equal(cloudevent.Data(ev), body) {
			t.Fatalf("data %q, want the body %q", cloudevent.Data(ev), body)
		}
		again, _ := d.decode(m)
		if again.Id != ev.Id {
			t.Fatalf("id not deterministic: %s then %s", ev.Id, again.Id)
		}
	})
}
