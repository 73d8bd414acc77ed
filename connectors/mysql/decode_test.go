package mysql

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestParseValues(t *testing.T) {
	cases := map[string][]string{
		"enum('a','b')":            {"a", "b"},
		"set('x','it''s','a,b')":   {"x", "it's", "a,b"},
		"enum('','back\\\\slash')": {"", "back\\slash"},
		"enum(":                    nil,
		"int(11)":                  nil,
		"enum('unterminated":       {"unterminated"},
	}
	for in, want := range cases {
		if got := parseValues(in); !reflect.DeepEqual(got, want) {
			t.Errorf("parseValues(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValue(t *testing.T) {
	enum := column{Kind: kindEnum, Values: []string{"s", "m"}}
	set := column{Kind: kindSet, Values: []string{"a", "b", "c"}}
	cases := []struct {
		c    column
		v    any
		want string
	}{
		{column{}, int32(-5), "-5"},
		{column{Unsigned: true, Size: 1}, int8(-6), "250"},
		{column{Unsigned: true, Size: 3}, int32(-1), "16777215"},
		{column{Unsigned: true, Size: 8}, int64(-1), "18446744073709551615"},
		{enum, int64(2), `"m"`},
		{enum, int64(0), `""`},
		{enum, int64(9), "9"},
		{set, int64(5), `"a,c"`},
		{set, int64(0), `""`},
		{column{Kind: kindDecimal}, "-12.50", "-12.50"},
		{column{Kind: kindDecimal}, "1e", `"1e"`},
		{column{Kind: kindJSON}, []byte(`{"a":1}`), `{"a":1}`},
		{column{Kind: kindJSON}, []byte(`{bad`), `"{bad"`},
		{column{Kind: kindBinary}, "\x00\xff", `"AP8="`},
		{column{}, []byte("text"), `"text"`},
		{column{}, math.NaN(), `"NaN"`},
		{column{}, float32(1.5), "1.5"},
		{column{}, nil, "null"},
		{column{}, decimal.RequireFromString("3.14"), `"3.14"`},
		{column{}, time.Date(2024, 2, 29, 1, 2, 3, 0, time.UTC), `"2024-02-29T01:02:03Z"`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(value(tc.c, tc.v))
		if err != nil || string(b) != tc.want {
			t.Errorf("value(%+v, %#v) = %s (%v), want %s", tc.c, tc.v, b, err, tc.want)
		}
	}
	row := rowJSON([]column{{Name: "id"}}, []any{int32(1), "extra", "skipped"}, []int{2})
	if b, _ := json.Marshal(row); string(b) != `{"col_2":"extra","id":1}` {
		t.Errorf("rowJSON = %s", b)
	}
}

// fuzzValue builds a value of one of the Go types go-mysql's row decoding
// yields (and a few it might) from b.
func fuzzValue(k byte, b []byte) any {
	var n uint64
	if len(b) >= 8 {
		n = binary.LittleEndian.Uint64(b)
	} else {
		var pad [8]byte
		copy(pad[:], b)
		n = binary.LittleEndian.Uint64(pad[:])
	}
	switch k % 20 {
	case 0:
		return nil
	case 1:
		return int8(n)
	case 2:
		return int16(n)
	case 3:
		return int32(n)
	case 4:
		return int64(n)
	case 5:
		return uint8(n)
	case 6:
		return uint16(n)
	case 7:
		return uint32(n)
	case 8:
		return n
	case 9:
		return math.Float32frombits(uint32(n))
	case 10:
		return math.Float64frombits(n)
	case 11:
		return string(b)
	case 12:
		return b
	case 13:
		d, err := decimal.NewFromString(string(b))
		if err != nil {
			return decimal.New(int64(n), int32(int8(n>>8)))
		}
		return d
	case 14:
		return time.Unix(int64(n%(1<<40)), 0)
	case 15:
		return int(n)
	case 16:
		return json.Number(b)
	case 17:
		return []int{int(n)}
	case 18:
		return (*decimal.Decimal)(nil)
	}
	return k%2 == 0
}

// FuzzRowJSON feeds column descriptions of every kind and values of many
// Go types to the row converter: it must not panic and must always yield
// encodable JSON.
func FuzzRowJSON(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, []byte{4, 11, 12, 13}, []byte("12.50"), []byte("a,b"))
	f.Add([]byte{4, 5}, []byte{3, 4}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte("x"))
	f.Add([]byte{2, 3}, []byte{11, 12}, []byte(`{"a":[1,2]}`), []byte("\xff\xfe"))
	f.Add([]byte{1}, []byte{10, 9}, []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f}, []byte{})
	f.Fuzz(func(t *testing.T, kinds, types, v1, v2 []byte) {
		if len(kinds) > 32 {
			kinds = kinds[:32]
		}
		cols := make([]column, len(kinds))
		for i, k := range kinds {
			cols[i] = column{Name: string(rune('a' + i)), Kind: kind(k % 6), Unsigned: k&8 != 0, Size: int(k>>4) % 9,
				Values: parseValues("enum(" + string(v2) + ")")}
		}
		row := make([]any, len(types))
		for i, ty := range types {
			src := v1
			if i%2 == 1 {
				src = v2
			}
			row[i] = fuzzValue(ty, src)
		}
		var skipped []int
		if len(v2) > 0 {
			skipped = []int{int(v2[0]) % (len(row) + 1)}
		}
		b, err := json.Marshal(change{DB: "d", Table: "t", Op: "insert", New: rowJSON(cols, row, skipped), Old: rowJSON(nil, row, nil)})
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %q", b)
		}
	})
}
