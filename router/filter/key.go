package filter

import (
	"fmt"
	"strconv"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Key computes an event's ordering key (a trigger's delivery.ordering.key):
// the value of one attribute, or of a CEL expression over the event with
// the variables CEL filters see. It is immutable and safe for concurrent
// use.
type Key struct {
	attr string     // the attribute, when the key is one
	cel  *celFilter // else the expression (its result is not a verdict here)
	src  string
}

// String returns the key as written.
func (k *Key) String() string { return k.src }

// CompileKey compiles an ordering key: an attribute name (ValidAttributeName:
// "subject", an extension's name) is read as the attribute; anything else
// is a CEL expression, which must evaluate to a string, an integer, a
// double, a bool or dyn. Errors are *CompileError at path.
func CompileKey(src, path string) (*Key, error) {
	switch {
	case src == "":
		return nil, &CompileError{Path: path, Msg: "required: an attribute name or a CEL expression"}
	case len(src) > MaxExpressionBytes:
		return nil, &CompileError{Path: path, Msg: fmt.Sprintf("longer than %d bytes", MaxExpressionBytes)}
	case ValidAttributeName(src):
		return &Key{attr: src, src: src}, nil
	}
	f, errs := compileKeyCEL(src, path)
	if len(errs) > 0 {
		e := errs[0]
		return nil, &CompileError{Path: path, Line: e.line, Column: e.column, Msg: e.msg}
	}
	return &Key{cel: f, src: src}, nil
}

// Value returns the key of the event in holds: "" when the attribute is
// missing, or the expression fails or yields a value of another type (the
// event then goes to the default lane). The expression spends the Input's
// CEL budget, as filters do.
func (k *Key) Value(in *Input) string {
	if k.cel == nil {
		v, _ := in.attribute(k.attr)
		return v
	}
	out, err := k.cel.eval(in)
	if err != nil {
		return ""
	}
	return keyString(out)
}

// keyString renders a CEL result as a key; "" for other types.
func keyString(v ref.Val) string {
	switch x := v.(type) {
	case types.String:
		return string(x)
	case types.Int:
		return strconv.FormatInt(int64(x), 10)
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10)
	case types.Double:
		return strconv.FormatFloat(float64(x), 'g', -1, 64)
	case types.Bool:
		return strconv.FormatBool(bool(x))
	}
	return ""
}

// compileKeyCEL parses, type-checks and plans a key expression in the
// filters' environment, with their cost limit.
func compileKeyCEL(src, path string) (f *celFilter, errs []exprError) {
	defer func() {
		if r := recover(); r != nil {
			f, errs = nil, []exprError{{msg: fmt.Sprintf("internal CEL compiler error: %v", r)}}
		}
	}()
	env, err := celEnv()
	if err != nil {
		return nil, []exprError{{msg: "CEL environment: " + err.Error()}}
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			line, col := e.Location.Line(), e.Location.Column()+1
			if line < 1 || col < 1 {
				line, col = 0, 0
			}
			errs = append(errs, exprError{line: line, column: col, msg: e.Message})
		}
		if len(errs) == 0 {
			errs = append(errs, exprError{msg: iss.Err().Error()})
		}
		return nil, errs
	}
	switch out := ast.OutputType(); {
	case out.IsExactType(cel.StringType), out.IsExactType(cel.IntType), out.IsExactType(cel.UintType),
		out.IsExactType(cel.DoubleType), out.IsExactType(cel.BoolType), out.IsExactType(cel.DynType):
	default:
		return nil, []exprError{{msg: fmt.Sprintf("a key expression must evaluate to a string, number or bool, not %s", out)}}
	}
	prg, err := env.Program(ast, cel.CostLimit(CELCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, []exprError{{msg: err.Error()}}
	}
	return &celFilter{prg: prg, src: src, path: path}, nil
}
