// Package sql is the `sql` target: each event becomes one row of a
// PostgreSQL or MySQL/MariaDB table, in a documented layout (a column per
// required attribute, the subject, time and data content type as columns
// for queries, every attribute in a JSON column in the CloudEvents JSON
// format's typing, the data in a binary column byte for byte). The event
// counts as delivered once the INSERT committed (each is its own
// autocommitted statement). The `postgres` and `mysql` sources capture the
// rows as they are inserted, so a consumer of those sources reads every
// attribute and the data back.
//
// # Built on watermill-sql
//
// The publisher is watermill-sql/v4's, with its own SchemaAdapter: the
// table is the publisher's topic, the adapter writes the layout below
// (creating the table, when asked, through the publisher's
// AutoInitializeSchema) and inserts one row per message; the Watermill
// message carries the row's values as metadata and the data as payload.
// PostgreSQL is reached through pgx's pool (watermill-sql's pgx adapter),
// MySQL and MariaDB through go-sql-driver/mysql; both dial through the
// egress guard. watermill-sql's Publish runs the INSERT under the message's
// context, the attempt's, and returns its error, which carries the
// database's SQLSTATE or error number for classification.
package sql

import (
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/targets"
)

// Kind names the target in triggers.
const Kind = "sql"

// Field names.
const (
	fieldDialect        = "dialect"
	fieldAddr           = "addr"
	fieldDatabase       = "database"
	fieldUser           = "user"
	fieldPasswordSecret = "password_secret"
	fieldTable          = "table"
	fieldCreateTable    = "create_table"
	fieldTLS            = "tls"
)

// Dialects.
const (
	dialectPostgres = "postgres"
	dialectMySQL    = "mysql"
)

func init() {
	targets.MustRegister(targets.Spec{
		Kind:    Kind,
		Summary: "Inserts each event as a row of a PostgreSQL or MySQL/MariaDB table; delivered once the INSERT committed.",
		Description: `The table has the layout below; ` + "`create_table: true`" + ` creates it when it is missing
(` + "`CREATE TABLE IF NOT EXISTS`" + `), otherwise it must exist (a missing table dead-letters the event,
` + "`BROKER_NOT_FOUND`" + `). The primary key is (source, id), the identity of a CloudEvent: an event already in the
table, such as one whose first attempt committed but whose answer was lost, is not inserted twice and counts as
delivered. A row the table refuses (a constraint or a column type of your own, a value too long for a MySQL
column) dead-letters the event with the database's message (` + "`BROKER_REJECTED`" + `); a database that is down,
a deadlock or a serialization failure is retried.`,
		Fields: []connectors.Field{
			{Name: fieldDialect, Type: connectors.TypeString, Required: true, Doc: "`postgres` (PostgreSQL) or `mysql` (MySQL, MariaDB).", Example: "postgres"},
			{Name: fieldAddr, Type: connectors.TypeString, Required: true, Doc: "host:port of the database server.", Example: "db.internal:5432"},
			{Name: fieldDatabase, Type: connectors.TypeString, Required: true, Doc: "Database (schema, for MySQL) the table is in.", Example: "shop"},
			{Name: fieldUser, Type: connectors.TypeString, Required: true, Doc: "User with INSERT on the table (and CREATE with `create_table`).", Example: "events"},
			{Name: fieldPasswordSecret, Type: connectors.TypeSecretName, Doc: "Secret holding the user's password.", Example: "shop-db-password"},
			{Name: fieldTable, Type: connectors.TypeString, Required: true, Doc: "Table the rows go to: `name`, or `schema.name` for PostgreSQL; letters, digits and '_'.", Example: "order_events"},
			{Name: fieldCreateTable, Type: connectors.TypeBool, Default: false, Doc: "Create the table with the layout below when it does not exist."},
			{Name: fieldTLS, Type: connectors.TypeBool, Default: false, Doc: "Connect over TLS (the server's target CA, else the system roots), verifying the server's name."},
		},
		Layout: "One row per event:\n\n" + layoutTable + `

` + "`attributes`" + ` holds every attribute but datacontenttype as the CloudEvents JSON format writes them (` +
			"`{\"id\": \"…\", \"source\": \"…\", \"specversion\": \"1.0\", \"type\": \"…\", \"time\": \"2026-12-06T10:00:00.123456789Z\", \"traceparent\": \"…\"}`" + `),
so the time keeps its full precision there while the ` + "`time`" + ` column, for queries, holds it to the microsecond.
The CREATE TABLE statements ` + "`create_table`" + ` runs:

PostgreSQL:

` + "```sql\n" + postgresCreate("order_events") + "\n```" + `

MySQL and MariaDB:

` + "```sql\n" + mysqlCreate("order_events") + "\n```",
		ReadBack: "the `postgres` and `mysql` sources (the row's columns in the event's `new`; `data` as base64)",
		Confirms: "The INSERT's success: a single autocommitted statement, so the row is committed when the database answers.",
		Check:    check,
		Addresses: func(c targets.Config) []targets.Address {
			return []targets.Address{{Field: fieldAddr, HostPort: c.String(fieldAddr)}}
		},
		Secure:  func(c targets.Config) bool { return c.Bool(fieldTLS) },
		Display: display,
		New:     New,
	})
}

// layoutTable documents the columns.
const layoutTable = `| column | PostgreSQL | MySQL / MariaDB | holds |
|---|---|---|---|
| ` + "`source`" + ` | text | VARCHAR(512) | source (with id, the primary key) |
| ` + "`id`" + ` | text | VARCHAR(255) | id |
| ` + "`type`" + ` | text | VARCHAR(1024) | type |
| ` + "`specversion`" + ` | text | VARCHAR(16) | specversion |
| ` + "`subject`" + ` | text | TEXT | subject, NULL without |
| ` + "`time`" + ` | timestamptz | DATETIME(6), UTC | time to the microsecond, NULL without |
| ` + "`datacontenttype`" + ` | text | TEXT | datacontenttype, NULL without |
| ` + "`dataschema`" + ` | text | TEXT | dataschema, NULL without |
| ` + "`attributes`" + ` | jsonb | JSON | every attribute and extension but datacontenttype (see below) |
| ` + "`data`" + ` | bytea | LONGBLOB | the data, byte for byte; NULL without data |
| ` + "`stored_at`" + ` | timestamptz | TIMESTAMP(6) | when the row was inserted (the database's clock) |`
