// Package natsjs is the `nats_jetstream` target: each event is published
// to a subject that a JetStream stream captures, in the NATS protocol
// binding's binary mode (a `ce-` header per attribute, percent-encoded;
// Content-Type for datacontenttype; the data as the payload), which the
// `nats_jetstream` source reads back as the same CloudEvent. The event
// counts as delivered once JetStream answered with a PubAck: the stream
// stored it. The Nats-Msg-Id header carries a hash of the event's source
// and id, so JetStream drops a copy that a retry sends within the stream's
// duplicate window.
//
// # Built on watermill-nats
//
// The publisher is watermill-nats/v2's pkg/nats Publisher with JetStream
// on (its authors recommend it over the experimental pkg/jetstream, whose
// publisher cannot take a marshaler), on a connection made here (the egress
// guard dials it, credentials come from secrets) and with a Marshaler that
// writes the binding's headers instead of Watermill's uuid header. It
// publishes with the legacy JetStream context's PublishMsg, which waits
// for the PubAck up to the AckWait publish option but takes no context: a
// publish is therefore bounded by `ack_wait`, and an attempt whose deadline
// comes first returns a timeout while that publish finishes in its own
// goroutine (counted, and waited for on Close). Its error for a subject no
// stream captures ("no response from stream") is also what a JetStream that
// is not up yet answers, so the publisher asks the JetStream API which
// stream captures the subject before it calls the subject unknown.
package natsjs

import (
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/targets"
)

// Kind names the target in triggers.
const Kind = "nats_jetstream"

// Field names.
const (
	fieldURL            = "url"
	fieldUser           = "user"
	fieldPasswordSecret = "password_secret"
	fieldTokenSecret    = "token_secret"
	fieldSubject        = "subject"
	fieldAckWait        = "ack_wait"
	fieldDeduplicate    = "deduplicate"
)

// Binding names (NATS protocol binding, binary mode).
const (
	attrPrefix        = "ce-"
	headerContentType = "Content-Type"
	headerMsgID       = "Nats-Msg-Id"
)

func init() {
	targets.MustRegister(targets.Spec{
		Kind:    Kind,
		Summary: "Publishes each event to a NATS JetStream subject in the NATS binding's binary mode; delivered once JetStream acknowledged it (PubAck).",
		Description: `A stream must capture the subject: JetStream answers a publish to a subject no stream captures
with no PubAck, and such an event is dead-lettered (` + "`BROKER_NOT_FOUND`" + `) rather than retried. The
connection is shared by every trigger aimed at the same server with the same credentials; it reconnects by
itself, and events published meanwhile wait for their PubAck until ` + "`ack_wait`" + ` (then they are retried).`,
		Fields: []connectors.Field{
			{Name: fieldURL, Type: connectors.TypeString, Default: "nats://127.0.0.1:4222", Doc: "NATS server URL(s), comma-separated, `nats://` or `tls://` (the server's target CA, else the system roots), without credentials.", Example: "nats://nats-1:4222,nats://nats-2:4222"},
			{Name: fieldUser, Type: connectors.TypeString, Doc: "User name, with `password_secret`."},
			{Name: fieldPasswordSecret, Type: connectors.TypeSecretName, Doc: "Secret holding the user's password."},
			{Name: fieldTokenSecret, Type: connectors.TypeSecretName, Doc: "Secret holding an authentication token (instead of a user and password)."},
			{Name: fieldSubject, Type: connectors.TypeString, Required: true, Doc: "Subject the events are published to (no wildcards); a stream must capture it.", Example: "orders.created"},
			{Name: fieldAckWait, Type: connectors.TypeDuration, Default: "5s", Doc: "Longest wait for JetStream's PubAck; the attempt's `delivery.timeout` bounds it too."},
			{Name: fieldDeduplicate, Type: connectors.TypeBool, Default: true, Doc: "Send `Nats-Msg-Id` (a hash of the event's source and id), so JetStream stores an event once within the stream's duplicate window even when an attempt is retried."},
		},
		Layout: `NATS protocol binding, binary content mode:

| NATS message | holds |
|---|---|
| subject | the ` + "`subject`" + ` field |
| header ` + "`ce-id`, `ce-source`, `ce-specversion`, `ce-type`" + ` | the required attributes |
| header ` + "`ce-<name>`" + ` | every other attribute and extension in its canonical string form, percent-encoded as the HTTP binding does (bytes outside printable ASCII, space, ` + "`\"`" + ` and ` + "`%`" + `) |
| header ` + "`Content-Type`" + ` | datacontenttype, when the event has one |
| header ` + "`Nats-Msg-Id`" + ` | with ` + "`deduplicate`" + `: hex of the SHA-256 of source, a zero byte and id (first 16 bytes) |
| payload | the data, byte for byte |`,
		ReadBack: "the `nats_jetstream` source",
		Confirms: "JetStream's PubAck: the stream stored the message (replicated as the stream's replicas say). A negative answer or none within `ack_wait` is a failed attempt.",
		Check:    check,
		Addresses: func(c targets.Config) []targets.Address {
			var out []targets.Address
			for _, u := range servers(c.String(fieldURL)) {
				out = append(out, targets.Address{Field: fieldURL, HostPort: u.hostPort})
			}
			return out
		},
		Secure:  secure,
		Display: display,
		New:     New,
	})
}
