package s3notify_test

import (
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors/s3notify"
)

// awsNotification is shaped like the S3 event message structure 2.1.
const awsNotification = `{"Records":[{
  "eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-3",
  "eventTime":"2025-03-04T05:06:07.089Z","eventName":"ObjectCreated:Put",
  "userIdentity":{"principalId":"AWS:EXAMPLE"},
  "requestParameters":{"sourceIPAddress":"203.0.113.9"},
  "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
  "s3":{"s3SchemaVersion":"1.0","configurationId":"cfg",
    "bucket":{"name":"photos","ownerIdentity":{"principalId":"EXAMPLE"},"arn":"arn:aws:s3:::photos"},
    "object":{"key":"2025/red+flower.jpg","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e","sequencer":"0055AED6DCD90281E5"}}}]}`

// minioNotification is MinIO's webhook envelope.
const minioNotification = `{"EventName":"s3:ObjectRemoved:Delete","Key":"docs/a%2Fb.txt","Records":[{
  "eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2025-03-04T05:06:07.5Z",
  "eventName":"s3:ObjectRemoved:Delete","userIdentity":{"principalId":"minioadmin"},
  "responseElements":{"x-amz-id-2":"dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8","x-amz-request-id":"1827F7AB3D2E6C7A","x-minio-origin-endpoint":"http://127.0.0.1:9000"},
  "s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"docs","arn":"arn:aws:s3:::docs"},
    "object":{"key":"a%2Fb.txt","sequencer":"1827F7AB3D39A1A0"}}}]}`

func TestDecodeAWS(t *testing.T) {
	n, err := s3notify.Decode([]byte(awsNotification))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Records) != 1 || n.Test {
		t.Fatalf("got %+v", n)
	}
	evs := s3notify.Events(n, true)
	ev := evs[0]
	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("id", ev.GetId(), "C3D13FE58DE4C810.FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD")
	check("source", ev.GetSource(), "aws:s3.eu-west-3.photos")
	check("type", ev.GetType(), "com.amazonaws.s3.ObjectCreated:Put")
	sub, _ := cloudevent.Attribute(ev, "subject")
	check("subject", sub, "2025/red flower.jpg")
	tm, _ := cloudevent.Attribute(ev, "time")
	check("time", tm, "2025-03-04T05:06:07.089Z")
	ct, _ := cloudevent.Attribute(ev, "datacontenttype")
	check("datacontenttype", ct, "application/json")
	if !strings.HasPrefix(ev.GetTextData(), `{`) || !strings.Contains(ev.GetTextData(), `"userIdentity":{"principalId":"AWS:EXAMPLE"}`) {
		t.Errorf("data is not the record: %s", ev.GetTextData())
	}
	if err := cloudevent.Validate(ev); err != nil {
		t.Error(err)
	}
	// Without decoding the subject is the key as sent.
	raw := s3notify.Events(n, false)[0]
	if s, _ := cloudevent.Attribute(raw, "subject"); s != "2025/red+flower.jpg" {
		t.Errorf("undecoded subject %q", s)
	}
}

func TestDecodeMinIO(t *testing.T) {
	n, err := s3notify.Decode([]byte(minioNotification))
	if err != nil {
		t.Fatal(err)
	}
	ev := s3notify.Events(n, true)[0]
	if ev.GetType() != "com.amazonaws.s3.ObjectRemoved:Delete" {
		t.Errorf("type %q", ev.GetType())
	}
	if ev.GetSource() != "minio:s3..docs" {
		t.Errorf("source %q", ev.GetSource())
	}
	if s, _ := cloudevent.Attribute(ev, "subject"); s != "a/b.txt" {
		t.Errorf("subject %q", s)
	}
	if ev.GetId() != "1827F7AB3D2E6C7A.dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8" {
		t.Errorf("id %q", ev.GetId())
	}
}

func TestDecodeTestEvent(t *testing.T) {
	n, err := s3notify.Decode([]byte(`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-03-04T05:06:07.000Z","Bucket":"photos","RequestId":"X","HostId":"Y"}`))
	if err != nil || !n.Test || len(n.Records) != 0 {
		t.Fatalf("got %+v, %v", n, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	rec := func(s3 string) string {
		return `{"Records":[{"eventName":"ObjectCreated:Put","s3":` + s3 + `}]}`
	}
	cases := map[string]struct{ body, want string }{
		"empty":              {"  ", "empty body"},
		"not an object":      {`[1]`, "must be a JSON object"},
		"syntax":             {`{"Records":[}`, "invalid JSON at byte 13"},
		"trailing":           {`{"Records":[]} x`, "invalid JSON at byte"},
		"no records":         {`{"Event":"s3:Other"}`, "Records: missing"},
		"records not array":  {`{"Records":{"a":1}}`, "Records: want a"},
		"record not object":  {`{"Records":[{"eventName":"x","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}},7]}`, "Records[1]: want a JSON object, got a number"},
		"null record":        {`{"Records":[null]}`, "Records[0]: want a JSON object, got null"},
		"no event name":      {`{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`, "Records[0].eventName: missing"},
		"no s3":              {`{"Records":[{"eventName":"x"}]}`, "Records[0].s3: missing"},
		"no bucket":          {rec(`{"object":{"key":"k"}}`), "Records[0].s3.bucket.name: missing"},
		"empty bucket":       {rec(`{"bucket":{"name":""},"object":{"key":"k"}}`), "Records[0].s3.bucket.name: missing"},
		"no key":             {rec(`{"bucket":{"name":"b"},"object":{}}`), "Records[0].s3.object.key: missing"},
		"key not string":     {rec(`{"bucket":{"name":"b"},"object":{"key":5}}`), "Records[0].s3.object.key: want a string, got a JSON number"},
		"event name number":  {`{"Records":[{"eventName":1}]}`, "Records[0].eventName: want a string, got a JSON number"},
		"response not obj":   {`{"Records":[{"eventName":"x","responseElements":"r"}]}`, "Records[0].responseElements: want a"},
		"bucket name object": {rec(`{"bucket":{"name":{}},"object":{"key":"k"}}`), "Records[0].s3.bucket.name: want a string, got a JSON object"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s3notify.Decode([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestEventsEdgeCases(t *testing.T) {
	// A multi-object delete: one request, several records with the same ids.
	body := `{"Records":[` +
		`{"eventSource":"aws:s3","awsRegion":"us-east-1","eventName":"ObjectRemoved:Delete","responseElements":{"x-amz-request-id":"R","x-amz-id-2":"H"},"s3":{"bucket":{"name":"b"},"object":{"key":"one","sequencer":"01"}}},` +
		`{"eventSource":"aws:s3","awsRegion":"us-east-1","eventName":"ObjectRemoved:Delete","responseElements":{"x-amz-request-id":"R","x-amz-id-2":"H"},"s3":{"bucket":{"name":"b"},"object":{"key":"two","sequencer":"02"}}},` +
		`{"eventSource":"aws:s3","awsRegion":"us-east-1","eventName":"ObjectRemoved:Delete","responseElements":{"x-amz-request-id":"R","x-amz-id-2":"H"},"s3":{"bucket":{"name":"b"},"object":{"key":"two","sequencer":"02"}}},` +
		// No responseElements: a hash, stable across deliveries.
		`{"eventSource":"ceph:s3","eventName":"ObjectCreated:Put","eventTime":"not a time","s3":{"bucket":{"name":"b"},"object":{"key":"three","eTag":"e"}}},` +
		// Control characters in the key and a source that is no URI.
		`{"eventSource":"we ird","awsRegion":"x","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%0Ab"}}}` +
		`]}`
	n, err := s3notify.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	evs := s3notify.Events(n, true)
	ids := map[string]bool{}
	for i, ev := range evs {
		if err := cloudevent.Validate(ev); err != nil {
			t.Errorf("event %d invalid: %v", i, err)
		}
		if ids[ev.GetId()] {
			t.Errorf("id %q twice", ev.GetId())
		}
		ids[ev.GetId()] = true
	}
	if evs[0].GetId() != "R.H" || !strings.HasPrefix(evs[1].GetId(), "R.H.") {
		t.Errorf("ids %q %q", evs[0].GetId(), evs[1].GetId())
	}
	if !strings.HasPrefix(evs[3].GetId(), "s3-") {
		t.Errorf("fallback id %q", evs[3].GetId())
	}
	if _, ok := cloudevent.Attribute(evs[3], "time"); ok {
		t.Error("an unparsable eventTime gave a time")
	}
	if s, _ := cloudevent.Attribute(evs[4], "subject"); s != "a%0Ab" {
		t.Errorf("subject with a control character: %q", s)
	}
	if evs[4].GetSource() != "we%20ird.x.b" {
		t.Errorf("source %q", evs[4].GetSource())
	}
	again := s3notify.Events(n, true)
	for i := range evs {
		if again[i].GetId() != evs[i].GetId() {
			t.Errorf("event %d: id not deterministic: %q, %q", i, evs[i].GetId(), again[i].GetId())
		}
	}
}

func FuzzDecodeNotification(f *testing.F) {
	f.Add([]byte(awsNotification))
	f.Add([]byte(minioNotification))
	f.Add([]byte(`{"Records":[]}`))
	f.Add([]byte(`{"Event":"s3:TestEvent"}`))
	f.Add([]byte(`{"Records":[{"eventName":"\u0001","eventSource":"\u00ff:","s3":{"bucket":{"name":"%"},"object":{"key":"%ZZ\u0000"}},"eventTime":"0000-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := s3notify.Decode(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for _, decode := range []bool{true, false} {
			evs := s3notify.Events(n, decode)
			if len(evs) != len(n.Records) {
				t.Fatalf("%d records, %d events", len(n.Records), len(evs))
			}
			ids := map[string]bool{}
			for i, ev := range evs {
				if err := cloudevent.Validate(ev); err != nil {
					t.Fatalf("record %d maps to an invalid event %v: %v", i, ev, err)
				}
				if ids[ev.GetId()] {
					t.Fatalf("id %q twice", ev.GetId())
				}
				ids[ev.GetId()] = true
				if string(cloudevent.Data(ev)) != string(n.Records[i].Raw) {
					t.Fatalf("data is not the record")
				}
			}
		}
	})
}
