package filter

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompileErrors(t *testing.T) {
	deep := Spec{Attributes: map[string]string{"type": "x"}}
	for range MaxDepth + 1 {
		deep = Spec{Not: &deep}
	}
	okDeep := Spec{Attributes: map[string]string{"type": "x"}}
	for range MaxDepth {
		okDeep = Spec{All: []Spec{okDeep}}
	}
	_, err := Compile(okDeep)
	require.NoError(t, err, "MaxDepth levels are allowed")

	for name, tc := range map[string]struct {
		spec Spec
		want []CompileError
	}{
		"cesql unexpected token": {
			spec: Spec{All: []Spec{{}, {CESQL: "subject LIKEE 'eu-%'"}}},
			want: []CompileError{{"filter.all[1].cesql", 1, 9, "unexpected token 'LIKEE'"}},
		},
		"cesql unexpected end": {
			spec: Spec{CESQL: "type = 'x' AND"},
			want: []CompileError{{"filter.cesql", 1, 15, "unexpected end of expression"}},
		},
		"cesql second line": {
			spec: Spec{Any: []Spec{{CESQL: "type = 'x' AND\n  subject LIKE 3"}}},
			want: []CompileError{{"filter.any[0].cesql", 2, 16, "unexpected token '3'"}},
		},
		"cesql bad character": {
			spec: Spec{CESQL: "type = #"},
			want: []CompileError{
				{"filter.cesql", 1, 8, "unexpected character '#'"},
				{"filter.cesql", 1, 9, "unexpected end of expression"},
			},
		},
		"cesql unterminated string": {
			spec: Spec{CESQL: "type = 'x"},
			want: []CompileError{{"filter.cesql", 1, 8, "unterminated string literal"}},
		},
		"cesql missing closing parenthesis": {
			spec: Spec{CESQL: "(type = 'x'"},
			want: []CompileError{{"filter.cesql", 1, 12, "missing ')' at end of expression"}},
		},
		"cesql unknown function": {
			spec: Spec{CESQL: "type = 'x' AND FOO(subject)"},
			want: []CompileError{{"filter.cesql", 1, 16, "no function FOO taking 1 argument(s)"}},
		},
		"cesql wrong arity": {
			spec: Spec{CESQL: "ABS(1, 2) = 1"},
			want: []CompileError{{"filter.cesql", 1, 1, "no function ABS taking 2 argument(s)"}},
		},
		"cesql integer overflow": {
			spec: Spec{CESQL: "count = 4294967296"},
			want: []CompileError{{"filter.cesql", 1, 9, "integer literal 4294967296 is out of the 32-bit range"}},
		},
		"cesql not boolean": {
			spec: Spec{CESQL: "(count + 1)"},
			want: []CompileError{{"filter.cesql", 1, 2, "expression must evaluate to a boolean, not an integer"}},
		},
		"cesql string function is not boolean": {
			spec: Spec{CESQL: "UPPER(type)"},
			want: []CompileError{{"filter.cesql", 1, 1, "expression must evaluate to a boolean, not a string"}},
		},
		"cesql empty": {
			spec: Spec{CESQL: " \n "},
			want: []CompileError{{"filter.cesql", 0, 0, "expression is empty"}},
		},
		"cel syntax": {
			spec: Spec{Not: &Spec{CEL: "data.total >"}},
			want: []CompileError{{"filter.not.cel", 1, 13, "Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"}},
		},
		"cel undeclared, two lines": {
			spec: Spec{CEL: "foo == 1 &&\n  bar"},
			want: []CompileError{
				{"filter.cel", 1, 1, "undeclared reference to 'foo'"},
				{"filter.cel", 2, 3, "undeclared reference to 'bar'"},
			},
		},
		"cel type error": {
			spec: Spec{CEL: "subject + 1 == 'x'"},
			want: []CompileError{{"filter.cel", 1, 9, "found no matching overload for '_+_' applied to '(string, int)'"}},
		},
		"cel not bool": {
			spec: Spec{CEL: "size(subject)"},
			want: []CompileError{{"filter.cel", 1, 5, "expression must evaluate to bool, not int"}},
		},
		"cel attributes are strings": {
			spec: Spec{CEL: "attributes.count > 1"},
			want: []CompileError{{"filter.cel", 1, 18, "found no matching overload for '_>_' applied to '(string, int)'"}},
		},
		"invalid attribute names": {
			spec: Spec{Attributes: map[string]string{"Type": "x", "ok": "y", "my-ext": "z"}},
			want: []CompileError{
				{"filter.attributes", 0, 0, `invalid attribute name "Type": CloudEvents attribute names are lowercase ASCII letters and digits`},
				{"filter.attributes", 0, 0, `invalid attribute name "my-ext": CloudEvents attribute names are lowercase ASCII letters and digits`},
			},
		},
		"empty attribute name": {
			spec: Spec{Prefix: map[string]string{"": "x"}},
			want: []CompileError{{"filter.prefix", 0, 0, `invalid attribute name "": CloudEvents attribute names are lowercase ASCII letters and digits`}},
		},
		"empty prefix and suffix": {
			spec: Spec{All: []Spec{{Prefix: map[string]string{"source": ""}}, {Suffix: map[string]string{"type": ""}}}},
			want: []CompileError{
				{"filter.all[0].prefix.source", 0, 0, "value must not be empty"},
				{"filter.all[1].suffix.type", 0, 0, "value must not be empty"},
			},
		},
		"expression too long": {
			spec: Spec{CEL: "type == '" + strings.Repeat("x", MaxExpressionBytes) + "'", CESQL: strings.Repeat(" ", MaxExpressionBytes+1)},
			want: []CompileError{
				{"filter.cesql", 0, 0, "expression is 4097 bytes long; the maximum is 4096"},
				{"filter.cel", 0, 0, "expression is 4106 bytes long; the maximum is 4096"},
			},
		},
		"too deep": {
			spec: deep,
			want: []CompileError{{"filter" + strings.Repeat(".not", MaxDepth+1), 0, 0, "filter is nested more than 32 levels deep"}},
		},
		"all problems reported in field order": {
			spec: Spec{
				Attributes: map[string]string{"BAD": "x"},
				Suffix:     map[string]string{"type": ""},
				Any:        []Spec{{CEL: "nope"}, {CESQL: "a ="}},
				CESQL:      "1",
				CEL:        "1",
			},
			want: []CompileError{
				{"filter.attributes", 0, 0, `invalid attribute name "BAD": CloudEvents attribute names are lowercase ASCII letters and digits`},
				{"filter.suffix.type", 0, 0, "value must not be empty"},
				{"filter.any[0].cel", 1, 1, "undeclared reference to 'nope'"},
				{"filter.any[1].cesql", 1, 4, "unexpected end of expression"},
				{"filter.cesql", 1, 1, "expression must evaluate to a boolean, not an integer"},
				{"filter.cel", 1, 1, "expression must evaluate to bool, not int"},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := Compile(tc.spec)
			require.Error(t, err)
			require.Nil(t, f)
			var got []CompileError
			for _, e := range CompileErrors(err) {
				got = append(got, *e)
			}
			require.Equal(t, tc.want, got, "error: %v", err)
			if len(tc.want) == 1 {
				var ce *CompileError
				require.True(t, errors.As(err, &ce))
				require.Same(t, ce, err, "a single problem is a bare *CompileError")
			}
		})
	}
}

func TestCompileErrorFormat(t *testing.T) {
	require.Equal(t, "filter.all[1].cesql: 1:9: unexpected token 'LIKEE'",
		(&CompileError{Path: "filter.all[1].cesql", Line: 1, Column: 9, Msg: "unexpected token 'LIKEE'"}).Error())
	require.Equal(t, "filter.prefix.source: value must not be empty",
		(&CompileError{Path: "filter.prefix.source", Msg: "value must not be empty"}).Error())

	_, err := Compile(Spec{CESQL: "a =", CEL: "b"})
	require.EqualError(t, err, "filter.cesql: 1:4: unexpected end of expression\nfilter.cel: 1:1: undeclared reference to 'b'")
	var ce *CompileError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "filter.cesql", ce.Path)

	require.Nil(t, CompileErrors(nil))
	require.Nil(t, CompileErrors(errors.New("other")))
}

func TestCompileErrorCap(t *testing.T) {
	attrs := map[string]string{}
	for i := range 150 {
		attrs["X"+strings.Repeat("y", i)] = "v"
	}
	_, err := Compile(Spec{Attributes: attrs})
	errs := CompileErrors(err)
	require.Len(t, errs, maxErrors+1)
	require.Equal(t, "more than 100 problems; stopped reporting", errs[maxErrors].Msg)
}

// A filter over a size limit is refused before anything in it is
// compiled, with the limit named at "filter"; one at the limit compiles.
func TestCompileSizeLimits(t *testing.T) {
	exprs := func(n int) Spec {
		var s Spec
		for i := range n {
			s.All = append(s.All, Spec{CEL: fmt.Sprintf("size(id) > %d", i)})
		}
		return s
	}
	_, err := Compile(exprs(MaxExpressions))
	require.NoError(t, err)
	_, err = Compile(exprs(MaxExpressions + 1))
	errs := CompileErrors(err)
	require.Len(t, errs, 1)
	require.Equal(t, "filter", errs[0].Path)
	require.Contains(t, errs[0].Msg, "expressions per trigger")
	require.Contains(t, errs[0].Msg, fmt.Sprint(MaxExpressions))

	// Invalid expressions beyond the cap are not even looked at.
	bad := exprs(MaxExpressions + 1)
	bad.All[0].CEL = "nonsense("
	require.Len(t, CompileErrors(mustFail(t, bad)), 1)

	nodes := Spec{}
	for range MaxNodes {
		nodes.Any = append(nodes.Any, Spec{Attributes: map[string]string{"type": "x"}})
	}
	errs = CompileErrors(mustFail(t, nodes))
	require.Len(t, errs, 1)
	require.Contains(t, errs[0].Msg, "filter nodes")
	nodes.Any = nodes.Any[:MaxNodes-1]
	_, err = Compile(nodes)
	require.NoError(t, err)

	conds := Spec{Attributes: map[string]string{}, Prefix: map[string]string{}}
	for i := range MaxConditions {
		conds.Attributes[fmt.Sprintf("a%d", i)] = "v"
	}
	_, err = Compile(conds)
	require.NoError(t, err)
	conds.Prefix["source"] = "/x"
	errs = CompileErrors(mustFail(t, conds))
	require.Len(t, errs, 1)
	require.Contains(t, errs[0].Msg, "filter conditions")
}

func mustFail(t *testing.T, s Spec) error {
	t.Helper()
	_, err := Compile(s)
	require.Error(t, err)
	return err
}

func TestValidAttributeName(t *testing.T) {
	for name, want := range map[string]bool{
		"type": true, "x1": true, "123": true, "datacontenttype": true,
		"": false, "Type": false, "my-ext": false, "my_ext": false, "é": false, "a b": false,
	} {
		require.Equal(t, want, ValidAttributeName(name), "%q", name)
	}
}
