package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/internal/backoff"
)

// minReportGap bounds how often progress is reported to the server.
const minReportGap = 20 * time.Millisecond

// outBuffer is how many decoded events wait for Read.
const outBuffer = 512

// Source is the postgres source. Connect starts a replication stream whose
// goroutine decodes messages into events for Read and reports the
// acknowledged position to the server.
type Source struct {
	name           string
	slot, pub      string
	include        map[string]bool
	includeList    [][2]string
	exclude        map[string]bool
	statusInterval time.Duration
	log            *slog.Logger
	ceSource       string
	replCfg        *pgconn.Config
	sqlCfg         *pgx.ConnConfig

	// confirmed is the position every event before which was acknowledged,
	// carried from one connection to the next.
	confirmed pglogrepl.LSN
	st        *stream
}

var slotRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// sanitize turns a source name into a slot or publication name.
func sanitize(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}

// parseTable splits "schema.table" (or "table", in public).
func parseTable(s string) (schema, table string, err error) {
	s = strings.TrimSpace(s)
	schema, table, ok := strings.Cut(s, ".")
	if !ok {
		schema, table = "public", s
	}
	if schema == "" || table == "" || strings.Contains(table, ".") {
		return "", "", fmt.Errorf("%q: want schema.table", s)
	}
	return schema, table, nil
}

// New builds a postgres source from its fields; it connects to nothing.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, slot: cfg.String(fieldSlot), pub: cfg.String(fieldPublication),
		include: map[string]bool{}, exclude: map[string]bool{},
		statusInterval: cfg.Duration(fieldStatusInterval), log: env.Logger,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var errs []error
	dsn := cfg.String(fieldDSN)
	replCfg, err := pgconn.ParseConfig(dsn)
	if err != nil || dsn == "" {
		// The parser's message may quote the string, password included.
		errs = append(errs, fmt.Errorf("fields.%s: not a valid PostgreSQL connection string (postgres://user:password@host:5432/db or key=value pairs)", fieldDSN))
	} else {
		replCfg.RuntimeParams["replication"] = "database"
		s.replCfg = replCfg
		sqlCfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			errs = append(errs, fmt.Errorf("fields.%s: not a valid PostgreSQL connection string", fieldDSN))
		} else {
			delete(sqlCfg.RuntimeParams, "replication")
			s.sqlCfg = sqlCfg
		}
		s.ceSource = ceSource(replCfg)
	}
	if s.slot == "" {
		s.slot = sanitize("switchyard_" + env.Name)
	} else if !slotRE.MatchString(s.slot) {
		errs = append(errs, fmt.Errorf("fields.%s: %q: use 1 to 63 lower-case letters, digits and '_'", fieldSlot, s.slot))
	}
	if s.pub == "" {
		s.pub = sanitize("switchyard_" + env.Name)
	} else if !slotRE.MatchString(s.pub) {
		errs = append(errs, fmt.Errorf("fields.%s: %q: use 1 to 63 lower-case letters, digits and '_'", fieldPublication, s.pub))
	}
	for i, t := range cfg.StringList(fieldTables) {
		schema, table, err := parseTable(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("fields.%s[%d]: %w", fieldTables, i, err))
			continue
		}
		if !s.include[schema+"."+table] {
			s.includeList = append(s.includeList, [2]string{schema, table})
		}
		s.include[schema+"."+table] = true
	}
	for i, t := range cfg.StringList(fieldExcludeTables) {
		schema, table, err := parseTable(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("fields.%s[%d]: %w", fieldExcludeTables, i, err))
			continue
		}
		s.exclude[schema+"."+table] = true
	}
	if s.statusInterval <= 0 {
		errs = append(errs, fmt.Errorf("fields.%s: must be positive", fieldStatusInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// ceSource is the CloudEvent source: postgres://host[:port]/db.
func ceSource(c *pgconn.Config) string {
	host := c.Host
	if host == "" || strings.HasPrefix(host, "/") {
		host = "localhost"
	}
	if c.Port != 0 && c.Port != 5432 {
		host = net.JoinHostPort(host, strconv.Itoa(int(c.Port)))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return (&url.URL{Scheme: "postgres", Host: host, Path: "/" + c.Database}).String()
}

// Slot returns the replication slot the source streams from.
func (s *Source) Slot() string { return s.slot }

// Publication returns the publication the source streams.
func (s *Source) Publication() string { return s.pub }

// wanted reports whether changes of schema.table become events.
func (s *Source) wanted(schema, table string) bool {
	k := schema + "." + table
	if len(s.include) > 0 && !s.include[k] {
		return false
	}
	return !s.exclude[k]
}

// Connect implements connectors.Source: it creates the publication and the
// slot when missing and starts streaming from the confirmed position.
func (s *Source) Connect(ctx context.Context) error {
	if s.st != nil {
		return errors.New("already connected")
	}
	slotLSN, err := s.setup(ctx)
	if err != nil {
		return err
	}
	s.confirmed = max(s.confirmed, slotLSN)
	conn, err := pgconn.ConnectConfig(ctx, s.replCfg.Copy())
	if err != nil {
		return fmt.Errorf("replication connection: %w", err)
	}
	opts := pglogrepl.StartReplicationOptions{PluginArgs: []string{
		"proto_version '1'", "publication_names '" + s.pub + "'",
	}}
	// A slot stays active for a moment after its previous connection ended;
	// past slotBusyWait another connection holds it (most often a second
	// Switchyard instance running the same source), and Connect says so
	// rather than waiting silently: the runner shows the error in
	// `source list` and tries again later.
	busySince := time.Now()
	for wait := time.Duration(0); ; {
		err = pglogrepl.StartReplication(ctx, conn, s.slot, s.confirmed, opts)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" { // object_in_use
			break
		}
		if time.Since(busySince) >= slotBusyWait {
			_ = conn.Close(context.Background())
			return fmt.Errorf("%w: %s (is another Switchyard instance running this source? only one connection at a time can read a slot)", errSlotInUse, pgErr.Message)
		}
		// Jittered: two instances waiting for the same slot do not ask
		// for it in step.
		wait = backoff.Next(wait, 50*time.Millisecond, time.Second)
		if !backoff.Sleep(ctx, wait) {
			_ = conn.Close(context.Background())
			return fmt.Errorf("start replication: %w", err)
		}
	}
	if err != nil {
		_ = conn.Close(context.Background())
		return fmt.Errorf("start replication from slot %s at %s: %w", s.slot, s.confirmed, err)
	}
	s.st = newStream(s, conn, s.confirmed)
	s.log.Info("postgres replication started", "slot", s.slot, "publication", s.pub, "from", s.confirmed.String())
	return nil
}

// slotBusyWait is how long Connect waits for a slot in use to be released
// before it reports errSlotInUse.
const slotBusyWait = 5 * time.Second

// errSlotInUse: another connection is reading the replication slot.
var errSlotInUse = errors.New("replication slot in use by another connection")

// setup creates the publication and the slot when missing and returns the
// slot's confirmed flush position.
func (s *Source) setup(ctx context.Context) (pglogrepl.LSN, error) {
	conn, err := pgx.ConnectConfig(ctx, s.sqlCfg.Copy())
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_publication WHERE pubname = $1", s.pub).Scan(&n); err != nil {
		return 0, fmt.Errorf("look up publication %s: %w", s.pub, err)
	}
	if n == 0 {
		sql := "CREATE PUBLICATION " + pgx.Identifier{s.pub}.Sanitize() + " FOR ALL TABLES"
		if len(s.includeList) > 0 {
			names := make([]string, len(s.includeList))
			for i, t := range s.includeList {
				names[i] = pgx.Identifier{t[0], t[1]}.Sanitize()
			}
			sql = "CREATE PUBLICATION " + pgx.Identifier{s.pub}.Sanitize() + " FOR TABLE " + strings.Join(names, ", ")
		}
		if _, err := conn.Exec(ctx, sql); err != nil && !isDuplicate(err) {
			return 0, fmt.Errorf("create publication %s: %w", s.pub, err)
		}
		s.log.Info("created publication", "publication", s.pub, "sql", sql)
	}
	var plugin, db, dbNow string
	var lsn *string
	row := conn.QueryRow(ctx, `SELECT s.plugin, s.database, s.confirmed_flush_lsn::text, current_database()
		FROM pg_replication_slots s WHERE s.slot_name = $1`, s.slot)
	err = row.Scan(&plugin, &db, &lsn, &dbNow)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", s.slot); err != nil && !isDuplicate(err) {
			return 0, fmt.Errorf("create replication slot %s: %w", s.slot, err)
		}
		s.log.Info("created replication slot", "slot", s.slot)
		err = conn.QueryRow(ctx, `SELECT s.plugin, s.database, s.confirmed_flush_lsn::text, current_database()
			FROM pg_replication_slots s WHERE s.slot_name = $1`, s.slot).Scan(&plugin, &db, &lsn, &dbNow)
	}
	if err != nil {
		return 0, fmt.Errorf("look up replication slot %s: %w", s.slot, err)
	}
	if plugin != "pgoutput" || db != dbNow {
		return 0, fmt.Errorf("replication slot %s belongs to plugin %q on database %q; this source needs pgoutput on %q (choose another slot)", s.slot, plugin, db, dbNow)
	}
	if lsn == nil {
		return 0, nil
	}
	return pglogrepl.ParseLSN(*lsn)
}

func isDuplicate(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42710" // duplicate_object
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	st := s.st
	if st == nil {
		return nil, fmt.Errorf("postgres source: %w", connectors.ErrNotConnected)
	}
	select {
	case <-st.nackc:
		return nil, st.nackErr()
	default:
	}
	select {
	case m := <-st.out:
		return m, nil
	case <-st.nackc:
		return nil, st.nackErr()
	case <-st.done:
		select {
		case m := <-st.out:
			return m, nil
		default:
		}
		return nil, fmt.Errorf("replication stream: %v: %w", st.err, connectors.ErrNotConnected)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close implements connectors.Source: it stops the stream, reports the
// acknowledged position one last time and closes the connection. The slot
// stays.
func (s *Source) Close(ctx context.Context) error {
	st := s.st
	if st == nil {
		return nil
	}
	s.st = nil
	st.cancel()
	select {
	case <-st.done:
	case <-ctx.Done():
	}
	st.mu.Lock()
	acked := st.acked
	st.mu.Unlock()
	s.confirmed = max(s.confirmed, acked)
	var err error
	select {
	case <-st.done:
		if acked > st.reported {
			err = st.sendStatus(acked)
		}
	default:
	}
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cerr := st.conn.Close(cctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close replication connection: %w", err)
	}
	return nil
}

// txn tracks the events of one transaction until all are acknowledged.
type txn struct {
	end           pglogrepl.LSN // the end of its commit record
	events, acked int
	committed     bool
}

// stream is one replication connection.
type stream struct {
	src    *Source
	conn   *pgconn.PgConn
	dec    *decoder
	out    chan *connectors.Message
	done   chan struct{}
	err    error // why the stream ended, set before done is closed
	cancel context.CancelFunc

	// Owned by the stream goroutine.
	tx         *txn
	commitLSN  pglogrepl.LSN
	commitTime time.Time
	xid        uint32
	index      int
	nextStatus time.Time

	mu              sync.Mutex
	pending         []*txn        // begun and not yet fully acknowledged, in order
	acked           pglogrepl.LSN // every event before it is acknowledged
	reported        pglogrepl.LSN // last position sent to the server
	lastReport      time.Time
	nacked          bool
	nackc           chan struct{}
	recvCancel      context.CancelFunc
	progressPending bool
}

func newStream(s *Source, conn *pgconn.PgConn, from pglogrepl.LSN) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	st := &stream{src: s, conn: conn, dec: newDecoder(), out: make(chan *connectors.Message, outBuffer),
		done: make(chan struct{}), cancel: cancel, acked: from, reported: from, nackc: make(chan struct{}),
		lastReport: time.Now()}
	go st.run(ctx)
	return st
}

func (st *stream) nackErr() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return fmt.Errorf("an event was not accepted; replication restarts from %s: %w", st.acked, connectors.ErrNotConnected)
}

// sendStatus reports lsn as written, flushed and applied.
func (st *stream) sendStatus(lsn pglogrepl.LSN) error {
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), st.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: lsn})
	st.mu.Lock()
	if err == nil {
		st.reported = max(st.reported, lsn)
	}
	st.lastReport = time.Now()
	st.mu.Unlock()
	st.nextStatus = time.Now().Add(st.src.statusInterval)
	return err
}

// advance moves acked past the completed transactions at the front. mu is
// held.
func (st *stream) advance() {
	moved := false
	for len(st.pending) > 0 {
		t := st.pending[0]
		if !t.committed || t.acked < t.events {
			break
		}
		st.acked = max(st.acked, t.end)
		st.pending[0] = nil
		st.pending = st.pending[1:]
		moved = true
	}
	if moved && !st.progressPending && st.recvCancel != nil {
		st.recvCancel() // wake the stream goroutine to report
	}
}

// ackFunc acknowledges one event of t.
func (st *stream) ackFunc(t *txn) func(context.Context, error) error {
	var once sync.Once
	return func(_ context.Context, err error) error {
		once.Do(func() {
			st.mu.Lock()
			defer st.mu.Unlock()
			if err != nil {
				if !st.nacked {
					st.nacked = true
					close(st.nackc)
				}
				return
			}
			if st.nacked {
				return
			}
			t.acked++
			st.advance()
		})
		return nil
	}
}

// run receives and decodes messages until ctx ends or the connection fails.
func (st *stream) run(ctx context.Context) {
	defer close(st.done)
	st.nextStatus = time.Now().Add(st.src.statusInterval)
	for {
		st.mu.Lock()
		due := !time.Now().Before(st.nextStatus) ||
			(st.acked > st.reported && time.Since(st.lastReport) >= minReportGap)
		lsn := st.acked
		st.mu.Unlock()
		if due {
			if err := st.sendStatus(lsn); err != nil {
				st.err = fmt.Errorf("send status: %w", err)
				return
			}
		}
		st.mu.Lock()
		deadline := st.nextStatus
		st.progressPending = st.acked > st.reported
		if st.progressPending {
			if d := st.lastReport.Add(minReportGap); d.Before(deadline) {
				deadline = d
			}
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		st.recvCancel = cancel
		st.mu.Unlock()
		msg, err := st.conn.ReceiveMessage(rctx)
		st.mu.Lock()
		st.recvCancel = nil
		st.mu.Unlock()
		cancel()
		if ctx.Err() != nil {
			st.err = ctx.Err()
			return
		}
		if err != nil {
			if rctx.Err() != nil || pgconn.Timeout(err) {
				continue
			}
			st.err = fmt.Errorf("receive: %w", err)
			return
		}
		if err := st.handle(ctx, msg); err != nil {
			st.err = err
			return
		}
	}
}

// handle processes one message from the server.
func (st *stream) handle(ctx context.Context, msg pgproto3.BackendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.CopyData:
		if len(m.Data) == 0 {
			return nil
		}
		switch m.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			k, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
			if err != nil {
				return fmt.Errorf("keepalive: %w", err)
			}
			st.mu.Lock()
			// Nothing in flight: every transaction committed before the
			// server's position was received and acknowledged.
			if len(st.pending) == 0 && st.tx == nil && !st.nacked && k.ServerWALEnd > st.acked {
				st.acked = k.ServerWALEnd
			}
			st.mu.Unlock()
			if k.ReplyRequested {
				st.nextStatus = time.Now()
			}
		case pglogrepl.XLogDataByteID:
			x, err := pglogrepl.ParseXLogData(m.Data[1:])
			if err != nil {
				return fmt.Errorf("xlogdata: %w", err)
			}
			return st.wal(ctx, x)
		}
	case *pgproto3.ErrorResponse:
		return pgconn.ErrorResponseToPgError(m)
	case *pgproto3.CopyDone:
		return errors.New("the server ended replication")
	}
	return nil
}

// wal decodes one pgoutput message.
func (st *stream) wal(ctx context.Context, x pglogrepl.XLogData) error {
	msg, err := parseMessage(x.WALData, false, false)
	if err != nil {
		return err
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		st.tx = &txn{}
		st.commitLSN, st.commitTime, st.xid, st.index = m.FinalLSN, m.CommitTime, m.Xid, 0
		st.mu.Lock()
		st.pending = append(st.pending, st.tx)
		st.mu.Unlock()
	case *pglogrepl.CommitMessage:
		if st.tx == nil {
			return errors.New("commit outside a transaction")
		}
		st.mu.Lock()
		st.tx.end, st.tx.committed = m.TransactionEndLSN, true
		st.advance()
		st.mu.Unlock()
		st.tx = nil
	case *pglogrepl.RelationMessage:
		st.dec.relation(m)
	case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage, *pglogrepl.TruncateMessage:
		if st.tx == nil {
			return errors.New("row change outside a transaction")
		}
		changes, err := st.dec.changes(msg, x.WALStart)
		if err != nil {
			return err
		}
		for _, c := range changes {
			idx := st.index
			st.index++
			if !st.src.wanted(c.Schema, c.Table) {
				continue
			}
			c.CommitLSN, c.Xid = st.commitLSN.String(), st.xid
			m := st.message(c, idx)
			st.mu.Lock()
			st.tx.events++
			st.mu.Unlock()
			if err := st.push(ctx, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// push hands m to Read, reporting the position to the server while Read
// does not take it (Switchyard pushing back), so the server keeps the
// connection.
func (st *stream) push(ctx context.Context, m *connectors.Message) error {
	for {
		t := time.NewTimer(time.Until(st.nextStatus))
		select {
		case st.out <- m:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
			st.mu.Lock()
			lsn := st.acked
			st.mu.Unlock()
			if err := st.sendStatus(lsn); err != nil {
				return fmt.Errorf("send status: %w", err)
			}
		}
	}
}

// message builds the event of change c, the idx-th of its transaction.
func (st *stream) message(c change, idx int) *connectors.Message {
	typ := typeInserted
	switch c.Op {
	case opUpdate:
		typ = typeUpdated
	case opDelete:
		typ = typeDeleted
	case opTruncate:
		typ = typeTruncated
	}
	data, err := json.Marshal(c)
	if err != nil { // jsonValue only keeps encodable values; never expected
		data, _ = json.Marshal(map[string]any{"schema": c.Schema, "table": c.Table, "op": c.Op, "lsn": c.LSN, "error": err.Error()})
	}
	id := st.src.slot + ":" + st.commitLSN.String() + ":" + strconv.Itoa(idx)
	ev := &pb.CloudEvent{
		Id: id, Source: st.src.ceSource, SpecVersion: "1.0", Type: typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/json"}},
			"time":            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(st.commitTime)}},
			"subject":         {Attr: &pb.CloudEventAttributeValue_CeString{CeString: c.Schema + "." + c.Table}},
		},
		Data: &pb.CloudEvent_TextData{TextData: string(data)},
	}
	return &connectors.Message{Event: ev, Ack: st.ackFunc(st.tx), Position: st.commitLSN.String()}
}

var _ connectors.Source = (*Source)(nil)
