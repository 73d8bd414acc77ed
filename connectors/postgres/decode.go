package postgres

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchyard-io/switchyard/connectors/internal/sqljson"
)

// change is one row change, the data of an event.
type change struct {
	Schema    string         `json:"schema"`
	Table     string         `json:"table"`
	Op        string         `json:"op"`
	New       map[string]any `json:"new,omitempty"`
	Old       map[string]any `json:"old,omitempty"`
	Unchanged []string       `json:"unchanged_toast,omitempty"`
	LSN       string         `json:"lsn"`
	CommitLSN string         `json:"commit_lsn"`
	Xid       uint32         `json:"xid"`
}

// Operations.
const (
	opInsert   = "insert"
	opUpdate   = "update"
	opDelete   = "delete"
	opTruncate = "truncate"
)

// parseMessage decodes one pgoutput message (protocol version 1, or 2 when
// v2 is set). pglogrepl trusts the server and can index past the end of a
// malformed message: that becomes an error, never a panic.
func parseMessage(data []byte, v2, inStream bool) (m pglogrepl.Message, err error) {
	if len(data) == 0 {
		return nil, errors.New("empty pgoutput message")
	}
	// pglogrepl allocates what the lengths inside say (a 4 GiB tuple, a
	// billion truncated relations) before noticing they exceed the message:
	// check the structure first.
	xid := 0
	if v2 && inStream {
		xid = 4
	}
	if err := checkStructure(data, xid); err != nil {
		return nil, fmt.Errorf("malformed pgoutput message %q: %w", data[0], err)
	}
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("malformed pgoutput message %q: %v", data[0], r)
		}
	}()
	if v2 {
		m, err = pglogrepl.ParseV2(data, inStream)
	} else {
		m, err = pglogrepl.Parse(data)
	}
	if err == nil && m == nil {
		err = fmt.Errorf("pgoutput message %q decoded to nothing", data[0])
	}
	return m, err
}

var errShort = errors.New("shorter than its contents say")

// reader walks a message; once past its end every read fails.
type reader struct {
	b   []byte
	err error
}

// take returns the next n bytes.
func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() int {
	if b := r.take(2); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) cstring() {
	if r.err != nil {
		return
	}
	i := bytes.IndexByte(r.b, 0)
	if i < 0 {
		r.err = errors.New("unterminated string")
		return
	}
	r.b = r.b[i+1:]
}

func (r *reader) tuple() {
	for range r.u16() {
		switch r.u8() {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			r.take(int(r.u32()))
		}
		if r.err != nil {
			return
		}
	}
}

// checkStructure verifies that the lengths and counts inside a row,
// relation, type, truncate or logical message fit in it; xid is the size
// of the transaction id streamed messages carry after their type.
func checkStructure(data []byte, xid int) error {
	r := &reader{b: data[1:]}
	switch data[0] {
	case 'R':
		r.take(xid + 4)
		r.cstring()
		r.cstring()
		r.take(1)
		for range r.u16() {
			r.take(1)
			r.cstring()
			r.take(8)
			if r.err != nil {
				break
			}
		}
	case 'Y':
		r.take(xid + 4)
		r.cstring()
		r.cstring()
	case 'I':
		r.take(xid + 4)
		if r.u8() != 'N' {
			return errors.New("insert without a new tuple")
		}
		r.tuple()
	case 'U':
		r.take(xid + 4)
		switch r.u8() {
		case 'K', 'O':
			r.tuple()
			if r.u8() != 'N' {
				return errors.New("update without a new tuple")
			}
			r.tuple()
		case 'N':
			r.tuple()
		default:
			return errors.New("update without a tuple")
		}
	case 'D':
		r.take(xid + 4)
		if k := r.u8(); k != 'K' && k != 'O' {
			return errors.New("delete without an old tuple")
		}
		r.tuple()
	case 'T':
		r.take(xid)
		n := r.u32()
		r.take(1)
		if r.err == nil && uint64(n)*4 > uint64(len(r.b)) {
			return errShort
		}
	case 'M':
		r.take(xid + 1 + 8)
		r.cstring()
		r.take(int(r.u32()))
	}
	return r.err
}

// decoder turns pgoutput row messages into changes, typing column values
// from the relation messages the server sends before a table's first change.
type decoder struct {
	types *pgtype.Map
	rels  map[uint32]*pglogrepl.RelationMessage
}

func newDecoder() *decoder {
	return &decoder{types: pgtype.NewMap(), rels: map[uint32]*pglogrepl.RelationMessage{}}
}

// relation remembers a relation message.
func (d *decoder) relation(r *pglogrepl.RelationMessage) { d.rels[r.RelationID] = r }

func (d *decoder) rel(id uint32) (*pglogrepl.RelationMessage, error) {
	r, ok := d.rels[id]
	if !ok || r == nil {
		return nil, fmt.Errorf("change to relation %d before its relation message", id)
	}
	return r, nil
}

// changes decodes a row message (insert, update, delete, truncate) into the
// changes it carries; lsn is the message's WAL position. Other messages
// yield nothing.
func (d *decoder) changes(msg pglogrepl.Message, lsn pglogrepl.LSN) ([]change, error) {
	switch m := msg.(type) { // protocol 2 wraps the same messages
	case *pglogrepl.InsertMessageV2:
		msg = &m.InsertMessage
	case *pglogrepl.UpdateMessageV2:
		msg = &m.UpdateMessage
	case *pglogrepl.DeleteMessageV2:
		msg = &m.DeleteMessage
	case *pglogrepl.TruncateMessageV2:
		msg = &m.TruncateMessage
	}
	base := func(r *pglogrepl.RelationMessage, op string) change {
		return change{Schema: r.Namespace, Table: r.RelationName, Op: op, LSN: lsn.String()}
	}
	switch m := msg.(type) {
	case *pglogrepl.InsertMessage:
		r, err := d.rel(m.RelationID)
		if err != nil {
			return nil, err
		}
		c := base(r, opInsert)
		if c.New, c.Unchanged, err = d.tuple(r, m.Tuple, false); err != nil {
			return nil, err
		}
		return []change{c}, nil
	case *pglogrepl.UpdateMessage:
		r, err := d.rel(m.RelationID)
		if err != nil {
			return nil, err
		}
		c := base(r, opUpdate)
		if m.OldTuple != nil {
			if c.Old, _, err = d.tuple(r, m.OldTuple, m.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey); err != nil {
				return nil, err
			}
		}
		if c.New, c.Unchanged, err = d.tuple(r, m.NewTuple, false); err != nil {
			return nil, err
		}
		// With REPLICA IDENTITY FULL the old row has what TOAST left out.
		kept := c.Unchanged[:0]
		for _, col := range c.Unchanged {
			if v, ok := c.Old[col]; ok && m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld {
				c.New[col] = v
				continue
			}
			kept = append(kept, col)
		}
		c.Unchanged = kept
		if len(c.Unchanged) == 0 {
			c.Unchanged = nil
		}
		return []change{c}, nil
	case *pglogrepl.DeleteMessage:
		r, err := d.rel(m.RelationID)
		if err != nil {
			return nil, err
		}
		c := base(r, opDelete)
		if c.Old, _, err = d.tuple(r, m.OldTuple, m.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey); err != nil {
			return nil, err
		}
		return []change{c}, nil
	case *pglogrepl.TruncateMessage:
		out := make([]change, 0, len(m.RelationIDs))
		for _, id := range m.RelationIDs {
			r, err := d.rel(id)
			if err != nil {
				return nil, err
			}
			out = append(out, base(r, opTruncate))
		}
		return out, nil
	}
	return nil, nil
}

// tuple decodes a row's columns. keyOnly keeps the replica identity's key
// columns only (the server sends the others as null). Unchanged TOASTed
// columns are left out and listed.
func (d *decoder) tuple(r *pglogrepl.RelationMessage, t *pglogrepl.TupleData, keyOnly bool) (map[string]any, []string, error) {
	if t == nil {
		return nil, nil, nil
	}
	if len(t.Columns) > len(r.Columns) {
		return nil, nil, fmt.Errorf("%s.%s: row has %d columns, the relation %d", r.Namespace, r.RelationName, len(t.Columns), len(r.Columns))
	}
	row := make(map[string]any, len(t.Columns))
	var unchanged []string
	for i, c := range t.Columns {
		rc := r.Columns[i]
		if c == nil || rc == nil {
			continue
		}
		if keyOnly && rc.Flags&1 == 0 {
			continue
		}
		if c.DataType == pglogrepl.TupleDataTypeToast {
			unchanged = append(unchanged, rc.Name)
			continue
		}
		row[rc.Name] = d.value(rc.DataType, c)
	}
	return row, unchanged, nil
}

// value decodes one column value of type oid.
func (d *decoder) value(oid uint32, c *pglogrepl.TupleDataColumn) any {
	switch c.DataType {
	case pglogrepl.TupleDataTypeText:
		return textValue(d.types, oid, c.Data)
	case pglogrepl.TupleDataTypeBinary:
		if v, ok := decodeTyped(d.types, oid, pgtype.BinaryFormatCode, c.Data); ok {
			return v
		}
		return append([]byte(nil), c.Data...) // base64 in JSON
	}
	return nil // 'n': NULL
}

// textValue decodes a column in PostgreSQL's text format into a value that
// encodes to JSON faithfully; whatever is not understood stays text.
func textValue(m *pgtype.Map, oid uint32, data []byte) any {
	switch oid {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.XMLOID:
		return string(data)
	case pgtype.JSONOID, pgtype.JSONBOID:
		if json.Valid(data) {
			return json.RawMessage(append([]byte(nil), data...))
		}
		return string(data)
	case pgtype.NumericOID:
		if sqljson.IsNumber(data) {
			return json.Number(string(data))
		}
		return string(data) // NaN, Infinity, -Infinity
	}
	if v, ok := decodeTyped(m, oid, pgtype.TextFormatCode, data); ok {
		return v
	}
	return string(data)
}

// decodeTyped decodes with pgx's codec for oid and keeps the result only
// when it is one of the JSON-friendly kinds.
func decodeTyped(m *pgtype.Map, oid uint32, format int16, data []byte) (v any, ok bool) {
	t, known := m.TypeForOID(oid)
	if !known || t.Codec == nil {
		return nil, false
	}
	defer func() {
		if recover() != nil {
			v, ok = nil, false
		}
	}()
	raw, err := t.Codec.DecodeValue(m, oid, format, data)
	if err != nil {
		return nil, false
	}
	return jsonValue(m, oid, raw)
}

// jsonValue converts a decoded value of type oid to one json.Marshal
// encodes faithfully, or reports that it cannot.
func jsonValue(m *pgtype.Map, oid uint32, v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool, string, int16, int32, int64, int, uint32, uint64:
		return x, true
	case float32:
		return sqljson.Float(float64(x)), true
	case float64:
		return sqljson.Float(x), true
	case []byte:
		return x, true
	case [16]byte: // uuid
		return formatUUID(x), true
	case time.Time:
		switch oid {
		case pgtype.DateOID:
			return x.Format("2006-01-02"), true
		case pgtype.TimestampOID:
			return x.Format("2006-01-02T15:04:05.999999"), true
		case pgtype.TimestamptzOID:
			return x.UTC().Format(time.RFC3339Nano), true
		}
		return nil, false
	case pgtype.InfinityModifier:
		switch x {
		case pgtype.Infinity:
			return "infinity", true
		case pgtype.NegativeInfinity:
			return "-infinity", true
		}
		return nil, false
	case pgtype.Numeric:
		b, err := x.MarshalJSON()
		if err != nil || !json.Valid(b) {
			return nil, false
		}
		return json.RawMessage(b), true
	case []any: // a one-dimensional or flattened array
		elem := uint32(0)
		if t, ok := m.TypeForOID(oid); ok {
			if ac, ok := t.Codec.(*pgtype.ArrayCodec); ok && ac.ElementType != nil {
				elem = ac.ElementType.OID
			}
		}
		out := make([]any, len(x))
		for i, e := range x {
			var ok bool
			if out[i], ok = jsonValue(m, elem, e); !ok {
				return nil, false
			}
		}
		return out, true
	case map[string]any: // json elements of an array
		if b, err := json.Marshal(x); err == nil {
			return json.RawMessage(b), true
		}
		return nil, false
	}
	return nil, false
}

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
