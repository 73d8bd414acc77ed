package mysql

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/switchyard-io/switchyard/connectors/internal/sqljson"
)

// kind is how a column's values are rendered in JSON.
type kind uint8

// Column kinds.
const (
	kindPlain   kind = iota // numbers as numbers, strings as strings
	kindDecimal             // DECIMAL: a JSON number from its exact text
	kindBinary              // binary strings and blobs: base64
	kindJSON                // MySQL JSON: embedded
	kindEnum                // ENUM: index → value
	kindSet                 // SET: bitmask → comma-separated values
)

// column describes one column of a table as far as it is known.
type column struct {
	Name     string
	Kind     kind
	Unsigned bool
	Size     int      // integer byte width, for unsigned values decoded as signed
	Values   []string // ENUM or SET values
}

// binaryCollation is the collation id of binary strings.
const binaryCollation = 63

// columnsFromTableMap describes the columns from a table map event with
// full row metadata (binlog_row_metadata=FULL); ok is false without it.
func columnsFromTableMap(t *replication.TableMapEvent) (cols []column, ok bool) {
	if t == nil || len(t.ColumnName) == 0 || uint64(len(t.ColumnName)) != t.ColumnCount || len(t.ColumnType) < int(t.ColumnCount) {
		return nil, false
	}
	defer func() { // the metadata helpers trust the server's lengths
		if recover() != nil {
			cols, ok = nil, false
		}
	}()
	unsigned := t.UnsignedMap()
	collations := t.CollationMap()
	enums := t.EnumStrValueMap()
	sets := t.SetStrValueMap()
	names := t.ColumnNameString()
	cols = make([]column, t.ColumnCount)
	for i := range cols {
		c := column{Name: names[i], Unsigned: unsigned[i], Size: intSize(t.ColumnType[i])}
		switch {
		case t.IsEnumColumn(i):
			c.Kind, c.Values = kindEnum, enums[i]
		case t.IsSetColumn(i):
			c.Kind, c.Values = kindSet, sets[i]
		case t.ColumnType[i] == gomysql.MYSQL_TYPE_NEWDECIMAL || t.ColumnType[i] == gomysql.MYSQL_TYPE_DECIMAL:
			c.Kind = kindDecimal
		case t.ColumnType[i] == gomysql.MYSQL_TYPE_JSON:
			c.Kind = kindJSON
		case t.ColumnType[i] == gomysql.MYSQL_TYPE_GEOMETRY:
			c.Kind = kindBinary
		case t.IsCharacterColumn(i):
			if coll, ok := collations[i]; ok && coll == binaryCollation {
				c.Kind = kindBinary
			}
		}
		cols[i] = c
	}
	return cols, true
}

func intSize(t byte) int {
	switch t {
	case gomysql.MYSQL_TYPE_TINY:
		return 1
	case gomysql.MYSQL_TYPE_SHORT:
		return 2
	case gomysql.MYSQL_TYPE_INT24:
		return 3
	case gomysql.MYSQL_TYPE_LONG:
		return 4
	case gomysql.MYSQL_TYPE_LONGLONG:
		return 8
	}
	return 0
}

// schemaColumn is a row of information_schema.COLUMNS.
type schemaColumn struct {
	Name, DataType, ColumnType string
}

// columnsFromSchema describes columns from information_schema.COLUMNS
// (in ordinal order), for servers without full row metadata.
func columnsFromSchema(rows []schemaColumn) []column {
	cols := make([]column, len(rows))
	for i, r := range rows {
		c := column{Name: r.Name}
		ct := strings.ToLower(r.ColumnType)
		c.Unsigned = strings.Contains(ct, "unsigned")
		switch strings.ToLower(r.DataType) {
		case "tinyint":
			c.Size = 1
		case "smallint":
			c.Size = 2
		case "mediumint":
			c.Size = 3
		case "int", "integer":
			c.Size = 4
		case "bigint":
			c.Size = 8
		case "decimal", "numeric":
			c.Kind = kindDecimal
		case "json":
			c.Kind = kindJSON
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
			"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
			c.Kind = kindBinary
		case "enum":
			c.Kind, c.Values = kindEnum, parseValues(r.ColumnType)
		case "set":
			c.Kind, c.Values = kindSet, parseValues(r.ColumnType)
		}
		cols[i] = c
	}
	return cols
}

// parseValues reads the values of a column type like enum('a','b”c').
func parseValues(columnType string) []string {
	open := strings.IndexByte(columnType, '(')
	if open < 0 {
		return nil
	}
	s := columnType[open+1:]
	var out []string
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" || s[0] != '\'' {
			return out
		}
		var b strings.Builder
		i := 1
		for ; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
		if i >= len(s) {
			return out
		}
		s = s[i+1:]
	}
}

// rowJSON turns one decoded row image into column → value. Columns the
// image does not carry (skipped, with binlog_row_image=MINIMAL or NOBLOB)
// are left out; columns beyond the description are named col_{n}.
func rowJSON(cols []column, row []any, skipped []int) map[string]any {
	skip := map[int]bool{}
	for _, i := range skipped {
		skip[i] = true
	}
	out := make(map[string]any, len(row))
	for i, v := range row {
		if skip[i] {
			continue
		}
		c := column{Name: "col_" + strconv.Itoa(i+1)}
		if i < len(cols) {
			c = cols[i]
			if c.Name == "" {
				c.Name = "col_" + strconv.Itoa(i+1)
			}
		}
		out[c.Name] = value(c, v)
	}
	return out
}

// value renders one column value (any type go-mysql's row decoding yields)
// as something json.Marshal encodes faithfully.
func value(c column, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int8:
		return integer(c, int64(x))
	case int16:
		return integer(c, int64(x))
	case int32:
		return integer(c, int64(x))
	case int64:
		return integer(c, x)
	case int:
		return integer(c, int64(x))
	case uint8, uint16, uint32, uint64, uint:
		return x
	case float32:
		return sqljson.Float(float64(x))
	case float64:
		return sqljson.Float(x)
	case bool:
		return x
	case string:
		return text(c, []byte(x), x)
	case []byte:
		return text(c, x, "")
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case json.Number:
		if sqljson.IsNumber([]byte(x)) {
			return x
		}
		return string(x)
	}
	return fmt.Sprint(v) // decimal.Decimal, …; fmt survives a panicking String method
}

// integer renders an integer: unsigned columns decoded as signed values
// are reinterpreted, ENUM indexes and SET bitmasks become their values.
func integer(c column, n int64) any {
	switch c.Kind {
	case kindEnum:
		if n == 0 {
			return "" // the error value
		}
		if n > 0 && n <= int64(len(c.Values)) {
			return c.Values[n-1]
		}
		return n
	case kindSet:
		if len(c.Values) == 0 {
			return n
		}
		var names []string
		for i := range min(len(c.Values), 64) {
			if uint64(n)&(1<<uint(i)) != 0 {
				names = append(names, c.Values[i])
			}
		}
		return strings.Join(names, ",")
	}
	if c.Unsigned && n < 0 {
		switch c.Size {
		case 1:
			return uint64(uint8(n))
		case 2:
			return uint64(uint16(n))
		case 3:
			return uint64(uint32(n) & 0xFFFFFF)
		case 4:
			return uint64(uint32(n))
		default:
			return uint64(n)
		}
	}
	return n
}

// text renders a string or byte value by the column's kind.
func text(c column, b []byte, s string) any {
	switch c.Kind {
	case kindBinary:
		return append([]byte(nil), b...) // base64
	case kindJSON:
		if json.Valid(b) {
			return json.RawMessage(append([]byte(nil), b...))
		}
	case kindDecimal:
		if sqljson.IsNumber(b) {
			return json.Number(string(b))
		}
	}
	if s == "" {
		s = string(b)
	}
	return s // invalid UTF-8 is replaced by U+FFFD when encoded
}
