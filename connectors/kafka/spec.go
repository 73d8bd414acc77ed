// Package kafka is the `kafka` source: a Kafka consumer group member that
// turns every record of its topics into a CloudEvent. A record's offset is
// committed only once its event, and every earlier record of the partition,
// is durable in Switchyard; a record Switchyard did not take is fetched
// again (the partition is rewound to it), so delivery is at-least-once with
// the same event id.
//
// # Why franz-go and not watermill-kafka
//
// watermill-kafka/v3 is built on IBM/sarama, whose rcrowley/go-metrics
// dependency starts a global goroutine that never ends (a goroutine leak that
// every leak-checking test has to ignore), and it pulls sarama, go-metrics
// and otelsarama into the binary for what franz-go does alone. franz-go
// (pure Go, actively maintained) gives exactly the commit control the
// contract needs: marks, synchronous commits of marked offsets, SetOffsets
// to rewind a partition, and an in-process fake cluster (kfake) for tests.
//
// # Committing
//
// The client runs with kgo.AutoCommitMarks: only offsets marked with
// MarkCommitRecords are ever committed, and a record is marked only in its
// Ack with a nil error. (kgo.DisableAutoCommit cannot be combined with
// marks; with marks, franz-go's autocommit loop and its revoke handler
// commit what was marked, which is what a manual commit in
// OnPartitionsRevoked would do.) The source also commits the marked offsets
// synchronously before every poll, so a crash repeats at most the last
// batch, and when it closes. After a refused record, later acks of the same
// partition are ignored and, before the next poll, the partition is rewound
// to the refused record with SetOffsets.
package kafka

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldBrokers  = "brokers"
	fieldTopics   = "topics"
	fieldGroup    = "group"
	fieldStart    = "start"
	fieldClientID = "client_id"
	fieldSession  = "session_timeout"
	fieldType     = "type"
	fieldSource   = "source"
)

// DefaultType is the type of wrapped records.
const DefaultType = "com.switchyard.kafka.record"

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    "kafka",
		Summary: "Consumes Kafka topics as a consumer group member; each record becomes a CloudEvent, its offset committed once durable.",
		Description: `Joins the consumer group and commits a partition's offset only past records whose events are stored in
Switchyard (before every poll and on stop); a record Switchyard did not take is fetched again. Delivery is
at-least-once: after a crash or a rebalance, records since the last commit come again, with the same ids. TLS and
SASL are not supported yet.

A record that already is a CloudEvent (Kafka protocol binding) is taken as is: binary mode, one ` + "`ce_`" + ` header
per attribute, ` + "`content-type`" + ` as datacontenttype and the value as data; structured mode, ` + "`content-type: application/cloudevents+json`" + `
with the JSON event format as value. Any other record (including an invalid
CloudEvent) is wrapped with the value as data, byte for byte. In both cases a record key becomes the
` + "`partitionkey`" + ` extension (unless the event has one).`,
		Fields: []connectors.Field{
			{Name: fieldBrokers, Type: connectors.TypeStringList, Default: []string{"127.0.0.1:9092"}, Doc: "Seed brokers, host:port.", Example: "[kafka-1:9092, kafka-2:9092]"},
			{Name: fieldTopics, Type: connectors.TypeStringList, Required: true, Doc: "Topics to consume.", Example: "[orders]"},
			{Name: fieldGroup, Type: connectors.TypeString, Doc: "Consumer group id; default `switchyard-{source-name}`. Servers running the same source share the group and split the partitions."},
			{Name: fieldStart, Type: connectors.TypeString, Default: "earliest", Doc: "Where partitions without a committed offset start: `earliest` or `latest`."},
			{Name: fieldClientID, Type: connectors.TypeString, Default: "switchyard", Doc: "Client id sent to the brokers (shows in their logs and quotas)."},
			{Name: fieldSession, Type: connectors.TypeDuration, Default: "45s", Doc: "Group session timeout: how long the group waits for a member that stopped heartbeating (a crashed server) before giving its partitions to others. Brokers bound it (group.min/max.session.timeout.ms)."},
			{Name: fieldType, Type: connectors.TypeString, Default: DefaultType, Doc: "CloudEvent type of wrapped records."},
			{Name: fieldSource, Type: connectors.TypeString, Doc: "CloudEvent source of wrapped records; default `kafka://{first broker}/{topic}`."},
		},
		Emits: connectors.EventDoc{
			ID:              "`{topic}-{partition}-{offset}` (e.g. `orders-3-1042`); records that are CloudEvents keep their own id",
			Source:          "the `source` field, default `kafka://{first broker}/{topic}`",
			Type:            "the `type` field, default `" + DefaultType + "`",
			Subject:         "the record key, when it is valid UTF-8 text",
			Time:            "the record timestamp",
			DataContentType: "the `content-type` header; without one, application/json for JSON, text/plain; charset=utf-8 for other UTF-8 text, else application/octet-stream",
			Data:            "the record value, byte for byte (text_data when UTF-8, else binary_data; none for a tombstone)",
			Extensions:      map[string]string{"partitionkey": "the record key, when it is valid UTF-8 text"},
		},
		Confirms: connectors.ConfirmsUpstream,
		Loses:    "records accepted but not yet delivered: their offsets are committed, so the consumer group does not fetch them again",
		New:      New,
	})
}
