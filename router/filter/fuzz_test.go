package filter

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

// specBuilder turns fuzz bytes into a Spec tree: each byte is an operation
// (add a condition, open a sub-filter, close the current level, ...) or an
// operand (which attribute name, which value).
type specBuilder struct {
	ops      []byte
	sql, cel string
	nodes    int
}

var (
	fuzzNames  = []string{"type", "source", "subject", "id", "specversion", "time", "tenant", "count", "flag", "Bad", "", "a-b", "datacontenttype"}
	fuzzValues = []string{"", "com.example.order.created", "/shop/", "/shop/eu", "eu-", ".created", "42", "true", "acme", "2024-05-01T10:30:00Z"}
	fuzzSQL    = []string{"subject LIKE 'eu-%'", "EXISTS tenant", "count > 10", "FOO(1)", "a =", "1 + 1", "flag", "type = 'x' OR"}
	fuzzCEL    = []string{"data.total > 100", "'tenant' in extensions", "extensions.count == 42", "nope", "1", "size(data) > 0 ||", "time > timestamp('2020-01-01T00:00:00Z')"}
)

func (sb *specBuilder) next() (byte, bool) {
	if len(sb.ops) == 0 {
		return 0, false
	}
	b := sb.ops[0]
	sb.ops = sb.ops[1:]
	return b, true
}

func (sb *specBuilder) pick(list []string) string {
	b, _ := sb.next()
	return list[int(b)%len(list)]
}

func (sb *specBuilder) build() Spec {
	var s Spec
	for sb.nodes < 300 {
		op, ok := sb.next()
		if !ok {
			return s
		}
		sb.nodes++
		switch op % 12 {
		case 0:
			return s
		case 1:
			if s.Attributes == nil {
				s.Attributes = map[string]string{}
			}
			s.Attributes[sb.pick(fuzzNames)] = sb.pick(fuzzValues)
		case 2:
			if s.Prefix == nil {
				s.Prefix = map[string]string{}
			}
			s.Prefix[sb.pick(fuzzNames)] = sb.pick(fuzzValues)
		case 3:
			if s.Suffix == nil {
				s.Suffix = map[string]string{}
			}
			s.Suffix[sb.pick(fuzzNames)] = sb.pick(fuzzValues)
		case 4:
			s.CESQL = sb.sql
		case 5:
			s.CEL = sb.cel
		case 6:
			s.CESQL = sb.pick(fuzzSQL)
		case 7:
			s.CEL = sb.pick(fuzzCEL)
		case 8:
			s.All = append(s.All, sb.build())
		case 9:
			s.Any = append(s.Any, sb.build())
		case 10:
			sub := sb.build()
			s.Not = &sub
		case 11:
			// A random value: part of the free strings.
			if s.Attributes == nil {
				s.Attributes = map[string]string{}
			}
			s.Attributes[sb.pick(fuzzNames)] = sb.sql + sb.cel
		}
	}
	return s
}

// fuzzEvents are the events compiled filters are run against.
var fuzzEvents = []*pb.CloudEvent{
	testEvent(),
	testEvent(withAttr("subject", ceString("eu-1")), withAttr("tenant", ceString("acme")), withAttr("count", ceInt(42)),
		withAttr("flag", ceBool(true)), withAttr("time", ceTime(time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC))),
		withText("application/json", `{"total": 150, "items": [1, 2]}`)),
	testEvent(withType("other"), withSource("/x"), withBinary("", []byte{0xff, 0})),
	nil,
}

func FuzzCompile(f *testing.F) {
	f.Add([]byte{}, "", "")
	f.Add([]byte{4}, "subject LIKE 'eu-%'", "data.total > 100")
	f.Add([]byte{4, 5}, "subject LIKEE 'eu-%'", "data.total >")
	f.Add([]byte{1, 0, 1, 8, 2, 3, 4, 0, 9, 5, 0, 10, 6, 1}, "count = 4294967296", "extensions.count == 42")
	f.Add([]byte{8, 8, 8, 8, 9, 9, 10, 10, 1, 2, 3}, "NOT EXISTS tenant OR tenant <> 'x'", "has(data.items) && data.items.all(x, x > 0)")
	f.Add([]byte{4, 5}, "a IN ()", "[1,2,3].map(x, x * 2)")
	f.Add([]byte{4, 5}, "'unterminated", "'unterminated")
	f.Add([]byte{4, 5}, "\x00\xff(((", "\xff{{{")
	f.Add([]byte{4, 5}, "ABS(-2147483648) = 1 AND LENGTH(subject) + 1 > 2 XOR flag", "type(data) == map && 'a'.matches('^a+$')")
	f.Add([]byte(strings.Repeat("\x0a", 40)), "", "")
	f.Fuzz(func(t *testing.T, ops []byte, sql, celSrc string) {
		sb := &specBuilder{ops: ops, sql: sql, cel: celSrc}
		spec := sb.build()
		flt, err := Compile(spec)
		if err != nil {
			if flt != nil {
				t.Fatalf("Compile returned both a filter and an error: %v", err)
			}
			list := CompileErrors(err)
			if len(list) == 0 {
				t.Fatalf("error contains no *CompileError: %T %v", err, err)
			}
			if joined, ok := err.(interface{ Unwrap() []error }); ok && len(joined.Unwrap()) != len(list) {
				t.Fatalf("joined error has %d errors but %d *CompileError", len(joined.Unwrap()), len(list))
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("errors.As(*CompileError) failed on %v", err)
			}
			for _, e := range list {
				if !strings.HasPrefix(e.Path, "filter") || e.Msg == "" || e.Line < 0 || e.Column < 0 || (e.Line == 0) != (e.Column == 0) {
					t.Fatalf("malformed CompileError %#v", e)
				}
			}
			return
		}
		if flt == nil {
			t.Fatal("Compile returned neither a filter nor an error")
		}
		ix := NewIndex([]Entry{{Name: "x", Spec: spec, Filter: flt}})
		reused := &Input{}
		for _, ev := range fuzzEvents {
			got := flt.Match(NewInput(ev))
			reused.Reset(ev)
			if again := flt.Match(reused); again != got {
				t.Fatalf("Match not deterministic: %v then %v", got, again)
			}
			if spec.IsEmpty() && !got {
				t.Fatal("an empty spec must match everything")
			}
			if fromIndex := len(ix.Match(NewInput(ev), nil)) == 1; fromIndex != got {
				t.Fatalf("index says %v, filter says %v for %+v", fromIndex, got, spec)
			}
		}
	})
}

// FuzzMatch runs a fixed set of filters over events built from fuzz input
// (content type, data, extension values): evaluation must never panic and
// must not depend on the Input being fresh or reused.
func FuzzMatch(f *testing.F) {
	specs := []Spec{
		{CEL: "data.total > 100"},
		{CEL: "has(data.items) && data.items.exists(i, i == 'x')"},
		{CEL: "string(data).size() > 3 || size(data) > 3"},
		{CEL: "extensions.tenant == 'acme' || attributes.count == '42' || time > timestamp('2024-01-01T00:00:00Z')"},
		{CEL: "subject.startsWith('eu') && datacontenttype.contains('json')"},
		{CESQL: "tenant LIKE 'a%' OR count > 3 OR flag"},
		{CESQL: "EXISTS time AND time > '2024'"},
		{CESQL: "UPPER(subject) = 'EU' AND source = '/shop/eu'"},
		{Attributes: map[string]string{"tenant": "acme"}, Prefix: map[string]string{"subject": "eu"}, Suffix: map[string]string{"count": "2"}},
	}
	var filters []Filter
	for _, s := range specs {
		filters = append(filters, mustCompile(f, s))
	}
	f.Add("application/json", []byte(`{"total": 150, "items": ["x"]}`), true, "acme", int32(42), uint8(0))
	f.Add("", []byte(`[1, 2`), false, "", int32(-1), uint8(1))
	f.Add("text/plain; charset=utf-8", []byte("hello"), true, "a\x00", int32(0), uint8(2))
	f.Add("application/cloudevents+json", []byte(`"str"`), false, "x", int32(7), uint8(3))
	f.Add("text/csv", []byte{0xff, 0xfe}, false, "", int32(1), uint8(4))
	f.Fuzz(func(t *testing.T, ct string, data []byte, text bool, tenant string, count int32, shape uint8) {
		ev := testEvent()
		switch {
		case shape%5 == 4:
			// no data
		case text:
			withText(ct, string(data))(ev)
		default:
			withBinary(ct, data)(ev)
		}
		if shape&8 != 0 {
			withAttr("tenant", ceString(tenant))(ev)
		}
		if shape&16 != 0 {
			withAttr("count", ceInt(count))(ev)
		}
		if shape&32 != 0 {
			withAttr("subject", ceString(tenant))(ev)
		}
		if shape&64 != 0 {
			withAttr("time", ceString(tenant))(ev) // a malformed time
		}
		if shape&128 != 0 {
			withAttr("flag", ceBytes(data))(ev)
		}
		reused := &Input{}
		reused.Reset(testEvent(withText("application/json", `{"total": 1}`)))
		for _, flt := range filters {
			flt.Match(reused) // fill the caches with another event first
		}
		reused.Reset(ev)
		fresh := NewInput(ev)
		for i, flt := range filters {
			if a, b := flt.Match(fresh), flt.Match(reused); a != b {
				t.Fatalf("filter %d: fresh Input says %v, reused says %v", i, a, b)
			}
		}
	})
}
