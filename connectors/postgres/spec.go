// Package postgres is the `postgres` source: change data capture from
// PostgreSQL through logical replication with the built-in pgoutput plugin.
// Every inserted, updated or deleted row (and every truncated table) of the
// published tables becomes one CloudEvent, in commit order.
//
// The source creates its publication and its replication slot when they are
// missing. It reports a transaction to PostgreSQL as processed (the slot's
// confirmed flush position) only once every event of that transaction is
// durable in Switchyard, so after a crash or a refused event PostgreSQL
// sends the unconfirmed transactions again; their events keep their ids.
package postgres

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldDSN            = "dsn"
	fieldSlot           = "slot"
	fieldPublication    = "publication"
	fieldTables         = "tables"
	fieldExcludeTables  = "exclude_tables"
	fieldStatusInterval = "status_interval"
)

// Event types.
const (
	typePrefix    = "com.switchyard.postgres.row."
	typeInserted  = typePrefix + "inserted"
	typeUpdated   = typePrefix + "updated"
	typeDeleted   = typePrefix + "deleted"
	typeTruncated = typePrefix + "truncated"
)

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    "postgres",
		Summary: "Captures row changes from PostgreSQL through logical replication (pgoutput) and emits one CloudEvent per inserted, updated or deleted row.",
		Description: `The server needs ` + "`wal_level = logical`" + ` and a free replication slot and WAL sender
(` + "`max_replication_slots`, `max_wal_senders`" + `); the user needs the REPLICATION attribute
and, to create the publication, ownership of the tables (or superuser for FOR ALL TABLES).

On connect the source creates the publication (FOR TABLE the ` + "`tables`" + ` list, or FOR ALL
TABLES when the list is empty) and the logical replication slot (plugin pgoutput) when they do
not exist; an existing publication is used as it is. Changes are captured from the moment the
slot is created. ` + "`tables` and `exclude_tables`" + ` also filter the events of the stream.

The slot's confirmed position advances only past transactions whose every event was
acknowledged by Switchyard; after a crash, a refused event or a reconnect PostgreSQL resends
the unconfirmed transactions and their events keep their ids (at-least-once). The position is
reported as soon as it advances (at most every 20ms) and every ` + "`status_interval`" + ` while idle.
A slot keeps WAL on the server until it is confirmed: drop the slot
(` + "`SELECT pg_drop_replication_slot('…')`" + `) when you remove the source.

Old values come with updates and deletes according to the table's REPLICA IDENTITY: the key
columns by default (on deletes, and on updates that change the key), every column with
REPLICA IDENTITY FULL. Column values are typed from the relation's column types: booleans,
integers and floats as JSON numbers/booleans, numeric as JSON numbers (NaN and infinities as
strings), json/jsonb embedded as JSON, bytea as base64, uuid as a string, timestamptz as RFC 3339
in UTC, timestamp and date as ISO 8601 without zone, arrays of those as JSON arrays, anything
else as PostgreSQL's text form. Unchanged TOASTed values (not sent by PostgreSQL on updates) are
left out of ` + "`new`" + ` and named in ` + "`unchanged_toast`" + `.`,
		Fields: []connectors.Field{
			{Name: fieldDSN, Type: connectors.TypeString, Required: true, Secret: true,
				Doc:     "PostgreSQL connection string (URL or key=value) of a user with the REPLICATION attribute; the replication connection adds replication=database itself.",
				Example: "postgres://cdc:${PGPASSWORD}@db.internal:5432/shop?sslmode=require"},
			{Name: fieldSlot, Type: connectors.TypeString,
				Doc:     "Logical replication slot (lower-case letters, digits and '_', at most 63); default `switchyard_{source name}` with other characters replaced by '_'. Each source needs its own slot.",
				Example: "switchyard_orders"},
			{Name: fieldPublication, Type: connectors.TypeString,
				Doc:     "Publication to stream; default `switchyard_{source name}` (sanitized like the slot). Created when missing.",
				Example: "shop_cdc"},
			{Name: fieldTables, Type: connectors.TypeStringList,
				Doc:     "Tables to capture, as schema.table (a bare name means public.name); empty means every table (the publication is then FOR ALL TABLES).",
				Example: "[public.orders, public.customers]"},
			{Name: fieldExcludeTables, Type: connectors.TypeStringList,
				Doc:     "Tables whose changes are skipped, as schema.table.",
				Example: "[public.audit_log]"},
			{Name: fieldStatusInterval, Type: connectors.TypeDuration, Default: "10s",
				Doc: "How often the source reports its position to PostgreSQL while idle (keep it well under the server's wal_sender_timeout)."},
		},
		Emits: connectors.EventDoc{
			Type:            "`com.switchyard.postgres.row.inserted`, `…row.updated`, `…row.deleted` or `…row.truncated`",
			Source:          "`postgres://{host}[:{port}]/{database}` (the port when it is not 5432)",
			Subject:         "`{schema}.{table}`",
			ID:              "`{slot}:{commit LSN}:{index of the change in its transaction}`, e.g. `switchyard_orders:0/16B3748:2`: the same change always has the same id",
			Time:            "the transaction's commit time",
			DataContentType: "`application/json`",
			Data:            "`{\"schema\", \"table\", \"op\": \"insert|update|delete|truncate\", \"new\": {column: value}, \"old\": {column: value} (per REPLICA IDENTITY), \"unchanged_toast\": [columns], \"lsn\": \"0/16B3700\" (the change's WAL position), \"commit_lsn\", \"xid\"}`",
		},
		Confirms: connectors.ConfirmsUpstream,
		Loses:    "row changes accepted but not yet delivered: the replication slot's confirmed LSN has moved past them, so PostgreSQL does not send them again",
		New:      New,
	})
}
