package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/connectors"
)

// checkpointKey is where the position is kept.
const checkpointKey = "binlog_position"

// flushGap bounds how often the position is written.
const flushGap = 100 * time.Millisecond

// position is a place in the binlog: always a transaction boundary.
type position struct {
	File string `json:"file,omitempty"`
	Pos  uint32 `json:"pos,omitempty"`
	// GTID is the GTID set executed up to here (GTID mode).
	GTID string `json:"gtid,omitempty"`
}

func (p position) String() string {
	s := p.File + ":" + strconv.FormatUint(uint64(p.Pos), 10)
	if p.GTID != "" {
		s += " gtid " + p.GTID
	}
	return s
}

// Source is the mysql source.
type Source struct {
	name            string
	addr, host      string
	port            uint16
	user, password  string
	serverID        uint32
	flavor          string
	include         []string
	exclude         []string
	start           string
	gtidMode        bool
	log             *slog.Logger
	cp              connectors.Checkpoints
	ceSource        string
	haveAcked       bool
	acked           position // carried from one connection to the next
	c               *conn
	schemaQueryHook func() // tests
}

// New builds a mysql source from its fields; it connects to nothing.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, addr: cfg.String(fieldAddr), user: cfg.String(fieldUser), password: cfg.String(fieldPassword),
		flavor: strings.ToLower(cfg.String(fieldFlavor)), include: cfg.StringList(fieldTables), exclude: cfg.StringList(fieldExcludeTables),
		start: strings.TrimSpace(cfg.String(fieldStart)), log: env.Logger, cp: env.Checkpoints,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var errs []error
	host, port, err := net.SplitHostPort(s.addr)
	p, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || host == "" || p == 0 {
		errs = append(errs, fmt.Errorf("fields.%s: %q: want host:port", fieldAddr, s.addr))
	}
	s.host, s.port = host, uint16(p)
	s.ceSource = "mysql://" + s.addr
	if s.user == "" {
		errs = append(errs, fmt.Errorf("fields.%s: must not be empty", fieldUser))
	}
	switch s.flavor {
	case gomysql.MySQLFlavor, gomysql.MariaDBFlavor:
	default:
		errs = append(errs, fmt.Errorf("fields.%s: %q: want mariadb or mysql", fieldFlavor, cfg.String(fieldFlavor)))
	}
	switch id := cfg.Int(fieldServerID); {
	case id == 0:
		h := fnv.New32a()
		h.Write([]byte(env.Name))
		s.serverID = 1_000_000_000 + h.Sum32()%1_000_000_000
	case id < 1 || int64(id) > 1<<32-1:
		errs = append(errs, fmt.Errorf("fields.%s: %d: want 1 to 4294967295", fieldServerID, id))
	default:
		s.serverID = uint32(id)
	}
	for _, l := range []struct {
		field string
		pats  []string
	}{{fieldTables, s.include}, {fieldExcludeTables, s.exclude}} {
		for i, p := range l.pats {
			if _, err := path.Match(p, ""); err != nil || strings.Count(p, ".") != 1 || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") {
				errs = append(errs, fmt.Errorf("fields.%s[%d]: %q: want db.table (shell patterns allowed)", l.field, i, p))
			}
		}
	}
	switch st := s.start; {
	case st == "" || st == "end":
	case st == "gtid":
		s.gtidMode = true
	case strings.HasPrefix(st, "gtid:"):
		s.gtidMode = true
		if s.flavor == gomysql.MySQLFlavor || s.flavor == gomysql.MariaDBFlavor {
			if _, err := gomysql.ParseGTIDSet(s.flavor, strings.TrimPrefix(st, "gtid:")); err != nil {
				errs = append(errs, fmt.Errorf("fields.%s: %q: not a %s GTID set: %w", fieldStart, st, s.flavor, err))
			}
		}
	default:
		if _, err := parseFilePos(st); err != nil {
			errs = append(errs, fmt.Errorf("fields.%s: %q: want end, {file}:{pos}, gtid or gtid:{set}", fieldStart, st))
		}
	}
	if s.cp == nil {
		errs = append(errs, errors.New("the mysql source needs checkpoint storage"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func parseFilePos(s string) (position, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return position{}, errors.New("no position")
	}
	pos, err := strconv.ParseUint(s[i+1:], 10, 32)
	if err != nil {
		return position{}, err
	}
	return position{File: s[:i], Pos: uint32(pos)}, nil
}

// ServerID returns the replica server id the source registers with.
func (s *Source) ServerID() uint32 { return s.serverID }

// wanted reports whether changes of db.table become events.
func (s *Source) wanted(db, table string) bool {
	name := db + "." + table
	match := func(pats []string) bool {
		for _, p := range pats {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
		return false
	}
	if len(s.include) > 0 && !match(s.include) {
		return false
	}
	return !match(s.exclude)
}

func (s *Source) sqlConn(ctx context.Context) (*client.Conn, error) {
	c, err := client.ConnectWithContext(ctx, s.addr, s.user, s.password, "", 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.addr, err)
	}
	return c, nil
}

// resume returns where to start: the position acknowledged on an earlier
// connection, else the checkpoint, else start_position (saved at once).
func (s *Source) resume(ctx context.Context, sql *client.Conn) (position, error) {
	if s.haveAcked {
		return s.acked, nil
	}
	b, err := s.cp.Get(ctx, checkpointKey)
	if err != nil {
		return position{}, fmt.Errorf("read checkpoint: %w", err)
	}
	if b != nil {
		var p position
		if err := json.Unmarshal(b, &p); err != nil {
			return position{}, fmt.Errorf("checkpoint %q: %w", b, err)
		}
		return p, nil
	}
	var p position
	switch st := s.start; {
	case strings.HasPrefix(st, "gtid:"):
		p.GTID = strings.TrimPrefix(st, "gtid:")
	case st == "gtid":
		q := "SELECT @@GLOBAL.gtid_binlog_pos"
		if s.flavor == gomysql.MySQLFlavor {
			q = "SELECT @@GLOBAL.gtid_executed"
		}
		r, err := sql.Execute(q)
		if err != nil {
			return p, fmt.Errorf("read the current GTID position: %w", err)
		}
		p.GTID, _ = r.GetString(0, 0)
	case st == "" || st == "end":
		r, err := sql.Execute("SHOW MASTER STATUS")
		if err != nil {
			r, err = sql.Execute("SHOW BINARY LOG STATUS") // MySQL 8.4
		}
		if err != nil {
			return p, fmt.Errorf("read the binlog position: %w", err)
		}
		if r.RowNumber() == 0 {
			return p, errors.New("the server has no binary log (enable log_bin with binlog_format=ROW)")
		}
		p.File, _ = r.GetString(0, 0)
		pos, _ := r.GetUint(0, 1)
		p.Pos = uint32(pos)
	default:
		p, _ = parseFilePos(st)
	}
	if err := s.save(ctx, p); err != nil {
		return p, err
	}
	s.log.Info("binlog start position saved", "position", p.String())
	return p, nil
}

func (s *Source) save(ctx context.Context, p position) error {
	b, _ := json.Marshal(p)
	if err := s.cp.Set(ctx, checkpointKey, b); err != nil {
		return fmt.Errorf("save position: %w", err)
	}
	return nil
}

// Connect implements connectors.Source: it starts reading the binlog from
// the last acknowledged position.
func (s *Source) Connect(ctx context.Context) error {
	if s.c != nil {
		return errors.New("already connected")
	}
	sql, err := s.sqlConn(ctx)
	if err != nil {
		return err
	}
	from, err := s.resume(ctx, sql)
	if err != nil {
		_ = sql.Close()
		return err
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	cfg := replication.BinlogSyncerConfig{
		ServerID: s.serverID, Flavor: s.flavor, Host: s.host, Port: s.port, User: s.user, Password: s.password,
		TimestampStringLocation: time.UTC,
		HeartbeatPeriod:         15 * time.Second, ReadTimeout: 60 * time.Second,
		DisableRetrySync: true, // the runner reconnects from the acknowledged position
		Logger:           s.log,
		Dialer:           dialer.DialContext,
	}
	syncer := replication.NewBinlogSyncer(cfg)
	var streamer *replication.BinlogStreamer
	if s.gtidMode && from.GTID != "" {
		set, perr := gomysql.ParseGTIDSet(s.flavor, from.GTID)
		if perr != nil {
			syncer.Close()
			_ = sql.Close()
			return fmt.Errorf("GTID set %q: %w", from.GTID, perr)
		}
		streamer, err = syncer.StartSyncGTID(set)
	} else {
		streamer, err = syncer.StartSync(gomysql.Position{Name: from.File, Pos: from.Pos})
	}
	if err != nil {
		syncer.Close()
		_ = sql.Close()
		return fmt.Errorf("start binlog replication at %s: %w", from, err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &conn{src: s, syncer: syncer, streamer: streamer, sql: sql, file: from.File, acked: from, lastGTID: from.GTID,
		nackc: make(chan struct{}), schema: map[string][]column{}, cancel: cancel, flushed: make(chan struct{}), advanced: make(chan struct{}, 1)}
	go c.flushLoop(cctx)
	s.c = c
	s.log.Info("mysql binlog replication started", "from", from.String(), "server_id", s.serverID)
	return nil
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	c := s.c
	if c == nil {
		return nil, fmt.Errorf("mysql source: %w", connectors.ErrNotConnected)
	}
	for {
		select {
		case <-c.nackc:
			return nil, fmt.Errorf("an event was not accepted; replication restarts from %s: %w", c.ackedPos(), connectors.ErrNotConnected)
		default:
		}
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			return m, nil
		}
		ev, err := c.streamer.GetEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("binlog stream: %w: %w", err, connectors.ErrNotConnected)
		}
		if err := c.handle(ev, ev.Header); err != nil {
			return nil, fmt.Errorf("binlog event at %s:%d: %w: %w", c.file, ev.Header.LogPos, err, connectors.ErrNotConnected)
		}
	}
}

// Close implements connectors.Source: it stops replication and saves the
// acknowledged position.
func (s *Source) Close(ctx context.Context) error {
	c := s.c
	if c == nil {
		return nil
	}
	s.c = nil
	c.cancel()
	<-c.flushed
	err := c.flush(ctx)
	s.acked, s.haveAcked = c.ackedPos(), true
	c.syncer.Close()
	if c.sql != nil {
		_ = c.sql.Close()
	}
	return err
}

// txn tracks the events of one transaction until all are acknowledged.
type txn struct {
	end           position
	events, acked int
	committed     bool
}

// conn is one replication connection.
type conn struct {
	src      *Source
	syncer   *replication.BinlogSyncer
	streamer *replication.BinlogStreamer
	sql      *client.Conn
	cancel   context.CancelFunc
	flushed  chan struct{}
	advanced chan struct{} // capacity 1: the position moved

	// Owned by the reading goroutine.
	queue    []*connectors.Message
	file     string
	tx       *txn
	sawBegin bool
	txGTID   string
	lastGTID string
	schema   map[string][]column // from information_schema, by db.table
	idHeader *replication.EventHeader
	idNext   int

	mu      sync.Mutex
	pending []*txn
	acked   position
	dirty   bool
	nacked  bool
	nackc   chan struct{}
}

func (c *conn) ackedPos() position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

// flushLoop writes the position as soon as it advances, then at most every
// flushGap while it keeps advancing.
func (c *conn) flushLoop(ctx context.Context) {
	defer close(c.flushed)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.advanced:
		}
		if wait := flushGap - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := c.flush(fctx); err != nil && ctx.Err() == nil {
			c.src.log.Warn("save binlog position", "err", err)
			c.signal() // try again
		}
		cancel()
	}
}

// signal tells flushLoop the position moved.
func (c *conn) signal() {
	select {
	case c.advanced <- struct{}{}:
	default:
	}
}

// flush writes the acknowledged position if it changed.
func (c *conn) flush(ctx context.Context) error {
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	p := c.acked
	c.dirty = false
	c.mu.Unlock()
	if err := c.src.save(ctx, p); err != nil {
		c.mu.Lock()
		c.dirty = true
		c.mu.Unlock()
		return err
	}
	return nil
}

// begin starts tracking a transaction.
func (c *conn) begin() {
	c.tx = &txn{}
	c.sawBegin, c.txGTID = false, ""
	c.mu.Lock()
	c.pending = append(c.pending, c.tx)
	c.mu.Unlock()
}

// commit ends the current transaction at h's end position.
func (c *conn) commit(h *replication.EventHeader, gset gomysql.GTIDSet) {
	if c.tx == nil {
		c.begin()
	}
	if gset != nil {
		c.lastGTID = gset.String()
	}
	c.mu.Lock()
	c.tx.end, c.tx.committed = position{File: c.file, Pos: h.LogPos, GTID: c.lastGTID}, true
	c.advance()
	c.mu.Unlock()
	c.tx = nil
}

// idle moves the position past an event outside any transaction when
// nothing is in flight. mu is not held.
func (c *conn) idle(p position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 && !c.nacked && p != c.acked {
		c.acked, c.dirty = p, true
		c.signal()
	}
}

// advance moves acked past the completed transactions at the front. mu is
// held.
func (c *conn) advance() {
	for len(c.pending) > 0 && !c.nacked {
		t := c.pending[0]
		if !t.committed || t.acked < t.events {
			return
		}
		c.acked, c.dirty = t.end, true
		c.pending[0] = nil
		c.pending = c.pending[1:]
		c.signal()
	}
}

func (c *conn) ackFunc(t *txn) func(context.Context, error) error {
	var once sync.Once
	return func(_ context.Context, err error) error {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if err != nil {
				if !c.nacked {
					c.nacked = true
					close(c.nackc)
				}
				return
			}
			t.acked++
			c.advance()
		})
		return nil
	}
}

// handle processes one binlog event; h is its header (the enclosing
// payload's for events inside a compressed transaction).
func (c *conn) handle(ev *replication.BinlogEvent, h *replication.EventHeader) error {
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		c.file = string(e.NextLogName)
		if c.tx == nil {
			c.idle(position{File: c.file, Pos: uint32(e.Position), GTID: c.lastGTID})
		}
	case *replication.MariadbGTIDEvent:
		c.begin()
		c.sawBegin = !e.IsStandalone()
		c.txGTID = e.GTID.String()
	case *replication.GTIDEvent:
		c.begin()
		if e.GNO > 0 { // not an anonymous transaction
			if next, err := e.GTIDNext(); err == nil {
				c.txGTID = next.String()
			}
		}
	case *replication.QueryEvent:
		q := strings.ToUpper(strings.TrimSpace(string(e.Query)))
		switch {
		case q == "BEGIN":
			if c.tx == nil {
				c.begin()
			}
			c.sawBegin = true
		case q == "COMMIT" || q == "ROLLBACK":
			c.commit(h, e.GSet)
		default: // DDL or another statement: the schema may have changed
			clear(c.schema)
			if c.tx == nil || !c.sawBegin {
				c.commit(h, e.GSet)
			}
		}
	case *replication.XIDEvent:
		c.commit(h, e.GSet)
	case *replication.RowsEvent:
		if c.tx == nil {
			c.begin()
			c.sawBegin = true
		}
		return c.rows(h, e)
	case *replication.TransactionPayloadEvent: // MySQL binlog_transaction_compression
		for _, inner := range e.Events {
			if inner == nil {
				continue
			}
			if err := c.handle(inner, h); err != nil {
				return err
			}
		}
	case *replication.FormatDescriptionEvent:
		// Sent first on every connection, with a position that is not one.
	default:
		if c.tx == nil && h.LogPos > 0 && h.EventType != replication.HEARTBEAT_EVENT && h.EventType != replication.HEARTBEAT_LOG_EVENT_V2 &&
			h.Flags&replication.LOG_EVENT_ARTIFICIAL_F == 0 && c.file != "" {
			c.idle(position{File: c.file, Pos: h.LogPos, GTID: c.lastGTID})
		}
	}
	return nil
}

// rows turns a rows event into messages, one per row change.
func (c *conn) rows(h *replication.EventHeader, e *replication.RowsEvent) error {
	if e.Table == nil {
		return errors.New("rows event without its table map")
	}
	db, table := string(e.Table.Schema), string(e.Table.Table)
	if !c.src.wanted(db, table) {
		return nil
	}
	cols, err := c.columns(db, table, e.Table)
	if err != nil {
		return err
	}
	op, typ, step := "insert", typeInserted, 1
	switch e.Type() {
	case replication.EnumRowsEventTypeUpdate:
		op, typ, step = "update", typeUpdated, 2
	case replication.EnumRowsEventTypeDelete:
		op, typ = "delete", typeDeleted
	case replication.EnumRowsEventTypeInsert:
	default:
		return nil
	}
	skipped := func(i int) []int {
		if i < len(e.SkippedColumns) {
			return e.SkippedColumns[i]
		}
		return nil
	}
	// Rows events inside one compressed transaction share its header:
	// their rows are numbered on.
	if h != c.idHeader {
		c.idHeader, c.idNext = h, 0
	}
	pos := c.file + ":" + strconv.FormatUint(uint64(h.LogPos), 10)
	for i := 0; i+step-1 < len(e.Rows); i += step {
		k := c.idNext
		c.idNext++
		ch := change{DB: db, Table: table, Op: op, Position: pos, GTID: c.txGTID}
		switch op {
		case "insert":
			ch.New = rowJSON(cols, e.Rows[i], skipped(i))
		case "delete":
			ch.Old = rowJSON(cols, e.Rows[i], skipped(i))
		case "update":
			ch.Old = rowJSON(cols, e.Rows[i], skipped(i))
			ch.New = rowJSON(cols, e.Rows[i+1], skipped(i+1))
		}
		c.queue = append(c.queue, c.message(h, typ, pos+":"+strconv.Itoa(k), ch))
	}
	return nil
}

// change is the data of a row event.
type change struct {
	DB       string         `json:"db"`
	Table    string         `json:"table"`
	Op       string         `json:"op"`
	New      map[string]any `json:"new,omitempty"`
	Old      map[string]any `json:"old,omitempty"`
	Position string         `json:"position"`
	GTID     string         `json:"gtid,omitempty"`
}

func (c *conn) message(h *replication.EventHeader, typ, id string, ch change) *connectors.Message {
	data, err := json.Marshal(ch)
	if err != nil { // value() only yields encodable values; never expected
		data, _ = json.Marshal(map[string]any{"db": ch.DB, "table": ch.Table, "op": ch.Op, "position": ch.Position, "error": err.Error()})
	}
	ev := &pb.CloudEvent{
		Id: id, Source: c.src.ceSource, SpecVersion: "1.0", Type: typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/json"}},
			"time":            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(time.Unix(int64(h.Timestamp), 0))}},
			"subject":         {Attr: &pb.CloudEventAttributeValue_CeString{CeString: ch.DB + "." + ch.Table}},
		},
		Data: &pb.CloudEvent_TextData{TextData: string(data)},
	}
	c.mu.Lock()
	c.tx.events++
	c.mu.Unlock()
	return &connectors.Message{Event: ev, Ack: c.ackFunc(c.tx), Position: ch.Position}
}

// columns describes a table's columns: from the table map event when it
// carries full metadata, else from information_schema (cached until DDL).
func (c *conn) columns(db, table string, t *replication.TableMapEvent) ([]column, error) {
	if cols, ok := columnsFromTableMap(t); ok {
		return cols, nil
	}
	key := db + "." + table
	if cols, ok := c.schema[key]; ok {
		return cols, nil
	}
	if c.src.schemaQueryHook != nil {
		c.src.schemaQueryHook()
	}
	r, err := c.sql.Execute(`SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", key, err)
	}
	rows := make([]schemaColumn, r.RowNumber())
	for i := range rows {
		rows[i].Name, _ = r.GetString(i, 0)
		rows[i].DataType, _ = r.GetString(i, 1)
		rows[i].ColumnType, _ = r.GetString(i, 2)
	}
	cols := columnsFromSchema(rows)
	c.schema[key] = cols
	return cols, nil
}

var _ connectors.Source = (*Source)(nil)
