// Package mqtt is the `mqtt` source: an MQTT 3.1.1 or MQTT 5 subscriber
// with a persistent session, QoS 1 (or 2) and manual acknowledgements; each
// message becomes a CloudEvent.
//
// # Persistent session
//
// The source connects with a fixed client id and Clean Session = 0 (MQTT
// 3.1.1) or Clean Start = 0 with a Session Expiry Interval (MQTT 5), so the
// broker keeps its subscriptions and queues the QoS 1/2 messages published
// while Switchyard is down, and sends them after the restart. The session
// exists once the source has connected for the first time: like any MQTT
// subscriber, it cannot receive what was published before. Brokers bound
// what they keep per session (Mosquitto: max_queued_messages, default 1000,
// and max_queued_bytes); raise those limits to cover the longest outage.
//
// # Acknowledgements, and the missing nack
//
// A message's PUBACK (PUBREC for QoS 2) is sent only once its event is
// durable in Switchyard — with paho.mqtt.golang (MQTT 3.1.1) through
// SetAutoAckDisabled(true) and Message.Ack, with paho.golang (MQTT 5)
// through EnableManualAcknowledgment and Client.Ack, which sends
// acknowledgements in the order the messages arrived, as MQTT requires.
// MQTT has no negative acknowledgement: when an event is refused the source
// drops the connection without acknowledging it (or anything after it), and
// the broker sends every unacknowledged message again when the source
// reconnects and resumes the session. The same happens after a crash.
// Delivery is therefore at least once.
//
// # Subscriptions
//
// On connect the source subscribes to its topic filters unless the broker
// resumed a session whose subscriptions, recorded in the source's
// checkpoint, are the configured ones: re-subscribing would make an MQTT
// 3.1.1 broker send the retained messages again. Filters removed from the
// configuration are unsubscribed. With MQTT 5 the subscriptions also use
// Retain Handling 1 (retained messages only for a new subscription).
//
// # Event ids
//
// MQTT 3.1.1 gives a message no identity beyond its packet identifier,
// which is per connection and reused, so it is useless as an event id. The
// id is therefore, in order: the id of the CloudEvent when the message is
// one; with MQTT 5, the value of the user property named by `id_property`
// when configured and present; otherwise the hex SHA-256 of the topic, the
// retain flag, the payload and (MQTT 5) the content type, response topic,
// correlation data, payload format and user properties. A redelivered
// message keeps its id only because the broker resends the same content;
// two identical publications (same topic, payload and properties) share an
// id, and a retained message sent on subscription (retain flag set) has a
// different id from the same publication delivered live.
//
// # CloudEvents
//
// Messages that already are CloudEvents (the CloudEvents MQTT protocol
// binding) are taken as they are: MQTT 5 binary mode carries the attributes
// as user properties named like the attributes (`specversion`, `id`, ...,
// no prefix; user properties whose names cannot be CloudEvents attribute
// names are ignored), with datacontenttype in the Content Type property;
// structured mode is a payload in the JSON event format with the MQTT 5
// content type `application/cloudevents+json`. MQTT 3.1.1 has no content
// type, so a payload that is a JSON object with a "specversion" member is
// taken as a structured CloudEvent when it is a valid one (likewise for an
// MQTT 5 message without a content type). A message that declares itself a
// CloudEvent but is not a valid one is wrapped like any other (and logged).
package mqtt

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Kind is the connector's name in configuration.
const Kind = "mqtt"

// Field names.
const (
	fieldURL             = "url"
	fieldTopics          = "topics"
	fieldClientID        = "client_id"
	fieldQoS             = "qos"
	fieldProtocolVersion = "protocol_version"
	fieldUsername        = "username"
	fieldPassword        = "password"
	fieldKeepAlive       = "keep_alive"
	fieldSessionExpiry   = "session_expiry"
	fieldMaxInflight     = "max_inflight"
	fieldIDProperty      = "id_property"
	fieldContentType     = "content_type"
	fieldType            = "type"
	fieldSource          = "source"
)

// DefaultType is the CloudEvent type of wrapped messages.
const DefaultType = "com.switchyard.mqtt.message"

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    Kind,
		Summary: "Subscribes to MQTT 3.1.1 or 5 topics with a persistent session and QoS 1; each message becomes a CloudEvent.",
		Description: `The source keeps a persistent session (Clean Session 0, or Clean Start 0 with a session expiry),
so the broker queues what is published while Switchyard is down. A message is acknowledged (PUBACK)
only once its event is durable; MQTT has no negative acknowledgement, so a refused event makes the
source drop the connection unacknowledged and the broker sends it again when the session resumes.
Messages that already are CloudEvents (MQTT 5 binary mode with user properties, structured mode with
content type ` + "`application/cloudevents+json`" + `, or a JSON CloudEvent payload) are taken as they are;
anything else is wrapped. MQTT 3.1.1 has no message id: the event id is a hash of the message's
content, so a redelivered message keeps its id and identical messages share one. Brokers bound what
they queue per session (Mosquitto: ` + "`max_queued_messages`" + `, default 1000).`,
		Fields: []connectors.Field{
			{Name: fieldURL, Type: connectors.TypeString, Default: "tcp://127.0.0.1:1883",
				Doc: "Broker address: tcp:// or mqtt:// (default port 1883), ssl://, tls:// or mqtts:// (TLS, default port 8883). Credentials go in username and password.", Example: "mqtts://broker.example.com:8883"},
			{Name: fieldTopics, Type: connectors.TypeStringList, Required: true,
				Doc: "Topic filters to subscribe to (wildcards + and #, shared subscriptions $share/group/filter).", Example: "[\"sensors/+/temperature\", \"alerts/#\"]"},
			{Name: fieldClientID, Type: connectors.TypeString, Required: true,
				Doc: "Client identifier; the broker keeps the persistent session under it, so it must be stable and used by no other client.", Example: "switchyard-sensors"},
			{Name: fieldQoS, Type: connectors.TypeInt, Default: 1, Doc: "Subscription QoS: 1 (at least once) or 2."},
			{Name: fieldProtocolVersion, Type: connectors.TypeInt, Default: 4, Doc: "MQTT protocol: 4 (3.1.1) or 5."},
			{Name: fieldUsername, Type: connectors.TypeString, Doc: "User name, if the broker requires one."},
			{Name: fieldPassword, Type: connectors.TypeString, Secret: true, Doc: "Password, if the broker requires one.", Example: "${MQTT_PASSWORD}"},
			{Name: fieldKeepAlive, Type: connectors.TypeDuration, Default: "30s", Doc: "Keep-alive interval (whole seconds, at most 18h12m15s; 0 disables it)."},
			{Name: fieldSessionExpiry, Type: connectors.TypeDuration, Default: "168h",
				Doc: "MQTT 5: how long the broker keeps the session (and queues messages) while the source is disconnected. MQTT 3.1.1 sessions last as long as the broker's configuration says (Mosquitto: persistent_client_expiration)."},
			{Name: fieldMaxInflight, Type: connectors.TypeInt, Default: 100,
				Doc: "MQTT 5: Receive Maximum, the most unacknowledged messages the broker sends at a time (1–65535). MQTT 3.1.1 brokers use their own limit (Mosquitto: max_inflight_messages, default 20)."},
			{Name: fieldIDProperty, Type: connectors.TypeString,
				Doc: "MQTT 5: user property holding a producer-assigned message id; when present it is the event id of a wrapped message.", Example: "message-id"},
			{Name: fieldContentType, Type: connectors.TypeString,
				Doc: "Content type of payloads that carry none (every MQTT 3.1.1 message; MQTT 5 messages without Content Type), e.g. application/json.", Example: "application/json"},
			{Name: fieldType, Type: connectors.TypeString, Default: DefaultType, Doc: "CloudEvent type of wrapped messages."},
			{Name: fieldSource, Type: connectors.TypeString, Doc: "CloudEvent source of wrapped messages; default `mqtt://{host}:{port}` (mqtts for TLS).", Example: "https://sensors.example.com"},
		},
		Emits: connectors.EventDoc{
			ID:              "for a CloudEvent message its own id; else (MQTT 5) the `id_property` user property; else the hex SHA-256 of topic, retain flag, payload and MQTT 5 properties (stable across redeliveries; identical messages share it)",
			Source:          "the `source` field, default `mqtt://{host}:{port}`",
			Type:            "the `type` field",
			Subject:         "the topic the message was published to",
			Time:            "when the message was read (MQTT carries no timestamp)",
			DataContentType: "the MQTT 5 Content Type, else the `content_type` field, when set",
			Data:            "the payload, byte for byte: text_data when it is text (JSON, text/*, or valid UTF-8 without a content type), binary_data otherwise",
		},
		Confirms: connectors.ConfirmsUpstream,
		Loses:    "messages accepted but not yet delivered: they were acknowledged (PUBACK), so the broker does not send them again",
		New:      New,
	})
}
