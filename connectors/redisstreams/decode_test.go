package redisstreams

import (
	"testing"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// fields splits fuzz input into entry fields: pairs separated by NUL.
func fields(b []byte) map[string]any {
	m := map[string]any{}
	var parts []string
	start := 0
	for i, c := range b {
		if c == 0 {
			parts = append(parts, string(b[start:i]))
			start = i + 1
		}
	}
	parts = append(parts, string(b[start:]))
	for i := 0; i+1 < len(parts); i += 2 {
		m[parts[i]] = parts[i+1]
	}
	return m
}

// FuzzDecodeEntry checks that every entry, whatever its fields, becomes a
// valid CloudEvent, and that a wrapped entry's id is the stream position.
func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte("a\x001\x00b\x002"))
	f.Add([]byte("cloudevent\x00{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/s\",\"type\":\"t\"}"))
	f.Add([]byte("ce_specversion\x001.0\x00ce_id\x00i\x00ce_source\x00/s\x00ce_type\x00t\x00data\x00\xff\x00content-type\x00application/json"))
	f.Add([]byte("ce_specversion\x001.0\x00ce_time\x00yesterday"))
	f.Add([]byte("payload\x00\xff\xfe\x00subject\x00a\nb\x00content-type\x00not a type"))
	decoders := []decoder{
		{stream: "s", typ: DefaultType, source: "redis://h/s"},
		{stream: "s", typ: DefaultType, source: "redis://h/s", dataField: "payload", subjectField: "subject"},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range decoders {
			vals := fields(b)
			ev := d.decode("1700000000000-1", vals)
			if err := cloudevent.Validate(ev); err != nil {
				t.Fatalf("invalid event from %q: %v (%v)", b, err, ev)
			}
			if ev.GetType() == DefaultType && ev.GetId() != "s:1700000000000-1" {
				t.Fatalf("wrapped event id %q", ev.GetId())
			}
			if d.dataField != "" && ev.GetType() == DefaultType {
				if got := string(cloudevent.Data(ev)); got != str(vals["payload"]) {
					t.Fatalf("data %q, want %q byte for byte", got, vals["payload"])
				}
			}
		}
	})
}
