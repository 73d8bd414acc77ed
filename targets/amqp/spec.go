// Package amqp is the `amqp` target: each event is published to a RabbitMQ
// (AMQP 0-9-1) exchange with a routing key, in the CloudEvents AMQP
// binding's binary mode (a `cloudEvents:` application property per
// attribute, content-type for datacontenttype, the data as the body), which
// the `amqp` source reads back as the same CloudEvent. The event counts as
// delivered once RabbitMQ confirmed it (publisher confirms) and did not
// return it as unroutable.
//
// # Why amqp091-go and not watermill-amqp
//
// watermill-amqp/v3 (v3.0.2) was read against this contract and falls
// short where it matters (its publisher.go, channelprovider.go and
// connection.go):
//
//   - It ignores basic.return: a mandatory message that no queue receives
//     is returned by RabbitMQ and then confirmed, and watermill reports it
//     delivered. The event would be gone.
//   - It waits for a publisher confirm on an unbuffered receive with no
//     deadline, and when the channel is closed under it (an exchange that
//     does not exist: 404 NOT_FOUND; an ACCESS_REFUSED) it reports only
//     "delivery not confirmed", so the reason needed to dead-letter rather
//     than retry is lost.
//   - Its default topology builder declares the exchange on first publish,
//     so a misspelled exchange is created instead of refused.
//   - Its reconnect goroutine replaces the `connected` channel that Publish
//     reads without synchronization (a data race under a broker restart).
//
// The publisher therefore uses github.com/rabbitmq/amqp091-go directly:
// one connection per broker address and credentials (dialed through the
// egress guard, redialed when lost), channels in confirm mode taken from a
// pool one publish at a time, so that a basic.return and the channel's
// close reason belong to that publish; PublishWithDeferredConfirm and
// WaitContext bound the wait by the attempt's deadline.
package amqp

import (
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/targets"
)

// Kind names the target in triggers.
const Kind = "amqp"

// Field names.
const (
	fieldURL                 = "url"
	fieldUser                = "user"
	fieldPasswordSecret      = "password_secret"
	fieldExchange            = "exchange"
	fieldRoutingKey          = "routing_key"
	fieldRoutingKeyAttribute = "routing_key_attribute"
	fieldMandatory           = "mandatory"
	fieldPersistent          = "persistent"
)

// attrPrefix starts the application properties of the binary mode.
const attrPrefix = "cloudEvents:"

func init() {
	targets.MustRegister(targets.Spec{
		Kind:    Kind,
		Summary: "Publishes each event to a RabbitMQ exchange in the AMQP binding's binary mode; delivered once RabbitMQ confirmed it (publisher confirms) and routed it.",
		Description: `The exchange must exist: a publish to a missing one is refused by RabbitMQ (404) and the event is
dead-lettered (` + "`BROKER_NOT_FOUND`" + `). With ` + "`mandatory`" + ` (the default) a message that no queue receives is
returned by RabbitMQ and the event dead-lettered too, rather than silently dropped. The connection is shared by
every trigger aimed at the same broker with the same credentials, and dialed again when it is lost; attempts
meanwhile fail as ` + "`BROKER_UNREACHABLE`" + ` and are retried.`,
		Fields: []connectors.Field{
			{Name: fieldURL, Type: connectors.TypeString, Default: "amqp://127.0.0.1:5672/", Doc: "AMQP URI of the broker, `amqp://host:port/vhost` or `amqps://` for TLS (the server's target CA, else the system roots), without credentials.", Example: "amqps://rabbitmq.internal:5671/shop"},
			{Name: fieldUser, Type: connectors.TypeString, Doc: "User name; without one, RabbitMQ's default guest (which it accepts from loopback only)."},
			{Name: fieldPasswordSecret, Type: connectors.TypeSecretName, Doc: "Secret holding the user's password.", Example: "rabbitmq-password"},
			{Name: fieldExchange, Type: connectors.TypeString, Required: true, Doc: "Exchange to publish to; it must exist. `\"\"` is the default exchange, which routes to the queue named by the routing key.", Example: "orders"},
			{Name: fieldRoutingKey, Type: connectors.TypeString, Default: "", Doc: "Routing key of every message.", Example: "order.created"},
			{Name: fieldRoutingKeyAttribute, Type: connectors.TypeString, Doc: "Take the routing key from this attribute of the event (e.g. `type` or `subject`) when it has one; `routing_key` otherwise."},
			{Name: fieldMandatory, Type: connectors.TypeBool, Default: true, Doc: "Publish as mandatory: a message no queue receives is returned and the event dead-lettered (`BROKER_NOT_FOUND`) instead of dropped by RabbitMQ."},
			{Name: fieldPersistent, Type: connectors.TypeBool, Default: true, Doc: "Delivery mode 2 (persistent): durable queues keep the message across a broker restart."},
		},
		Layout: `CloudEvents AMQP protocol binding, binary content mode:

| AMQP message | holds |
|---|---|
| exchange, routing key | the ` + "`exchange`" + ` field; ` + "`routing_key`" + ` or the attribute ` + "`routing_key_attribute`" + ` names |
| application property ` + "`cloudEvents:id`, `cloudEvents:source`, `cloudEvents:specversion`, `cloudEvents:type`" + ` | the required attributes (strings) |
| application property ` + "`cloudEvents:<name>`" + ` | every other attribute and extension: booleans as AMQP booleans, integers as 32-bit integers, binary as AMQP byte arrays, everything else as its canonical string, timestamps included (an AMQP timestamp holds whole seconds only, and the string keeps the event's precision) |
| ` + "`content-type`" + ` property | datacontenttype, when the event has one |
| ` + "`message-id`" + ` property | the event's id |
| ` + "`delivery-mode`" + ` | 2 (persistent) with ` + "`persistent`" + ` |
| body | the data, byte for byte |`,
		ReadBack: "the `amqp` source",
		Confirms: "A publisher confirm (basic.ack) on a channel in confirm mode, with no basic.return before it: RabbitMQ routed the message and, for durable queues and persistent messages, wrote it to disk. A basic.nack or a closed channel is a failed attempt.",
		Check:    check,
		Addresses: func(c targets.Config) []targets.Address {
			return []targets.Address{{Field: fieldURL, HostPort: hostPort(c.String(fieldURL))}}
		},
		Secure:  func(c targets.Config) bool { return scheme(c.String(fieldURL)) == "amqps" },
		Display: display,
		New:     New,
	})
}
