// Package s3notify is the `s3_notifications` source: AWS S3 / MinIO bucket
// notifications POSTed to /s3/{source-name} on Switchyard's HTTP listener
// become CloudEvents, one per record, following the CloudEvents AWS S3
// adapter mapping. A notification is answered 200 only once every one of its
// records is durable, so the sender's retries give at-least-once delivery.
package s3notify

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldToken        = "token"
	fieldTokenHeader  = "token_header"
	fieldInsecure     = "insecure"
	fieldDecodeKeys   = "decode_keys"
	fieldMaxBodyBytes = "max_body_bytes"
	fieldTimeout      = "timeout"
)

// TypePrefix starts the type of every event: the adapter's
// `com.amazonaws.s3.` followed by the record's eventName.
const TypePrefix = "com.amazonaws.s3."

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    "s3_notifications",
		Summary: "Receives AWS S3 / MinIO bucket notifications at POST /s3/{source-name}, one CloudEvent per record.",
		Description: `Point a bucket's webhook notification target (MinIO ` + "`notify_webhook`" + `, Ceph, or a
forwarder of AWS S3 events) at ` + "`POST /s3/{source-name}`" + `. The body is an S3 event notification
(` + "`{\"Records\":[...]}`" + `, also MinIO's envelope with ` + "`EventName`" + ` and ` + "`Key`" + `); every record becomes
one CloudEvent mapped as the CloudEvents AWS S3 adapter specifies. All records of a notification are
handed over together and the request is answered 200 only once every one is durable; 503 (with
Retry-After) when any could not be stored, so the sender retries the whole notification (records
already stored come again with the same ids). Malformed notifications get 400 naming the offending
field. The ` + "`s3:TestEvent`" + ` AWS sends when a configuration is saved is answered 200 and stores nothing.
Requests must carry the token in the token header (the bare token or ` + "`Bearer <token>`" + `,
compared in constant time), else 401. A source without a token refuses to start unless it says
` + "`insecure: true`" + ` (anyone who can reach the endpoint may then post notifications).`,
		Fields: []connectors.Field{
			{Name: fieldToken, Type: connectors.TypeString, Secret: true, Doc: "Shared secret every request must carry in the token header; required unless insecure is set.", Example: "${S3_NOTIFY_TOKEN}"},
			{Name: fieldInsecure, Type: connectors.TypeBool, Default: false, Doc: "Accept requests without a token from anyone who can reach the endpoint (only without a token); logged as a warning at start."},
			{Name: fieldTokenHeader, Type: connectors.TypeString, Default: "Authorization", Doc: "Header carrying the token, as the bare token or `Bearer <token>` (MinIO's `auth_token` uses Authorization)."},
			{Name: fieldDecodeKeys, Type: connectors.TypeBool, Default: true, Doc: "URL-decode object keys for the subject (S3 and MinIO send them form-encoded: `a+b%2Fc` is `a b/c`); the data keeps the record as received."},
			{Name: fieldMaxBodyBytes, Type: connectors.TypeInt, Default: 4 << 20, Doc: "Largest accepted notification; larger ones get 413."},
			{Name: fieldTimeout, Type: connectors.TypeDuration, Default: "30s", Doc: "How long a request waits for its records to be stored before 503."},
		},
		Emits: connectors.EventDoc{
			ID: "`responseElements.x-amz-request-id` + `.` + `responseElements.x-amz-id-2`; when those are missing, `s3-` + hex SHA-256 of the record's " +
				"event name, bucket, key, version id, sequencer, ETag and event time. A record whose id repeats one of an earlier record of the same " +
				"notification (a multi-object delete) gets `.` + a short hash of its key, version and sequencer appended",
			Source:          "`eventSource` + `.` + `awsRegion` + `.` + `s3.bucket.name` (e.g. `aws:s3.us-east-1.photos`, `minio:s3..photos`); percent-encoded if that is not a URI-reference",
			Type:            "`com.amazonaws.s3.` + `eventName`, MinIO's `s3:` prefix removed (e.g. `com.amazonaws.s3.ObjectCreated:Put`, `com.amazonaws.s3.ObjectRemoved:Delete`)",
			Subject:         "`s3.object.key`, URL-decoded unless `decode_keys` is false",
			Time:            "`eventTime` (omitted when absent or not RFC 3339)",
			DataContentType: "`application/json`",
			Data:            "the notification record (one element of `Records`), byte for byte",
		},
		Confirms: connectors.ConfirmsCaller,
		Loses:    "notifications answered 200 whose events were not yet delivered: the bucket does not send them again",
		New:      New,
	})
}
