// Package mysql is the `mysql` source: change data capture from MySQL or
// MariaDB by reading the binary log as a replica (go-mysql's BinlogSyncer).
// Every row written, updated or deleted in the selected tables becomes one
// CloudEvent, in binlog order.
//
// The binlog position (and, in GTID mode, the GTID set) after the last
// transaction whose every event is durable in Switchyard is kept in the
// source's checkpoint; a restart resumes from it, so unacknowledged rows come
// again with the same ids.
package mysql

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldAddr          = "addr"
	fieldUser          = "user"
	fieldPassword      = "password"
	fieldServerID      = "server_id"
	fieldFlavor        = "flavor"
	fieldTables        = "tables"
	fieldExcludeTables = "exclude_tables"
	fieldStart         = "start_position"
)

// Event types.
const (
	typePrefix   = "com.switchyard.mysql.row."
	typeInserted = typePrefix + "inserted"
	typeUpdated  = typePrefix + "updated"
	typeDeleted  = typePrefix + "deleted"
)

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    "mysql",
		Summary: "Captures row changes from MySQL or MariaDB by reading the binary log as a replica; one CloudEvent per written, updated or deleted row.",
		Description: `The server needs the binary log in row format (` + "`log_bin`, `binlog_format=ROW`" + `,
` + "`binlog_row_image=FULL`" + ` for complete old rows) and the user needs REPLICATION SLAVE and
REPLICATION CLIENT (and SELECT on information_schema). Column names and types come from the
table map events when ` + "`binlog_row_metadata=FULL`" + ` (MySQL 8.0.1+, MariaDB 10.5+); otherwise
they are read once per table from information_schema.COLUMNS (the current schema, which may
differ from the one the row was written with) and re-read after DDL.

The position is checkpointed only past transactions whose every event was acknowledged
(written as soon as it moves, at most every 100ms, and when the source stops), so the source
resumes at a transaction boundary and redelivers what was not acknowledged, with the same ids
(at-least-once). On the very first start, without a checkpoint, it begins at
` + "`start_position`" + ` and saves that position at once.

Values: integers (unsigned ones too) as JSON numbers, DECIMAL as JSON numbers from their exact
text, FLOAT/DOUBLE as numbers, JSON columns embedded, ENUM as the value's name, SET as the
comma-separated names, binary strings, BLOBs and geometry as base64, text as strings,
DATE/TIME/DATETIME/TIMESTAMP as their text form (TIMESTAMP in UTC), BIT as a number.`,
		Fields: []connectors.Field{
			{Name: fieldAddr, Type: connectors.TypeString, Required: true, Doc: "host:port of the server.", Example: "db.internal:3306"},
			{Name: fieldUser, Type: connectors.TypeString, Required: true, Doc: "User with REPLICATION SLAVE and REPLICATION CLIENT.", Example: "cdc"},
			{Name: fieldPassword, Type: connectors.TypeString, Secret: true, Doc: "The user's password.", Example: "${MYSQL_PASSWORD}"},
			{Name: fieldServerID, Type: connectors.TypeInt,
				Doc: "Replica server id, unique among the server's replicas; default derived from the source name (a hash in 1000000000–1999999999)."},
			{Name: fieldFlavor, Type: connectors.TypeString, Default: "mariadb", Doc: "Server flavor: mariadb or mysql."},
			{Name: fieldTables, Type: connectors.TypeStringList,
				Doc:     "Tables to capture, as db.table; shell patterns work (`shop.*`, `shop.order_*`). Empty means every table.",
				Example: "[shop.orders, shop.customers]"},
			{Name: fieldExcludeTables, Type: connectors.TypeStringList, Doc: "Tables to skip, as db.table patterns.", Example: "[shop.audit_*]"},
			{Name: fieldStart, Type: connectors.TypeString,
				Doc:     "Where the first start begins, without a checkpoint: `end` or empty (the current end of the binlog), `{file}:{pos}` (e.g. `binlog.000042:4`), `gtid` (the current GTID position) or `gtid:{set}` (e.g. `gtid:0-1-1500`). The GTID forms make the source resume by GTID.",
				Example: "binlog.000042:4"},
		},
		Emits: connectors.EventDoc{
			Type:            "`com.switchyard.mysql.row.inserted`, `…row.updated` or `…row.deleted`",
			Source:          "`mysql://{addr}`",
			Subject:         "`{db}.{table}`",
			ID:              "`{binlog file}:{end position of the rows event}:{row index}`, e.g. `binlog.000042:1337:0`: the same row change always has the same id",
			Time:            "the binlog event's timestamp (the statement's start, in seconds)",
			DataContentType: "`application/json`",
			Data:            "`{\"db\", \"table\", \"op\": \"insert|update|delete\", \"new\": {column: value}, \"old\": {column: value}, \"position\": \"{file}:{pos}\" (of the rows event), \"gtid\": \"{the transaction's GTID}\" (when the server logs GTIDs)}`",
		},
		Confirms: connectors.ConfirmsCheckpoint,
		Loses:    "row changes accepted but not yet delivered, and the binlog position itself: the source begins again at `start_position` (by default the binlog's current end), skipping the changes made meanwhile too",
		New:      New,
	})
}
