package postgres

import (
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
)

// relationMsg encodes a pgoutput Relation message.
func relationMsg(id uint32, schema, table string, cols []*pglogrepl.RelationMessageColumn) []byte {
	b := []byte{'R'}
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(append(b, schema...), 0)
	b = append(append(b, table...), 0)
	b = append(b, 'd')
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		b = append(b, c.Flags)
		b = append(append(b, c.Name...), 0)
		b = binary.BigEndian.AppendUint32(b, c.DataType)
		b = binary.BigEndian.AppendUint32(b, uint32(c.TypeModifier))
	}
	return b
}

// tupleMsg encodes an Insert ('I', tuple 'N') or Delete ('D', tuple 'K').
func tupleMsg(kind, tuple byte, id uint32, vals [][]byte) []byte {
	b := []byte{kind}
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(b, tuple)
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for _, v := range vals {
		if v == nil {
			b = append(b, 'n')
			continue
		}
		b = append(b, 't')
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

func checkJSON(t *testing.T, c change) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("marshal %#v: %v", c, err)
	}
	if !json.Valid(b) {
		t.Fatalf("invalid JSON %q", b)
	}
}

func TestParseAndDecode(t *testing.T) {
	d := newDecoder()
	rel := relationMsg(7, "public", "t", []*pglogrepl.RelationMessageColumn{
		{Flags: 1, Name: "id", DataType: pgtype.Int4OID}, {Name: "tags", DataType: pgtype.TextArrayOID},
		{Name: "price", DataType: pgtype.NumericOID}, {Name: "doc", DataType: pgtype.JSONBOID},
	})
	m, err := parseMessage(rel, false, false)
	if err != nil {
		t.Fatal(err)
	}
	d.relation(m.(*pglogrepl.RelationMessage))
	ins, err := parseMessage(tupleMsg('I', 'N', 7, [][]byte{[]byte("42"), []byte(`{a,"b c"}`), []byte("1.50"), []byte(`{"x": 1}`)}), false, false)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := d.changes(ins, 0x16B3748)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cs[0])
	want := `{"schema":"public","table":"t","op":"insert","new":{"doc":{"x":1},"id":42,"price":1.50,"tags":["a","b c"]},"lsn":"0/16B3748","commit_lsn":"","xid":0}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	// A key-only old tuple keeps the key columns.
	del, _ := parseMessage(tupleMsg('D', 'K', 7, [][]byte{[]byte("42"), nil, nil, nil}), false, false)
	cs, err = d.changes(del, 1)
	if err != nil || len(cs[0].Old) != 1 || cs[0].Old["id"] != int32(42) {
		t.Fatalf("delete %v %v", cs, err)
	}
	// Truncated or unknown input is an error, not a panic.
	for _, bad := range [][]byte{{}, {'I'}, rel[:10], tupleMsg('I', 'N', 7, [][]byte{[]byte("1")})[:12], {'U', 0, 0, 0, 7, 'K', 0, 1, 't', 0xff, 0xff, 0xff, 0xff},
		{'T', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 7}, // a billion relations: refused before allocating
		{'I', 0, 0, 0, 7, 'N', 0, 1, 't', 0xff, 0xff, 0xff, 0xf0, 'x'},
		{'M', 1, 0, 0, 0, 0, 0, 0, 0, 1, 'p', 0, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := parseMessage(bad, false, false); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := d.changes(&pglogrepl.InsertMessage{RelationID: 99, Tuple: &pglogrepl.TupleData{}}, 0); err == nil {
		t.Error("a change to an unknown relation decoded")
	}
}

// oids are the column types the fuzzers pick from (and any other).
var oids = []uint32{
	pgtype.BoolOID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.Float4OID, pgtype.Float8OID, pgtype.NumericOID,
	pgtype.TextOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.ByteaOID, pgtype.UUIDOID, pgtype.TimestampOID, pgtype.TimestamptzOID,
	pgtype.DateOID, pgtype.TimeOID, pgtype.IntervalOID, pgtype.Int4ArrayOID, pgtype.TextArrayOID, pgtype.JSONBArrayOID,
	pgtype.NumericArrayOID, pgtype.Float8ArrayOID, pgtype.TimestamptzArrayOID, pgtype.UUIDArrayOID, pgtype.ByteaArrayOID,
	pgtype.InetOID, pgtype.PointOID, pgtype.OIDOID, pgtype.Int4rangeOID, pgtype.BitOID,
}

// FuzzDecodeTuple feeds arbitrary column values of every type to the
// tuple decoder: it must not panic and must always yield encodable JSON.
func FuzzDecodeTuple(f *testing.F) {
	f.Add([]byte{0, 1, 2}, []byte("42"), byte('t'), false)
	f.Add([]byte{6}, []byte("NaN"), byte('t'), true)
	f.Add([]byte{17, 20}, []byte(`{1,NULL,"x"}`), byte('t'), false)
	f.Add([]byte{12, 13}, []byte("infinity"), byte('t'), false)
	f.Add([]byte{8, 19}, []byte(`[{"a":1e400}]`), byte('t'), false)
	f.Add([]byte{10}, []byte(`\x00ff`), byte('b'), false)
	f.Add([]byte{255, 254}, []byte("\xff\xfe"), byte('u'), true)
	f.Fuzz(func(t *testing.T, types []byte, value []byte, kind byte, key bool) {
		if len(types) > 64 {
			types = types[:64]
		}
		d := newDecoder()
		rel := &pglogrepl.RelationMessage{RelationID: 1, Namespace: "s", RelationName: "t"}
		tuple := &pglogrepl.TupleData{}
		for i, ty := range types {
			oid := uint32(ty) * 7919 // some unknown type
			if int(ty) < len(oids) {
				oid = oids[ty]
			}
			rel.Columns = append(rel.Columns, &pglogrepl.RelationMessageColumn{Flags: ty & 1, Name: string(rune('a' + i%26)), DataType: oid})
			tuple.Columns = append(tuple.Columns, &pglogrepl.TupleDataColumn{DataType: kind, Data: value})
		}
		d.relation(rel)
		keyType := uint8(pglogrepl.UpdateMessageTupleTypeOld)
		if key {
			keyType = pglogrepl.UpdateMessageTupleTypeKey
		}
		for _, msg := range []pglogrepl.Message{
			&pglogrepl.InsertMessage{RelationID: 1, Tuple: tuple},
			&pglogrepl.UpdateMessage{RelationID: 1, OldTupleType: keyType, OldTuple: tuple, NewTuple: tuple},
			&pglogrepl.DeleteMessage{RelationID: 1, OldTupleType: keyType, OldTuple: tuple},
		} {
			cs, err := d.changes(msg, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				checkJSON(t, c)
			}
		}
	})
}

// FuzzParseMessage feeds arbitrary bytes to pglogrepl's Parse and ParseV2
// (through parseMessage) and decodes whatever they return: a relation
// message followed by a row message.
func FuzzParseMessage(f *testing.F) {
	rel := relationMsg(7, "public", "t", []*pglogrepl.RelationMessageColumn{{Flags: 1, Name: "id", DataType: pgtype.Int4OID}, {Name: "v", DataType: pgtype.JSONBOID}})
	f.Add(rel, tupleMsg('I', 'N', 7, [][]byte{[]byte("1"), []byte(`{}`)}), false, false)
	f.Add(rel, tupleMsg('D', 'K', 7, [][]byte{[]byte("1"), nil}), true, false)
	f.Add(rel, []byte{'T', 0, 0, 0, 1, 0, 0, 0, 0, 7}, false, false)
	f.Add(rel, []byte{'U', 0, 0, 0, 7, 'N', 0, 2, 'n', 'u'}, true, true)
	f.Add([]byte{'B'}, []byte{'C', 0}, false, false)
	f.Fuzz(func(t *testing.T, first, second []byte, v2, inStream bool) {
		d := newDecoder()
		for _, b := range [][]byte{first, second} {
			m, err := parseMessage(b, v2, inStream)
			if err != nil {
				continue
			}
			if r, ok := m.(*pglogrepl.RelationMessage); ok {
				d.relation(r)
			}
			if r, ok := m.(*pglogrepl.RelationMessageV2); ok {
				d.relation(&r.RelationMessage)
			}
			cs, err := d.changes(m, 2)
			if err != nil {
				continue
			}
			for _, c := range cs {
				checkJSON(t, c)
			}
		}
	})
}
