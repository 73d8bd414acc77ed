package kafka

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// headers splits fuzz input into "name: value" lines.
func headers(b []byte) []kgo.RecordHeader {
	var h []kgo.RecordHeader
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(": "))
		if ok {
			h = append(h, kgo.RecordHeader{Key: string(k), Value: v})
		}
	}
	return h
}

// FuzzDecodeRecord checks that every record, whatever its headers, key and
// value, becomes a valid CloudEvent; a wrapped record keeps its value byte
// for byte and its position as id.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(""), []byte("k"), []byte(`{"a":1}`))
	f.Add([]byte("content-type: application/cloudevents+json"), []byte(""), []byte(`{"specversion":"1.0","id":"x","source":"/s","type":"t"}`))
	f.Add([]byte("ce_specversion: 1.0\nce_id: i\nce_source: /s\nce_type: t\nce_time: 2020-01-01T00:00:00Z\ncontent-type: text/plain"), []byte("\x00"), []byte("hi"))
	f.Add([]byte("ce_specversion: 1.0\nce_id: a\nCE_ID: b"), []byte("\xff"), []byte("\xff"))
	f.Add([]byte("content-type: bad type\nce_partitionkey: \x01"), []byte("a\nb"), []byte("\x00\xff"))
	d := decoder{typ: DefaultType, broker: "127.0.0.1:9092"}
	f.Fuzz(func(t *testing.T, hdr, key, value []byte) {
		r := &kgo.Record{Topic: "orders", Partition: 2, Offset: 9, Key: key, Value: value, Headers: headers(hdr), Timestamp: time.UnixMilli(1700000000000)}
		ev := d.decode(r)
		if err := cloudevent.Validate(ev); err != nil {
			t.Fatalf("invalid event: %v (%v)", err, ev)
		}
		if ev.GetType() == DefaultType && ev.GetSource() == "kafka://127.0.0.1:9092/orders" {
			if ev.GetId() != "orders-2-9" {
				t.Fatalf("wrapped id %q", ev.GetId())
			}
			if !bytes.Equal(cloudevent.Data(ev), value) {
				t.Fatalf("data %q, want %q", cloudevent.Data(ev), value)
			}
		}
	})
}
