// Package amqp is the `amqp` source: it consumes one RabbitMQ (AMQP 0-9-1)
// queue with manual acknowledgements and turns every message into a
// CloudEvent.
//
// # Delivery
//
// The consumer runs with a prefetch window (basic.qos) and acknowledges a
// delivery with basic.ack (Ack(tag, multiple=false)) only once its event is
// durable in Switchyard. A refused event is negatively acknowledged with
// requeue (basic.nack requeue=true), so RabbitMQ delivers it again; and every
// delivery that is not acknowledged when the connection or channel goes away
// (a crash, a network failure, a stop) is requeued by the broker itself.
// Delivery is therefore at least once.
//
// # Event ids
//
// Delivery tags are per channel and change on every redelivery, so they are
// never used. The event id is, in order: the id of the CloudEvent when the
// message is one (binary or structured mode, see below); the AMQP
// `message-id` property when the producer set it; otherwise the hex SHA-256
// of the message's content — queue, exchange, routing key, the properties a
// producer sets (content type and encoding, correlation id, reply-to, type,
// app id, user id, timestamp), the headers (without those RabbitMQ adds on
// redelivery or dead-lettering: x-delivery-count, x-death, x-first-death-*,
// x-last-death-*) and the body. RabbitMQ never changes a message's content
// when it requeues it, so without message ids a redelivered message keeps its
// id only because its content is the same; and two messages with identical
// content (the same body published twice with no message id or timestamp)
// get the same id. Producers that want distinct ids set `message-id`.
//
// # CloudEvents
//
// Messages that already are CloudEvents (the CloudEvents AMQP protocol
// binding) are taken as they are: binary mode carries the attributes in
// application properties — here, message headers — named `cloudEvents:`
// + attribute (or `cloudEvents_` + attribute, the variant for JMS-style
// property names), with datacontenttype in the content-type property and the
// data in the body; structured mode is a body in the JSON event format with
// content type `application/cloudevents+json`. A message that claims to be a
// CloudEvent but is not a valid one is wrapped like any other message (and
// logged), so that it is never lost and never blocks the queue.
//
// # Why amqp091-go and not watermill-amqp
//
// watermill-amqp/v3 (v3.0.2) was evaluated: its subscriber hands a message
// to the consumer and then waits for that message's ack or nack before it
// hands over the next one, so at most one message per subscription is ever
// in flight — the Runner's batches would shrink to one message each, with
// a pause of BatchWait between them; its marshaler rebuilds the message from
// a watermill UUID header and drops the AMQP properties this source needs
// (message-id, content-type, timestamp, exchange and routing key); it runs
// its own reconnect loop, which the Runner already provides; and it pulls in
// an old backoff/v3 and amqp091-go v1.10. The source therefore uses
// github.com/rabbitmq/amqp091-go directly: one connection and one channel
// per Connect, basic.qos for the prefetch window, basic.consume without
// auto-ack, and per-delivery ack/nack bound to the channel the delivery came
// from (an ack for a delivery of a closed channel fails harmlessly instead
// of acknowledging another message with a reused delivery tag).
package amqp

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Kind is the connector's name in configuration.
const Kind = "amqp"

// Field names.
const (
	fieldURL         = "url"
	fieldQueue       = "queue"
	fieldDeclare     = "declare"
	fieldBindings    = "bindings"
	fieldPrefetch    = "prefetch"
	fieldConsumerTag = "consumer_tag"
	fieldType        = "type"
	fieldSource      = "source"
)

// DefaultType is the CloudEvent type of wrapped messages.
const DefaultType = "com.switchyard.amqp.message"

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    Kind,
		Summary: "Consumes a RabbitMQ (AMQP 0-9-1) queue with manual acknowledgements; each message becomes a CloudEvent.",
		Description: `A message is acknowledged (basic.ack) only once its event is durable in Switchyard; a refused
event is negatively acknowledged with requeue, and whatever is unacknowledged when the connection drops
is requeued by RabbitMQ, so delivery is at least once. Messages that already are CloudEvents (AMQP
protocol binding: binary mode with ` + "`cloudEvents:`" + ` or ` + "`cloudEvents_`" + ` headers, or structured
mode with content type ` + "`application/cloudevents+json`" + `) are taken as they are; anything else is
wrapped. Without a ` + "`message-id`" + ` property the event id is a hash of the message's content: a
redelivered message keeps its id because RabbitMQ never changes its content, and identical messages
share an id.`,
		Fields: []connectors.Field{
			{Name: fieldURL, Type: connectors.TypeString, Default: "amqp://guest:guest@127.0.0.1:5672/", Secret: true,
				Doc: "AMQP URI of the broker (amqp:// or amqps://, with credentials and virtual host).", Example: "amqps://switchyard:${RABBITMQ_PASSWORD}@rabbitmq.internal:5671/prod"},
			{Name: fieldQueue, Type: connectors.TypeString, Required: true, Doc: "Queue to consume.", Example: "orders"},
			{Name: fieldDeclare, Type: connectors.TypeBool, Default: false,
				Doc: "Declare the queue as durable if it does not exist (an existing queue is used as it is, whatever its arguments)."},
			{Name: fieldBindings, Type: connectors.TypeStringList,
				Doc: "Bindings to create on the queue, each `exchange:routing-key` (the routing key may contain ':'; `exchange` alone binds with an empty key). The exchanges must exist.", Example: "[\"orders:order.*\", \"audit\"]"},
			{Name: fieldPrefetch, Type: connectors.TypeInt, Default: 100,
				Doc: "Most unacknowledged messages RabbitMQ sends at a time (basic.qos prefetch count, 1–65535)."},
			{Name: fieldConsumerTag, Type: connectors.TypeString, Doc: "Consumer tag shown in RabbitMQ; default `switchyard-{source-name}`."},
			{Name: fieldType, Type: connectors.TypeString, Default: DefaultType, Doc: "CloudEvent type of wrapped messages."},
			{Name: fieldSource, Type: connectors.TypeString,
				Doc: "CloudEvent source of wrapped messages; default `amqp://{host}:{port}/{vhost}/{queue}` (escaped, without credentials).", Example: "https://shop.example.com/orders"},
		},
		Emits: connectors.EventDoc{
			ID:              "for a CloudEvent message its own id; else the `message-id` property; else the hex SHA-256 of queue, exchange, routing key, producer properties, headers and body (stable across redeliveries; identical messages share it)",
			Source:          "the `source` field, default `amqp://{host}:{port}/{vhost}/{queue}`",
			Type:            "the `type` field",
			Subject:         "the routing key the message was published with, when not empty",
			Time:            "the message's `timestamp` property when set, else when it was read",
			DataContentType: "the `content-type` property, when set",
			Data:            "the body, byte for byte: text_data when it is text (JSON, text/*, or valid UTF-8 without a content type), binary_data otherwise",
		},
		Confirms: connectors.ConfirmsUpstream,
		Loses:    "messages accepted but not yet delivered: they were acknowledged (basic.ack), so RabbitMQ has removed them from the queue",
		New:      New,
	})
}
