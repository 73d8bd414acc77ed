// Package kafka is the `kafka` target: each event becomes one record of a
// Kafka topic in the CloudEvents Kafka binding's binary mode (a `ce_`
// header per attribute, `content-type` for datacontenttype, the data as the
// value, the `partitionkey` extension as the key), which the `kafka` source
// reads back as the same CloudEvent. The event counts as delivered once the
// partition leader acknowledged the record with every in-sync replica
// (acks=all, idempotent producer).
//
// # Why franz-go and not watermill-kafka
//
// watermill-kafka/v3 is built on IBM/sarama, whose rcrowley/go-metrics
// dependency starts a package-level goroutine that never ends: it cannot be
// contained (no client option stops it, and it runs in every process that
// links sarama, whether a Kafka target exists or not), and every
// leak-checking test would have to ignore it. It would also bring sarama,
// go-metrics and otelsarama into the binary beside franz-go, which the
// `kafka` source already uses and which does what the contract needs
// alone: ProduceSync waits for the acknowledgement of acks=all under the
// attempt's context, the idempotent producer keeps its own retries from
// writing a record twice, a Dialer option routes every connection through
// the egress guard, and kfake runs a real Kafka protocol in tests.
package kafka

import (
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/targets"
)

// Kind names the target in triggers.
const Kind = "kafka"

// Field names.
const (
	fieldBrokers        = "brokers"
	fieldTopic          = "topic"
	fieldClientID       = "client_id"
	fieldTLS            = "tls"
	fieldSASL           = "sasl"
	fieldUser           = "user"
	fieldPasswordSecret = "password_secret"
)

// Binding names (Kafka protocol binding, binary mode).
const (
	attrPrefix        = "ce_"
	headerContentType = "content-type"
	attrPartitionKey  = "partitionkey"
)

func init() {
	targets.MustRegister(targets.Spec{
		Kind:    Kind,
		Summary: "Produces each event as a record of a Kafka topic in the Kafka binding's binary mode; delivered once acknowledged by every in-sync replica (acks=all).",
		Description: `The topic must exist (or the cluster must create topics on first use): a record for a topic the
cluster does not know is dead-lettered (` + "`BROKER_NOT_FOUND`" + `) once the producer gave up waiting for it. The
producer is idempotent, so its own retries within one attempt never write a record twice; a retried attempt
whose first produce succeeded but whose answer was lost writes it again, and consumers deduplicate by
` + "`ce_source`" + ` and ` + "`ce_id`" + `.`,
		Fields: []connectors.Field{
			{Name: fieldBrokers, Type: connectors.TypeStringList, Default: []string{"127.0.0.1:9092"}, Doc: "Seed brokers, host:port.", Example: "[kafka-1:9092, kafka-2:9092]"},
			{Name: fieldTopic, Type: connectors.TypeString, Required: true, Doc: "Topic the records are produced to.", Example: "orders"},
			{Name: fieldClientID, Type: connectors.TypeString, Default: "switchyard", Doc: "Client id sent to the brokers (their logs and quotas)."},
			{Name: fieldTLS, Type: connectors.TypeBool, Default: false, Doc: "Connect over TLS (the server's target CA, else the system roots)."},
			{Name: fieldSASL, Type: connectors.TypeString, Default: "none", Doc: "SASL mechanism: `none`, `plain`, `scram-sha-256` or `scram-sha-512` (with `user` and `password_secret`; use `tls` with plain)."},
			{Name: fieldUser, Type: connectors.TypeString, Doc: "SASL user."},
			{Name: fieldPasswordSecret, Type: connectors.TypeSecretName, Doc: "Secret holding the SASL password."},
		},
		Layout: `CloudEvents Kafka protocol binding, binary content mode:

| Kafka record | holds |
|---|---|
| topic | the ` + "`topic`" + ` field |
| key | the ` + "`partitionkey`" + ` extension, when the event has one (records of one key stay in order); none otherwise |
| header ` + "`ce_id`, `ce_source`, `ce_specversion`, `ce_type`" + ` | the required attributes |
| header ` + "`ce_<name>`" + ` | every other attribute and extension in its canonical string form (UTF-8) |
| header ` + "`content-type`" + ` | datacontenttype, when the event has one |
| value | the data, byte for byte (none without data) |`,
		ReadBack: "the `kafka` source",
		Confirms: "The produce response of the partition leader with acks=all: every in-sync replica has the record.",
		Check:    check,
		Addresses: func(c targets.Config) []targets.Address {
			var out []targets.Address
			for _, b := range c.StringList(fieldBrokers) {
				out = append(out, targets.Address{Field: fieldBrokers, HostPort: b})
			}
			return out
		},
		Secure:  func(c targets.Config) bool { return c.Bool(fieldTLS) },
		Display: display,
		New:     New,
	})
}
