package natsjs

import (
	"bytes"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// headers splits fuzz input into "name: value" lines.
func headers(b []byte) map[string][]string {
	h := map[string][]string{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(": "))
		if ok {
			h[string(k)] = append(h[string(k)], string(v))
		}
	}
	return h
}

// FuzzDecodeMessage checks that every message, whatever its headers and
// payload, becomes a valid CloudEvent; a wrapped message keeps its payload
// byte for byte and its stream position as id.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(""), []byte(`{"a":1}`))
	f.Add([]byte("Content-Type: application/cloudevents+json"), []byte(`{"specversion":"1.0","id":"x","source":"/s","type":"t"}`))
	f.Add([]byte(""), []byte(`{"specversion":"1.0","id":"x","source":"/s","type":"t","data_base64":"AAE="}`))
	f.Add([]byte("ce-specversion: 1.0\nce-id: i\nce-source: /s\nce-type: t\nce-time: 2020-01-01T00:00:00Z\nContent-Type: text/plain"), []byte("hi"))
	f.Add([]byte("ce-specversion: 1.0\nCe-Id: %zz\nce-id: a"), []byte("\xff"))
	f.Add([]byte("Content-Type: bad type"), []byte("\x00\xff"))
	d := decoder{stream: "S", typ: DefaultType, source: "nats://h/S"}
	f.Fuzz(func(t *testing.T, hdr, data []byte) {
		ev := d.decode(record{seq: 7, subject: "a.b", stored: time.Unix(1700000000, 0), header: headers(hdr), data: data})
		if err := cloudevent.Validate(ev); err != nil {
			t.Fatalf("invalid event: %v (%v)", err, ev)
		}
		if ev.GetType() == DefaultType && ev.GetSource() == "nats://h/S" {
			if ev.GetId() != "S:7" {
				t.Fatalf("wrapped id %q", ev.GetId())
			}
			if !bytes.Equal(cloudevent.Data(ev), data) {
				t.Fatalf("data %q, want %q", cloudevent.Data(ev), data)
			}
		}
	})
}
