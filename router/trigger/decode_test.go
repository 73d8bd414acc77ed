package trigger

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/router/filter"
)

// located renders errors as "line: path: msg" lines for comparison.
func located(errs FileErrors) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

func TestDecodeReportsEveryProblemWithPathAndLine(t *testing.T) {
	cases := map[string]struct {
		in   string
		want []string // each a prefix of one error, in order
	}{
		"yaml, unknown keys and wrong types": {
			in: `name: orders
filter:
  attributes:
    type: com.example.order
  colour: red
target:
  grpc: fn:7070
delivery:
  timeout: soon
  max_attempts: eight
  max_concurrency: [1]
  bogus: 1
`,
			want: []string{
				`line 5: filter.colour: unknown field; want one of attributes, prefix, suffix, cesql, cel, all, any, not`,
				`line 9: delivery.timeout: want a duration such as 500ms, 10s, 5m or 24h, got "soon"`,
				`line 10: delivery.max_attempts: want an integer, got "eight"`,
				`line 11: delivery.max_concurrency: want an integer, got a list`,
				`line 12: delivery.bogus: unknown field`,
			},
		},
		"multi-document yaml": {
			in: `name: a
target: {grpc: "h:1"}
---
# second
name: b
target: {grpc: "h:1", http: x}
filter:
  all:
    - cel: "true"
    - cesl: x
---
name: 42
target: "h:1"
`,
			want: []string{
				`line 6: target.http: unknown field; want one of grpc, url`,
				`line 10: filter.all[1].cesl: unknown field`,
				`line 12: name: want a string, got 42 (quote it: "42")`,
				`line 13: target: want a mapping (grpc, url, pull, publish, tls, auth), got "h:1"`,
			},
		},
		"json object": {
			in: "{\n  \"name\": \"a\",\n  \"target\": {\"grpc\": \"h:1\"},\n  \"delivery\": {\n    \"max_queue\": \"10\",\n    \"timeout\": true\n  },\n  \"x\": null\n}\n",
			want: []string{
				`line 5: delivery.max_queue: want an integer, got "10"`,
				`line 6: delivery.timeout: want a duration such as 500ms, 10s, 5m or 24h, got true`,
				`line 8: x: unknown field`,
			},
		},
		"json array": {
			in: "[\n {\"name\": \"a\", \"target\": {\"grpc\": \"h:1\"}},\n {\"name\": \"b\",\n  \"filter\": {\"prefix\": {\"type\": 1}},\n  \"filter\": {}}\n]",
			want: []string{
				`line 4: filter.prefix.type: want a string, got 1 (quote it: "1")`,
				`line 5: filter: set twice (first on line 4)`,
			},
		},
		"yaml syntax error after a good document": {
			in: "name: a\ncolor: x\n---\nname: b\n  target: x\n",
			want: []string{
				`line 2: color: unknown field`,
				`line 5: invalid YAML: mapping values are not allowed in this context`,
			},
		},
		"json syntax error": {
			in:   "{\n  \"name\": \"a\",\n  \"target\": {\"grpc\": \"h:1\"\n}\n",
			want: []string{`line 4: invalid JSON: `},
		},
		"truncated json": {
			in:   "[{\"name\": \"a\"",
			want: []string{`line 1: invalid JSON: unexpected end of file`},
		},
		"two json values": {
			in:   "{\"name\": \"a\"}\n{\"name\": \"b\"}\n",
			want: []string{`line 2: invalid JSON: more than one JSON value`},
		},
		"not a trigger": {
			in:   "just text\n",
			want: []string{`line 1: want a trigger (a mapping of name, filter, target, delivery) or a list of them, got "just text"`},
		},
		"empty":      {in: " \n\t\n", want: []string{`empty trigger file`}},
		"only empty": {in: "---\n# nothing\n---\n", want: []string{`trigger file holds no trigger`}},
		"alias bomb": {
			in: `a: &a {all: [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}]}
b: &b {all: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]}
c: &c {all: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]}
d: &d {all: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]}
name: x
filter: {any: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}
`,
			want: []string{`line 1: a: unknown field`, `line 1: filter.any[`, `line 2: b: unknown field`, `line 3: c: unknown field`, `line 4: d: unknown field`},
		},
		"too many problems": {
			in:   strings.Repeat("x: 1\n", 150),
			want: append(slices.Repeat([]string{"line "}, 100), "line 101: more than 100 problems; stopped reporting"),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, errs := Decode([]byte(tc.in))
			got := located(errs)
			if len(got) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if name == "alias bomb" && i == 1 && !strings.Contains(got[i], "YAML aliases expand to more than 10000 values") {
					t.Errorf("alias expansion not bounded: %s", got[i])
				}
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, got[i], w)
				}
			}
			if _, err := Parse([]byte(tc.in)); err == nil {
				t.Error("Parse accepted the file")
			}
		})
	}
}

func TestDecodeAcceptsYAMLAndJSONForms(t *testing.T) {
	want := Spec{
		Name:   "orders",
		Filter: filter.Spec{Attributes: map[string]string{"type": "t/1"}, Any: []filter.Spec{{CEL: "data.a > 1"}}, Not: &filter.Spec{}},
		Target: Target{GRPC: "h:1"},
		Delivery: Delivery{Timeout: Duration{1500 * time.Millisecond}, MaxAttempts: 3, MaxQueue: 1 << 40,
			MaxEventAge: Duration{2 * time.Second}},
	}
	inputs := map[string]string{
		"block yaml": `name: orders
description: ~
filter:
  attributes: {type: "t/1"}
  any:
    - cel: data.a > 1
  not: {}
target:
  grpc: "h:1"
  url:
delivery:
  timeout: 1500ms
  max_attempts: 3
  max_queue: 1099511627776
  max_event_age: 2
`,
		"flow yaml":  `{name: orders, filter: {attributes: {type: "t/1"}, any: [{cel: "data.a > 1"}], not: {}}, target: {grpc: "h:1"}, delivery: {timeout: 1.5, max_attempts: 3, max_queue: 1099511627776, max_event_age: 2s}}`,
		"json":       `{"name":"orders","filter":{"attributes":{"type":"t\/1"},"any":[{"cel":"data.a > 1"}],"not":{}},"target":{"grpc":"h:1","url":null},"delivery":{"timeout":"1.5s","max_attempts":3,"max_queue":1099511627776,"max_event_age":2}}`,
		"json array": "\xef\xbb\xbf[\n\t{\"name\":\"orders\",\"filter\":{\"attributes\":{\"type\":\"t/1\"},\"any\":[{\"cel\":\"data.a > 1\"}],\"not\":{}},\"target\":{\"grpc\":\"h:1\"},\"delivery\":{\"timeout\":1.5,\"max_attempts\":3,\"max_queue\":1099511627776,\"max_event_age\":\"2s\"}}\n]",
		"yaml list":  "- name: orders\n  filter: {attributes: {type: t/1}, any: [{cel: data.a > 1}], not: {}}\n  target: {grpc: 'h:1'}\n  delivery: {timeout: 1.5s, max_attempts: 3, max_queue: 1099511627776, max_event_age: 2s}\n",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			docs, errs := Decode([]byte(in))
			if errs != nil {
				t.Fatal(errs)
			}
			if len(docs) != 1 || !reflect.DeepEqual(docs[0].Spec, want) {
				t.Fatalf("got %+v\nwant %+v", docs, want)
			}
		})
	}
}

func TestDocumentValidateLocatesRuleErrors(t *testing.T) {
	in := `name: first
target: {grpc: "h:1"}
---
name: Bad_Name
filter:
  all:
    - cesql: "a LIKEE 'x'"
target:
  grpc: nohost
delivery:
  max_attempts: -2
  timeout: never
`
	docs, errs := Decode([]byte(in))
	if got := located(errs); len(got) != 1 || !strings.HasPrefix(got[0], "line 12: delivery.timeout: want a duration") {
		t.Fatalf("decode errors: %v", got)
	}
	if len(docs) != 2 || docs[0].Index != 1 || docs[0].Line != 1 || docs[1].Index != 2 || docs[1].Line != 4 {
		t.Fatalf("documents: %+v", docs)
	}
	if v := docs[0].Validate(); v != nil {
		t.Fatalf("first document: %v", v)
	}
	got := located(docs[1].Validate())
	want := []string{
		`line 4: name: "Bad_Name" is not a valid name`,
		`line 7: filter.all[0].cesql: 1:`,
		`line 9: target.grpc: "nohost" is not host:port`,
		`line 11: delivery.max_attempts: must be between 1 and 1000, got -2`,
	}
	if len(got) != len(want) {
		t.Fatalf("validation errors:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("got %s\nwant %s…", got[i], want[i])
		}
	}

	// A field whose decoding failed is not reported again by Validate.
	docs, _ = Decode([]byte("name: a\ntarget: {grpc: [1]}\n"))
	if v := docs[0].Validate(); v != nil {
		t.Errorf("validation repeated a decode error: %v", v)
	}
	if l := docs[0].LineOf("filter.all[3].cel"); l != 1 {
		t.Errorf("line of an absent field = %d, want the document's line 1", l)
	}
}

// FuzzDecode feeds arbitrary trigger files to Decode: never a panic, every
// error on a line of the file, and a file that decodes without error reads
// back the same from the JSON of its specs.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: a\nfilter: {colour: x}\ndelivery: {max_attempts: eight}\n---\nname: b\n"))
	f.Add([]byte(`[{"name":"a","target":{"grpc":"h:1"},"delivery":{"timeout":"1s"}}, {"name": 1}]`))
	f.Add([]byte("a: &a [1,2]\nb: *a\nfilter: {all: [{not: {cel: x}}]}\n"))
	f.Add([]byte("{name: a, delivery: {timeout: 1e400}}"))
	f.Add([]byte("- name: x\n  target: {url: 'http://a'}\n- 3\n"))
	f.Add([]byte("name: p\ntarget:\n  publish: {kind: amqp, exchange: orders, mandatory: false, n: .nan, l: [a, 1, {b: 2.5}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, errs := Decode(data)
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 2
		for _, e := range errs {
			if e.Line < 0 || e.Line > lines || e.Msg == "" {
				t.Fatalf("error out of the file (%d lines): %+v", lines, e)
			}
		}
		for _, d := range docs {
			for _, e := range d.Validate() {
				if e.Line < 1 || e.Line > lines {
					t.Fatalf("validation error out of the file (%d lines): %+v", lines, e)
				}
			}
		}
		if errs != nil {
			return
		}
		specs := make([]Spec, len(docs))
		for i, d := range docs {
			specs[i] = d.Spec
		}
		b, err := json.Marshal(specs)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(b)
		if err != nil {
			t.Fatalf("JSON of decoded specs refused: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the specs:\n%s\n%s", b, b2)
		}
	})
}
