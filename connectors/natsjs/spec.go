// Package natsjs is the `nats_jetstream` source: a durable pull consumer on
// a NATS JetStream stream. Each message becomes a CloudEvent; it is acked
// (msg.Ack) only once the event is durable in Switchyard and negatively
// acked when Switchyard did not take it, so JetStream redelivers it a second
// later. Messages never answered (a crash) are redelivered after ack_wait.
//
// Nak uses a one-second delay on purpose. nats-server before 2.10 keeps a
// pull request of a subscription that has gone until the request expires,
// and a message redelivered to it is only redelivered again after ack_wait.
// The runner refuses messages when it stops, just before Close ends the
// connection (which removes its pull requests); the delay lets that happen
// first. Close also gives back, the same way, the messages pulled but not
// handed over, so the next start gets them within a second.
//
// # Why nats.go/jetstream directly and not watermill-nats
//
// watermill-nats/v2 v2.2.0's JetStream subscriber (pkg/jetstream, which its
// authors call experimental) hands over one message per Consume callback and
// blocks the callback until that message is acked, so a single message is in
// flight: the runner's batches would hold one event each. Its stream naming
// ties the stream to the topic name and it cannot bind a durable consumer to
// an existing stream with several subjects. An unmarshal error is logged and
// the nil message is used anyway, and on close messages are dropped without
// a Nak, so they wait out ack_wait. The connector needs little beyond
// CreateOrUpdateConsumer, a Messages iterator, Ack and Nak, which nats.go's
// jetstream package gives directly.
package natsjs

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldURL            = "url"
	fieldStream         = "stream"
	fieldSubjects       = "subjects"
	fieldCreateStream   = "create_stream"
	fieldFilterSubjects = "filter_subjects"
	fieldDurable        = "durable"
	fieldAckWait        = "ack_wait"
	fieldDeliverPolicy  = "deliver_policy"
	fieldMaxAckPending  = "max_ack_pending"
	fieldType           = "type"
	fieldSource         = "source"
)

// DefaultType is the type of wrapped messages.
const DefaultType = "com.switchyard.nats_jetstream.message"

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    "nats_jetstream",
		Summary: "Consumes a NATS JetStream stream through a durable pull consumer; each message becomes a CloudEvent, acked once durable.",
		Description: `Binds (creating or updating) a durable pull consumer with explicit acks on the stream, and acks each
message only once its event is stored in Switchyard; a message Switchyard did not take is Nak'ed with a one-second
delay and redelivered, and one never answered (a crash) is redelivered by JetStream after ` + "`ack_wait`" + `, so
delivery is at-least-once with the same event id. Messages already pulled but not handed over when the source
stops are given back the same way, so the next start gets them within a second. With ` + "`create_stream: true`" + ` a missing stream is
created with ` + "`subjects`" + `.

A message that already is a CloudEvent (NATS protocol binding) is taken as is: binary mode, one ` + "`ce-`" + `
header per attribute (percent-decoded), ` + "`Content-Type`" + ` as datacontenttype and the payload as data; structured
mode, ` + "`Content-Type: application/cloudevents+json`" + `, or a payload in the JSON event format with no
Content-Type (binding 1.0.2, before NATS had headers). Any other message (including an invalid CloudEvent) is
wrapped with the payload as data, byte for byte.`,
		Fields: []connectors.Field{
			{Name: fieldURL, Type: connectors.TypeString, Default: "nats://127.0.0.1:4222", Doc: "NATS server URL(s), comma-separated; credentials may be given in the URL (use ${VAR}).", Example: "nats://nats-1:4222,nats://nats-2:4222"},
			{Name: fieldStream, Type: connectors.TypeString, Required: true, Doc: "JetStream stream to consume.", Example: "ORDERS"},
			{Name: fieldSubjects, Type: connectors.TypeStringList, Doc: "Subjects of the stream when `create_stream` creates it; default the stream name.", Example: "[orders.>]"},
			{Name: fieldCreateStream, Type: connectors.TypeBool, Default: false, Doc: "Create the stream (file storage, limits retention) when it does not exist; otherwise a missing stream is an error."},
			{Name: fieldFilterSubjects, Type: connectors.TypeStringList, Doc: "Consume only messages on these subjects (wildcards allowed; more than one needs nats-server 2.10+); default every subject of the stream.", Example: "[orders.created, orders.paid]"},
			{Name: fieldDurable, Type: connectors.TypeString, Doc: "Durable consumer name; default `switchyard-{source-name}`. Servers running the same source share the consumer and split the messages."},
			{Name: fieldAckWait, Type: connectors.TypeDuration, Default: "30s", Doc: "How long JetStream waits for an ack before redelivering; keep it above the longest time Switchyard may push back."},
			{Name: fieldDeliverPolicy, Type: connectors.TypeString, Default: "all", Doc: "Where a newly created consumer starts: `all` (the whole stream) or `new` (messages stored from now on). Cannot be changed on an existing consumer."},
			{Name: fieldMaxAckPending, Type: connectors.TypeInt, Default: 1000, Doc: "Most messages delivered and not yet acked at once."},
			{Name: fieldType, Type: connectors.TypeString, Default: DefaultType, Doc: "CloudEvent type of wrapped messages."},
			{Name: fieldSource, Type: connectors.TypeString, Doc: "CloudEvent source of wrapped messages; default `nats://{first server host}/{stream}`."},
		},
		Emits: connectors.EventDoc{
			ID:              "`{stream}:{stream sequence}` (e.g. `ORDERS:42`); messages that are CloudEvents keep their own id",
			Source:          "the `source` field, default `nats://{host:port}/{stream}`",
			Type:            "the `type` field, default `" + DefaultType + "`",
			Subject:         "the message's NATS subject",
			Time:            "when JetStream stored the message",
			DataContentType: "the `Content-Type` header; without one, application/json for JSON, text/plain; charset=utf-8 for other UTF-8 text, else application/octet-stream",
			Data:            "the payload, byte for byte (text_data when UTF-8, else binary_data)",
		},
		Confirms: connectors.ConfirmsUpstream,
		Loses:    "messages accepted but not yet delivered: they were acknowledged, so the durable consumer does not deliver them again",
		New:      New,
	})
}
