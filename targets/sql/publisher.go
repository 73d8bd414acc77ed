package sql

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/targets"
)

var tableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$`)

func check(c targets.Config) []targets.FieldProblem {
	var out []targets.FieldProblem
	add := func(field, format string, a ...any) {
		out = append(out, targets.FieldProblem{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	d := c.String(fieldDialect)
	if d != dialectPostgres && d != dialectMySQL {
		add(fieldDialect, "%q: want postgres or mysql", d)
	}
	host, port, err := net.SplitHostPort(c.String(fieldAddr))
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		add(fieldAddr, "%q is not host:port", c.String(fieldAddr))
	}
	t := c.String(fieldTable)
	switch {
	case !tableRE.MatchString(t):
		add(fieldTable, "%q: give name or schema.name, letters, digits and '_', not starting with a digit", t)
	case d == dialectMySQL && strings.Contains(t, "."):
		add(fieldTable, "%q: for MySQL the database field names the schema; give the table's name alone", t)
	}
	if db := c.String(fieldDatabase); db == "" || strings.ContainsAny(db, "\x00/\\`\"") {
		add(fieldDatabase, "%q is not a database name", db)
	}
	if u := c.String(fieldUser); u == "" || strings.ContainsAny(u, "\x00") {
		add(fieldUser, "must not be empty")
	}
	return out
}

func display(c targets.Config) string {
	return fmt.Sprintf("%s://%s/%s table=%s", c.String(fieldDialect), c.String(fieldAddr), c.String(fieldDatabase), c.String(fieldTable))
}

// publisher inserts rows with a watermill-sql publisher.
type publisher struct {
	pub   *wmsql.Publisher
	table string
	close func()
}

// New opens the connection pool (it connects on the first insert).
func New(_ context.Context, c targets.Config, env targets.Env) (targets.Publisher, error) {
	var password string
	if name := c.String(fieldPasswordSecret); name != "" {
		v, err := env.Secret(name)
		if err != nil {
			return nil, targets.Fail(targets.Misconfigured, err)
		}
		password = v
	}
	host, port, _ := net.SplitHostPort(c.String(fieldAddr))
	var (
		db      wmsql.ContextExecutor
		adapter wmsql.SchemaAdapter
		closeFn func()
	)
	switch c.String(fieldDialect) {
	case dialectPostgres:
		pc, err := pgxpool.ParseConfig("")
		if err != nil {
			return nil, targets.Fail(targets.Misconfigured, err)
		}
		cc := pc.ConnConfig
		p, _ := strconv.ParseUint(port, 10, 16)
		cc.Host, cc.Port, cc.Database, cc.User, cc.Password = host, uint16(p), c.String(fieldDatabase), c.String(fieldUser), password
		cc.Fallbacks = nil
		cc.TLSConfig = nil
		if c.Bool(fieldTLS) {
			cc.TLSConfig = env.TLS(host)
		}
		cc.DialFunc = env.Dial
		// The egress guard resolves the name itself, at dial time: pgx
		// would otherwise resolve it first and dial the addresses.
		cc.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
		cc.ConnectTimeout = 10 * time.Second
		cc.RuntimeParams = map[string]string{"application_name": "switchyard"}
		pc.MaxConns = 16
		pool, err := pgxpool.NewWithConfig(context.Background(), pc)
		if err != nil {
			return nil, targets.Fail(targets.Misconfigured, err)
		}
		db, adapter, closeFn = wmsql.BeginnerFromPgx(pool), postgresAdapter{}, pool.Close
	default:
		mc := mysql.NewConfig()
		mc.Net, mc.Addr, mc.DBName, mc.User, mc.Passwd = "tcp", c.String(fieldAddr), c.String(fieldDatabase), c.String(fieldUser), password
		mc.DialFunc = env.Dial
		mc.Timeout = 10 * time.Second
		mc.ParseTime = true
		mc.Loc = time.UTC
		mc.Params = map[string]string{"time_zone": "'+00:00'"}
		if c.Bool(fieldTLS) {
			mc.TLS = env.TLS(host)
		}
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			return nil, targets.Fail(targets.Misconfigured, err)
		}
		sdb := stdsql.OpenDB(conn)
		sdb.SetMaxOpenConns(16)
		sdb.SetConnMaxIdleTime(time.Minute)
		db, adapter, closeFn = wmsql.BeginnerFromStdSQL(sdb), mysqlAdapter{}, func() { _ = sdb.Close() }
	}
	pub, err := wmsql.NewPublisher(db, wmsql.PublisherConfig{SchemaAdapter: adapter, AutoInitializeSchema: c.Bool(fieldCreateTable)}, watermill.NewSlogLogger(env.Logger))
	if err != nil {
		closeFn()
		return nil, targets.Fail(targets.Misconfigured, err)
	}
	return &publisher{pub: pub, table: c.String(fieldTable), close: closeFn}, nil
}

// Publish implements targets.Publisher.
func (p *publisher) Publish(ctx context.Context, ev *pb.CloudEvent) error {
	msg := Message(ev)
	msg.SetContext(ctx)
	if err := p.pub.Publish(p.table, msg); err != nil {
		return classify(ctx, err)
	}
	return nil
}

// Close implements targets.Publisher.
func (p *publisher) Close() error {
	err := p.pub.Close()
	p.close()
	return err
}

// Metadata keys of the Watermill message: one per column (but data, the
// payload).
const (
	mdSource          = "source"
	mdID              = "id"
	mdType            = "type"
	mdSpecVersion     = "specversion"
	mdSubject         = "subject"
	mdTime            = "time"
	mdDataContentType = "datacontenttype"
	mdDataSchema      = "dataschema"
	mdAttributes      = "attributes"
)

// Message is the Watermill message of an event: its row's values as
// metadata (absent for NULL), the data as payload.
func Message(ev *pb.CloudEvent) *message.Message {
	md := message.Metadata{
		mdSource: ev.GetSource(), mdID: ev.GetId(), mdType: ev.GetType(), mdSpecVersion: ev.GetSpecVersion(),
		mdAttributes: string(targets.AttributesJSON(ev)),
	}
	for _, name := range []string{mdSubject, mdTime, mdDataContentType, mdDataSchema} {
		if v, ok := cloudevent.Attribute(ev, name); ok {
			md[name] = v
		}
	}
	m := message.NewMessage(ev.GetId(), cloudevent.Data(ev))
	m.Metadata = md
	return m
}

// row returns the INSERT's arguments of a message, in column order.
func row(m *message.Message) []any {
	opt := func(k string) any {
		if v, ok := m.Metadata[k]; ok {
			return v
		}
		return nil
	}
	var tm any
	if v, ok := m.Metadata[mdTime]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			tm = t.UTC()
		}
	}
	var data any
	if m.Payload != nil {
		data = []byte(m.Payload)
	}
	return []any{m.Metadata[mdSource], m.Metadata[mdID], m.Metadata[mdType], m.Metadata[mdSpecVersion],
		opt(mdSubject), tm, opt(mdDataContentType), opt(mdDataSchema), m.Metadata[mdAttributes], data}
}

const columns = "source, id, type, specversion, subject, time, datacontenttype, dataschema, attributes, data"

// classify names a failed insert (or table creation).
func classify(ctx context.Context, err error) error {
	var pe *pgconn.PgError
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &pe):
		return targets.Fail(postgresFailure(pe.Code), fmt.Errorf("%s (SQLSTATE %s)", pe.Message, pe.Code))
	case errors.As(err, &me):
		return targets.Fail(mysqlFailure(me.Number), fmt.Errorf("%d: %s", me.Number, me.Message))
	case ctx.Err() != nil:
		return targets.Fail(targets.Timeout, err)
	case pgconn.Timeout(err):
		return targets.Fail(targets.Timeout, err)
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, stdsql.ErrConnDone):
		return targets.Fail(targets.Unreachable, err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return targets.Fail(targets.Unreachable, err)
	}
	return targets.Fail(targets.FailureOf(err), err)
}

// postgresFailure classifies a SQLSTATE by its class (PostgreSQL manual,
// appendix A).
func postgresFailure(code string) targets.Failure {
	switch {
	case code == "42P01", code == "3D000", code == "3F000": // undefined table, database, schema
		return targets.NotFound
	case code == "42501", strings.HasPrefix(code, "28"): // insufficient privilege, invalid authorization
		return targets.Unauthorized
	case code == "23505": // unique violation: the layout's ON CONFLICT makes it another unique key of the table
		return targets.Rejected
	case strings.HasPrefix(code, "23"), strings.HasPrefix(code, "22"), strings.HasPrefix(code, "42"): // integrity, data, syntax or layout
		return targets.Rejected
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "57P"): // connection, operator intervention (shutdown)
		return targets.Unreachable
	case code == "57014": // query cancelled (statement timeout)
		return targets.Timeout
	}
	// 40 (serialization, deadlock), 53 (resources), 55 (lock not available),
	// 58 and XX (system, internal): the database may take it later.
	return targets.Unavailable
}

// mysqlFailure classifies a MySQL or MariaDB error number.
func mysqlFailure(n uint16) targets.Failure {
	switch n {
	case 1146, 1049: // no such table, unknown database
		return targets.NotFound
	case 1044, 1045, 1142, 1143, 1227, 1370: // access denied, command or column denied
		return targets.Unauthorized
	case 1048, 1062, 1263, 1264, 1292, 1364, 1366, 1406, 1451, 1452, 1054, 3140, 3819, 4025, 1136, 1064:
		// NOT NULL, duplicate on another key, out of range, bad value, too
		// long, foreign key, unknown column, bad JSON, CHECK (MySQL,
		// MariaDB), column count, syntax: this row, this table.
		return targets.Rejected
	case 1040, 1053, 1077, 1152, 1158, 1159, 1160, 1161, 2002, 2003, 2006, 2013: // connections, shutdown, lost
		return targets.Unreachable
	case 1205: // lock wait timeout
		return targets.Timeout
	}
	// 1213 deadlock, 1030/1114/1021 storage, read-only and the rest: retry.
	return targets.Unavailable
}

// quote quotes a table name (validated by check) for a dialect.
func quote(table, q string) string {
	parts := strings.Split(table, ".")
	for i, p := range parts {
		parts[i] = q + p + q
	}
	return strings.Join(parts, ".")
}

// adapter is the part of watermill-sql's SchemaAdapter a publisher uses;
// the subscriber's part is refused.
type adapter struct{}

func (adapter) SelectQuery(wmsql.SelectQueryParams) (wmsql.Query, error) {
	return wmsql.Query{}, errors.New("the sql target only publishes")
}

func (adapter) UnmarshalMessage(wmsql.UnmarshalMessageParams) (wmsql.Row, error) {
	return wmsql.Row{}, errors.New("the sql target only publishes")
}

func (adapter) SubscribeIsolationLevel() stdsql.IsolationLevel { return stdsql.LevelDefault }

// postgresAdapter writes the layout to PostgreSQL.
type postgresAdapter struct{ adapter }

func postgresCreate(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + quote(table, `"`) + ` (
  source text NOT NULL,
  id text NOT NULL,
  type text NOT NULL,
  specversion text NOT NULL,
  subject text,
  time timestamptz,
  datacontenttype text,
  dataschema text,
  attributes jsonb NOT NULL,
  data bytea,
  stored_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, id)
)`
}

func (postgresAdapter) SchemaInitializingQueries(p wmsql.SchemaInitializingQueriesParams) ([]wmsql.Query, error) {
	return []wmsql.Query{{Query: postgresCreate(p.Topic)}}, nil
}

func (postgresAdapter) InsertQuery(p wmsql.InsertQueryParams) (wmsql.Query, error) {
	var q strings.Builder
	q.WriteString("INSERT INTO " + quote(p.Topic, `"`) + " (" + columns + ") VALUES ")
	var args []any
	for i, m := range p.Msgs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(")
		for j := range 10 {
			if j > 0 {
				q.WriteString(", ")
			}
			q.WriteString("$" + strconv.Itoa(len(args)+j+1))
			if j == 8 {
				q.WriteString("::jsonb")
			}
		}
		q.WriteString(")")
		args = append(args, row(m)...)
	}
	q.WriteString(" ON CONFLICT (source, id) DO NOTHING")
	return wmsql.Query{Query: q.String(), Args: args}, nil
}

// mysqlAdapter writes the layout to MySQL and MariaDB.
type mysqlAdapter struct{ adapter }

func mysqlCreate(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + quote(table, "`") + ` (
  source VARCHAR(512) NOT NULL,
  id VARCHAR(255) NOT NULL,
  type VARCHAR(1024) NOT NULL,
  specversion VARCHAR(16) NOT NULL,
  subject TEXT,
  time DATETIME(6),
  datacontenttype TEXT,
  dataschema TEXT,
  attributes JSON NOT NULL,
  data LONGBLOB,
  stored_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (source, id)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`
}

func (mysqlAdapter) SchemaInitializingQueries(p wmsql.SchemaInitializingQueriesParams) ([]wmsql.Query, error) {
	return []wmsql.Query{{Query: mysqlCreate(p.Topic)}}, nil
}

func (mysqlAdapter) InsertQuery(p wmsql.InsertQueryParams) (wmsql.Query, error) {
	var q strings.Builder
	q.WriteString("INSERT INTO " + quote(p.Topic, "`") + " (" + columns + ") VALUES ")
	var args []any
	for i, m := range p.Msgs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, row(m)...)
	}
	// An event already in the table (same source and id) is delivered.
	q.WriteString(" ON DUPLICATE KEY UPDATE id = id")
	return wmsql.Query{Query: q.String(), Args: args}, nil
}
