package s3notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Notification is a decoded S3 event notification.
type Notification struct {
	// Records are the notification's records, in order.
	Records []Record
	// Test is set for the s3:TestEvent AWS sends when a notification
	// configuration is saved; it has no records.
	Test bool
}

// Record is one S3 event record: the fields the CloudEvent mapping needs,
// and the record as received.
type Record struct {
	// Raw is the record's JSON, byte for byte as received.
	Raw json.RawMessage
	// EventSource ("aws:s3", "minio:s3"), AWSRegion, EventTime and EventName
	// ("ObjectCreated:Put", MinIO "s3:ObjectCreated:Put") are the record's
	// fields of those names.
	EventSource, AWSRegion, EventTime, EventName string
	// RequestID and HostID are responseElements.x-amz-request-id and
	// responseElements.x-amz-id-2.
	RequestID, HostID string
	// Bucket is s3.bucket.name; Key is s3.object.key as sent (URL-encoded).
	Bucket, Key string
	// ETag, VersionID and Sequencer are s3.object.eTag, .versionId and
	// .sequencer.
	ETag, VersionID, Sequencer string
}

// DecodeError is a malformed notification; its message names the offending
// field ("Records[2].s3.object.key: missing").
type DecodeError struct{ Msg string }

func (e *DecodeError) Error() string { return e.Msg }

func decodeErr(format string, args ...any) error {
	return &DecodeError{Msg: fmt.Sprintf(format, args...)}
}

// envelope is the top level: AWS's {"Records": [...]}, MinIO's
// {"EventName": ..., "Key": ..., "Records": [...]}, or AWS's test event
// {"Service": "Amazon S3", "Event": "s3:TestEvent", ...}.
type envelope struct {
	Records *[]json.RawMessage `json:"Records"`
	Event   json.RawMessage    `json:"Event"`
}

type wireRecord struct {
	EventSource      string `json:"eventSource"`
	AWSRegion        string `json:"awsRegion"`
	EventTime        string `json:"eventTime"`
	EventName        string `json:"eventName"`
	ResponseElements struct {
		RequestID string `json:"x-amz-request-id"`
		HostID    string `json:"x-amz-id-2"`
	} `json:"responseElements"`
	S3 *struct {
		Bucket *struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object *struct {
			Key       *string `json:"key"`
			ETag      string  `json:"eTag"`
			VersionID string  `json:"versionId"`
			Sequencer string  `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

// Decode parses an S3 event notification. Every record must have an
// eventName, s3.bucket.name and s3.object.key; the error says precisely what
// is wrong, naming the record and field.
func Decode(body []byte) (Notification, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return Notification{}, decodeErr("empty body: want an S3 event notification {\"Records\": [...]}")
	}
	if trimmed[0] != '{' {
		return Notification{}, decodeErr("the notification must be a JSON object {\"Records\": [...]}")
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Notification{}, jsonErr("", err)
	}
	if env.Records == nil {
		var ev string
		if json.Unmarshal(env.Event, &ev) == nil && ev == "s3:TestEvent" {
			return Notification{Test: true}, nil
		}
		return Notification{}, decodeErr("Records: missing: want an S3 event notification {\"Records\": [...]}")
	}
	n := Notification{Records: make([]Record, 0, len(*env.Records))}
	for i, raw := range *env.Records {
		r, err := decodeRecord(i, raw)
		if err != nil {
			return Notification{}, err
		}
		n.Records = append(n.Records, r)
	}
	return n, nil
}

func decodeRecord(i int, raw json.RawMessage) (Record, error) {
	at := fmt.Sprintf("Records[%d]", i)
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Record{}, decodeErr("%s: want a JSON object, got %s", at, jsonKind(t))
	}
	var w wireRecord
	if err := json.Unmarshal(raw, &w); err != nil {
		return Record{}, jsonErr(at, err)
	}
	switch {
	case w.EventName == "":
		return Record{}, decodeErr("%s.eventName: missing", at)
	case w.S3 == nil:
		return Record{}, decodeErr("%s.s3: missing", at)
	case w.S3.Bucket == nil || w.S3.Bucket.Name == "":
		return Record{}, decodeErr("%s.s3.bucket.name: missing", at)
	case w.S3.Object == nil || w.S3.Object.Key == nil:
		return Record{}, decodeErr("%s.s3.object.key: missing", at)
	}
	o := w.S3.Object
	return Record{
		Raw:         raw,
		EventSource: w.EventSource, AWSRegion: w.AWSRegion, EventTime: w.EventTime, EventName: w.EventName,
		RequestID: w.ResponseElements.RequestID, HostID: w.ResponseElements.HostID,
		Bucket: w.S3.Bucket.Name, Key: *o.Key,
		ETag: o.ETag, VersionID: o.VersionID, Sequencer: o.Sequencer,
	}, nil
}

// jsonErr renders an encoding/json error with the path of the offending
// field under at.
func jsonErr(at string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return decodeErr("invalid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		if at != "" {
			field = at + "." + field
		}
		return decodeErr("%s: want a %s, got a JSON %s", field, jsonType(te), te.Value)
	}
	return decodeErr("invalid JSON: %v", err)
}

func jsonType(te *json.UnmarshalTypeError) string {
	if te.Type == nil {
		return "value"
	}
	switch te.Type.Kind().String() {
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	case "ptr":
		return jsonKindOfType(te.Type.Elem().Kind().String())
	}
	return te.Type.String()
}

func jsonKindOfType(k string) string {
	switch k {
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	}
	return k
}

func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
