package filter

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
)

// TestExplainReasons: each kind of condition says which clause decided,
// with the values behind the verdict.
func TestExplainReasons(t *testing.T) {
	jsonOrder := testEvent(withAttr("subject", ceString("eu-1")), withText("application/json", `{"total": 150}`))
	type want struct {
		path, reason    string
		missing         bool
		expected, value string
		actual, err     string
	}
	cases := map[string]struct {
		spec    Spec
		ev      *pb.CloudEvent
		matched bool
		failed  []want // the top-level clauses that do not hold, in order
	}{
		"exact mismatch": {
			spec: Spec{Attributes: map[string]string{"type": "com.example.order.deleted"}},
			ev:   testEvent(),
			failed: []want{{path: "filter.attributes.type", expected: "com.example.order.deleted", actual: "com.example.order.created",
				reason: `type is "com.example.order.created", not "com.example.order.deleted"`}},
		},
		"missing attribute": {
			spec:   Spec{Attributes: map[string]string{"tenant": "acme"}},
			ev:     testEvent(),
			failed: []want{{path: "filter.attributes.tenant", missing: true, expected: "acme", reason: "the event has no tenant attribute"}},
		},
		"prefix and suffix, every failure reported": {
			spec: Spec{Prefix: map[string]string{"source": "/bank/"}, Suffix: map[string]string{"type": ".deleted"}, Attributes: map[string]string{"type": "com.example.order.created"}},
			ev:   testEvent(),
			failed: []want{
				{path: "filter.prefix.source", expected: "/bank/", actual: "/shop/eu", reason: `source "/shop/eu" does not start with "/bank/"`},
				{path: "filter.suffix.type", expected: ".deleted", actual: "com.example.order.created", reason: `type "com.example.order.created" does not end with ".deleted"`},
			},
		},
		"cesql on a missing attribute": {
			spec:   Spec{CESQL: "subject LIKE 'eu-%'"},
			ev:     testEvent(),
			failed: []want{{path: "filter.cesql", err: "missing attribute", reason: "guard it with EXISTS"}},
		},
		"cesql false": {
			spec:   Spec{All: []Spec{{}, {CESQL: "subject LIKE 'us-%'"}}},
			ev:     jsonOrder,
			failed: []want{{path: "filter.all[1].cesql", value: "false", reason: "evaluated to false"}},
		},
		"cel false with the value": {
			spec:   Spec{All: []Spec{{Prefix: map[string]string{"source": "/shop/"}}, {CEL: "data.total > 200"}}},
			ev:     jsonOrder,
			failed: []want{{path: "filter.all[1].cel", value: "false", reason: "evaluated to false"}},
		},
		"cel over data that is not JSON": {
			spec:   Spec{CEL: "data.total > 100"},
			ev:     testEvent(withText("text/plain", "total=150")),
			failed: []want{{path: "filter.cel", err: "no such key", reason: `the datacontenttype is "text/plain", not JSON, so data is a string`}},
		},
		"cel over JSON that does not parse": {
			spec:   Spec{CEL: "data.total > 100"},
			ev:     testEvent(withText("application/json", `{"total": 1`)),
			failed: []want{{path: "filter.cel", err: "no such key", reason: `does not parse as JSON despite datacontenttype "application/json"`}},
		},
		"cel reading a missing field": {
			spec:   Spec{CEL: "data.total > 100"},
			ev:     testEvent(withText("application/json", `{"sum": 150}`)),
			failed: []want{{path: "filter.cel", err: "no such key: total", reason: "has(data.field)"}},
		},
		"cel without data": {
			spec:   Spec{CEL: "data.total > 100"},
			ev:     testEvent(),
			failed: []want{{path: "filter.cel", err: "no such key", reason: "the event has no data, so data is null"}},
		},
		"cel not reading data says nothing of it": {
			spec:   Spec{CEL: "subject == 'x'"},
			ev:     testEvent(withAttr("subject", ceString("y")), withText("text/plain", "hi")),
			failed: []want{{path: "filter.cel", value: "false", reason: "evaluated to false"}},
		},
		"cel of another type": {
			spec:   Spec{CEL: "data.total"},
			ev:     jsonOrder,
			failed: []want{{path: "filter.cel", value: "150", reason: "evaluated to 150, not a boolean"}},
		},
		"not whose filter matches": {
			spec:   Spec{Not: &Spec{Prefix: map[string]string{"source": "/shop/"}}},
			ev:     testEvent(),
			failed: []want{{path: "filter.not", reason: "the negated filter matches"}},
		},
		"not of the empty filter": {
			spec:   Spec{Not: &Spec{}},
			ev:     testEvent(),
			failed: []want{{path: "filter.not", reason: "matches every event, so this matches none"}},
		},
		"any where nothing matches": {
			spec:   Spec{Any: []Spec{{Attributes: map[string]string{"type": "a", "source": "b"}}, {CEL: "data.total > 1000"}}},
			ev:     jsonOrder,
			failed: []want{{path: "filter.any", reason: "none of the 2 alternatives matches"}},
		},
		"everything holds": {
			spec:    Spec{Attributes: map[string]string{"type": "com.example.order.created"}, CEL: "data.total > 100", Any: []Spec{{CESQL: "subject = 'x'"}, {Prefix: map[string]string{"subject": "eu-"}}}},
			ev:      jsonOrder,
			matched: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := mustCompile(t, tc.spec)
			e := Explain(f, NewInput(tc.ev))
			require.Equal(t, tc.matched, e.Matched)
			require.Equal(t, f.Match(NewInput(tc.ev)), e.Matched)
			failed := e.Failed()
			require.Len(t, failed, len(tc.failed), "%+v", e)
			for i, w := range tc.failed {
				c := failed[i]
				require.Equal(t, w.path, c.Path)
				require.False(t, c.Held)
				require.Equal(t, w.missing, c.Missing, "missing")
				require.Contains(t, c.Reason, w.reason)
				if w.expected != "" {
					require.Equal(t, w.expected, c.Expected)
				}
				require.Equal(t, w.actual, c.Actual)
				require.Equal(t, w.value, c.Value)
				if w.err != "" {
					require.Contains(t, c.Error, w.err)
				} else {
					require.Empty(t, c.Error)
				}
			}
		})
	}
}

// TestExplainNesting: the causes of an any, a not and a conjunction inside
// them carry the paths of the spec, also where Compile flattened the tree.
func TestExplainNesting(t *testing.T) {
	spec := Spec{
		All: []Spec{{All: []Spec{{Suffix: map[string]string{"type": ".created"}}}}},
		Any: []Spec{
			{Attributes: map[string]string{"type": "a", "source": "/shop/eu"}},
			{Any: []Spec{{CEL: "subject == 'x'"}, {Not: &Spec{Not: &Spec{CESQL: "source = '/nowhere'"}}}}},
		},
		Not: &Spec{Any: []Spec{{Prefix: map[string]string{"source": "/shop/"}}, {CEL: "false"}}},
	}
	ev := testEvent(withAttr("subject", ceString("y")))
	e := Explain(mustCompile(t, spec), NewInput(ev))
	require.False(t, e.Matched)
	paths := func(cs []Clause) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Path)
		}
		return out
	}
	require.Equal(t, []string{"filter.not", "filter.all[0].all[0].suffix.type", "filter.any"}, paths(e.Clauses))
	not, any := e.Clauses[0], e.Clauses[2]
	require.False(t, not.Held)
	require.Equal(t, []string{"filter.not.any"}, paths(not.Causes))
	require.Equal(t, []string{"filter.not.any[0].prefix.source", "filter.not.any[1].cel"}, paths(not.Causes[0].Causes))
	require.True(t, not.Causes[0].Causes[0].Held)
	require.False(t, any.Held)
	require.Equal(t, []string{"filter.any[0].attributes", "filter.any[1].any[0].cel", "filter.any[1].any[1].not.not.cesql"}, paths(any.Causes))
	require.Equal(t, KindAll, any.Causes[0].Kind)
	require.Equal(t, "1 of 2 conditions do not hold", any.Causes[0].Reason)
	require.Equal(t, []string{"filter.any[0].attributes.type", "filter.any[0].attributes.source"}, paths(any.Causes[0].Causes))
}

// TestExplainComposed: And and AttributePrefixes (a trigger's scope) are
// explained as one clause each, at the path given.
func TestExplainComposed(t *testing.T) {
	user := mustCompile(t, Spec{Attributes: map[string]string{"type": "com.example.order.created"}})
	f := And(AttributePrefixes("scope.sources", "source", "/a/", "/b/"), AttributePrefixes("scope.types", "type"), user)
	e := Explain(f, NewInput(testEvent()))
	require.False(t, e.Matched)
	require.Len(t, e.Clauses, 2, "a scope dimension without prefixes adds no clause")
	c := e.Clauses[0]
	require.Equal(t, Clause{Path: "scope.sources", Kind: KindPrefixes, Attribute: "source", Prefixes: []string{"/a/", "/b/"}, Actual: "/shop/eu",
		Reason: `source "/shop/eu" starts with none of "/a/", "/b/"`}, c)
	require.True(t, e.Clauses[1].Held)

	e = Explain(f, NewInput(testEvent(withSource("/b/1"))))
	require.True(t, e.Matched)
	require.Equal(t, `source "/b/1" starts with "/b/"`, e.Clauses[0].Reason)
	require.True(t, And().Match(NewInput(nil)), "And of nothing matches every event")
	require.Empty(t, Explain(And(), nil).Clauses)
}

// TestExplainCutsLongValues: quoted values and errors are bounded.
func TestExplainCutsLongValues(t *testing.T) {
	long := strings.Repeat("é", 1000)
	f := mustCompile(t, Spec{Attributes: map[string]string{"subject": "x"}, CEL: "dyn(subject)"})
	e := Explain(f, NewInput(testEvent(withAttr("subject", ceString(long)))))
	for _, c := range e.Clauses {
		for _, s := range []string{c.Actual, c.Value} {
			require.LessOrEqual(t, len(s), maxShown+len(`""…`))
		}
		require.Less(t, len(c.Reason), 3*maxShown)
	}
	require.True(t, strings.HasSuffix(e.Clauses[0].Actual, "…"))
}

// randomEvent builds an event from a random source: attributes, extensions
// and data of every shape the filters distinguish.
func randomEvent(r *rand.Rand) *pb.CloudEvent {
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	ev := testEvent(withType(pick([]string{"com.example.order.created", "other", "x.created"})),
		withSource(pick([]string{"/shop/eu", "/shop/", "/x", "/bank/1"})))
	if r.IntN(2) == 0 {
		withAttr("subject", ceString(pick([]string{"eu-1", "us-2", "", "acme"})))(ev)
	}
	if r.IntN(2) == 0 {
		withAttr("tenant", ceString(pick(fuzzValues)))(ev)
	}
	if r.IntN(3) == 0 {
		withAttr("count", ceInt(int32(r.IntN(100)-10)))(ev)
	}
	if r.IntN(3) == 0 {
		withAttr("flag", ceBool(r.IntN(2) == 0))(ev)
	}
	if r.IntN(3) == 0 {
		withAttr("time", ceTime(time.Date(2024, 5, 1, 10, r.IntN(60), 0, 0, time.UTC)))(ev)
	}
	ct := pick([]string{"", "application/json", "text/plain", "application/octet-stream", "application/vnd.x+json"})
	switch r.IntN(5) {
	case 0:
	case 1:
		withText(ct, pick([]string{`{"total": 150, "items": [1, 2]}`, `{"total": 5}`, `[1, 2`, `"str"`, `null`, "plain"}))(ev)
	case 2:
		withBinary(ct, []byte(pick([]string{`{"total": 101}`, "\xff\x00", ""})))(ev)
	case 3:
		withText(ct, `{"total": 150}`)(ev)
	default:
		withBinary(ct, nil)(ev)
	}
	return ev
}

// checkAgreement fails t when Explain's verdict on ev differs from Match's
// or does not follow from its clauses.
func checkAgreement(t *testing.T, spec Spec, f Filter, ev *pb.CloudEvent) bool {
	t.Helper()
	want := f.Match(NewInput(ev))
	in := NewInput(ev)
	e := Explain(f, in)
	if e.Matched != want {
		t.Fatalf("Explain says %v, Match says %v\nspec %+v\nevent %v\nexplanation %+v", e.Matched, want, spec, ev, e)
	}
	if got := len(e.Failed()) == 0; got != want {
		t.Fatalf("matched %v but %d failed clauses: %+v", want, len(e.Failed()), e)
	}
	if again := f.Match(in); again != want {
		t.Fatalf("Match after Explain on the same Input says %v, before %v", again, want)
	}
	for _, c := range e.Clauses {
		if c.Path == "" || !strings.HasPrefix(c.Path, "filter") || c.Reason == "" {
			t.Fatalf("clause without a path or reason: %+v", c)
		}
	}
	return want
}

// TestExplainAgreesWithMatch: for random filters and events, Explain's
// verdict is Match's.
func TestExplainAgreesWithMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 5))
	sqls := append([]string{"EXISTS subject AND subject LIKE 'eu-%'", "NOT EXISTS tenant OR tenant <> 'x'"}, fuzzSQL...)
	cels := append([]string{"has(data.total) && data.total > 100", "'tenant' in extensions", "data"}, fuzzCEL...)
	compiled, verdicts := 0, map[bool]int{}
	for range 1500 {
		ops := make([]byte, r.IntN(40))
		for i := range ops {
			ops[i] = byte(r.UintN(256))
		}
		spec := (&specBuilder{ops: ops, sql: sqls[r.IntN(len(sqls))], cel: cels[r.IntN(len(cels))]}).build()
		f, err := Compile(spec)
		if err != nil {
			continue
		}
		compiled++
		for range 4 {
			verdicts[checkAgreement(t, spec, f, randomEvent(r))]++
		}
		checkAgreement(t, spec, f, nil)
	}
	require.Greater(t, compiled, 400, "too few random specs compiled to prove anything")
	require.Greater(t, min(verdicts[true], verdicts[false]), 250, "both verdicts must be common: %v", verdicts)
}

// FuzzExplain: Explain agrees with Match for fuzzed filters and events.
func FuzzExplain(f *testing.F) {
	f.Add([]byte{1, 2, 3}, "subject LIKE 'eu-%'", "data.total > 100", uint64(1))
	f.Add([]byte{9, 5, 0, 10, 4, 0, 8, 1, 2}, "EXISTS tenant", "'tenant' in extensions", uint64(7))
	f.Add([]byte{10, 10, 1, 0, 9, 6, 0, 9, 7}, "count > 10", "has(data.items) && data.items.all(x, x > 0)", uint64(42))
	f.Add([]byte{}, "", "", uint64(0))
	f.Fuzz(func(t *testing.T, ops []byte, sql, celSrc string, seed uint64) {
		spec := (&specBuilder{ops: ops, sql: sql, cel: celSrc}).build()
		flt, err := Compile(spec)
		if err != nil {
			return
		}
		r := rand.New(rand.NewPCG(seed, uint64(len(ops))))
		for range 4 {
			checkAgreement(t, spec, flt, randomEvent(r))
		}
		for _, ev := range fuzzEvents {
			checkAgreement(t, spec, flt, ev)
		}
	})
}
