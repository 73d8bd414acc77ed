package filter

import (
	"errors"
	"fmt"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// CELCostLimit bounds the runtime cost of one CEL evaluation (in cel-go's
// cost units, roughly one per operation plus the size of strings and lists
// traversed). An evaluation that exceeds it is cancelled and does not match,
// so a hostile expression (nested comprehensions over large data, ...)
// cannot burn CPU.
const CELCostLimit = 100_000

// DefaultCELEventBudget bounds the CEL cost of one event across every CEL
// filter evaluated on it (Input.SetCELBudget changes it). The cost limit of
// each expression alone would let the total grow with the number of
// triggers; the budget does not: the filters share one cost tracker per
// event, each evaluation may spend at most what the budget has left, and
// once it is spent the remaining CEL filters do not match. Ten expressions
// at their own limit fit; ordinary filters cost tens of units each.
const DefaultCELEventBudget = 10 * CELCostLimit

// celTracker is the cost tracker every Input's is copied from: the default
// cost model, no cost spent (a copy is cheaper than building one per event).
var celTracker = func() *cost.Tracker {
	t, err := cost.NewTracker(nil)
	if err != nil {
		panic(err) // no options: cannot fail
	}
	return t
}()

// Names of the CEL variables.
const (
	celVarID              = "id"
	celVarSource          = "source"
	celVarType            = "type"
	celVarSpecVersion     = "specversion"
	celVarSubject         = "subject"
	celVarDataContentType = "datacontenttype"
	celVarDataSchema      = "dataschema"
	celVarTime            = "time"
	celVarExtensions      = "extensions"
	celVarAttributes      = "attributes"
	celVarData            = "data"
)

// celEnv returns the CEL environment shared by every CEL filter. A cel.Env
// is safe for concurrent use.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(celVarID, cel.StringType),
		cel.Variable(celVarSource, cel.StringType),
		cel.Variable(celVarType, cel.StringType),
		cel.Variable(celVarSpecVersion, cel.StringType),
		cel.Variable(celVarSubject, cel.StringType),
		cel.Variable(celVarDataContentType, cel.StringType),
		cel.Variable(celVarDataSchema, cel.StringType),
		cel.Variable(celVarTime, cel.TimestampType),
		cel.Variable(celVarExtensions, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(celVarAttributes, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(celVarData, cel.DynType),
		ext.Strings(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(MaxExpressionBytes),
	)
})

// celFilter matches when a CEL program evaluates to true.
type celFilter struct {
	prg cel.Program
	// src and path (the expression and "filter.all[1].cel") and whether
	// the expression reads data are for Explain.
	src, path string
	readsData bool
}

// Match implements Filter.
func (f *celFilter) Match(in *Input) bool {
	out, err := f.eval(in)
	if err != nil {
		return false
	}
	b, ok := out.(types.Bool)
	return ok && bool(b)
}

// errCELBudget is eval's error once the event's CEL cost budget is spent.
var errCELBudget = errors.New("the event's CEL cost budget is spent: the expression was not evaluated")

// eval evaluates the program against the event: Match and Explain both
// decide from its result, so they cannot disagree. The evaluation runs on
// the Input's cost tracker, limited to CELCostLimit and to what the
// event's budget has left.
func (f *celFilter) eval(in *Input) (ref.Val, error) {
	in.act.in = in // also covers a zero or copied Input
	if in.celExhausted {
		return nil, errCELBudget
	}
	if in.celCost == nil {
		in.celCost = &cost.Tracker{}
		*in.celCost = *celTracker
	}
	budget := in.celBudget
	if budget == 0 {
		budget = DefaultCELEventBudget
	}
	spent := in.celCost.ActualCost()
	if spent >= budget {
		in.celExhausted = true
		return nil, errCELBudget
	}
	in.celLimit = min(spent+CELCostLimit, budget)
	in.celCost.Limit = &in.celLimit
	frame, err := interpreter.NewExecutionFrame(&in.act)
	if err != nil {
		return nil, err
	}
	frame.SetCostTracker(in.celCost)
	out, _, err := f.prg.Eval(frame)
	frame.Close()
	if err != nil && in.celLimit == budget && in.celCost.ActualCost() > budget {
		in.celExhausted = true // stopped by the event's budget, not its own limit
	}
	return out, err
}

// compileCEL parses, type-checks and plans a CEL expression.
func compileCEL(src, path string) (f Filter, errs []exprError) {
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
			line, col := e.Location.Line(), e.Location.Column()+1 // cel-go columns are 0-based
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
	case out.IsExactType(cel.BoolType), out.IsExactType(cel.DynType):
	default:
		line, col := 0, 0
		if rep := ast.NativeRep(); rep != nil {
			loc := rep.SourceInfo().GetStartLocation(rep.Expr().ID())
			if loc.Line() > 0 && loc.Column() >= 0 {
				line, col = loc.Line(), loc.Column()+1
			}
		}
		return nil, []exprError{{line, col, fmt.Sprintf("expression must evaluate to bool, not %s", out)}}
	}
	prg, err := env.Program(ast,
		cel.CostLimit(CELCostLimit),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, []exprError{{msg: err.Error()}}
	}
	f = &celFilter{prg: prg, src: src, path: path}
	if rep := ast.NativeRep(); rep != nil {
		for _, r := range rep.ReferenceMap() {
			if r != nil && r.Name == celVarData {
				f.(*celFilter).readsData = true
			}
		}
	}
	return f, nil
}

// celActivation resolves the CEL variables against an Input, computing the
// expensive ones (data, attributes, extensions, time) on first use; the
// Input caches them for every other CEL filter evaluated on the same event.
type celActivation struct {
	in *Input
}

var _ interpreter.Activation = (*celActivation)(nil)

// ResolveName implements interpreter.Activation.
func (a *celActivation) ResolveName(name string) (any, bool) {
	in := a.in
	switch name {
	case celVarID:
		return in.ev.GetId(), true
	case celVarSource:
		return in.ev.GetSource(), true
	case celVarType:
		return in.ev.GetType(), true
	case celVarSpecVersion:
		return in.ev.GetSpecVersion(), true
	case celVarSubject, celVarDataContentType, celVarDataSchema:
		v, _ := in.attribute(name)
		return v, true
	case celVarTime:
		return in.celTime(), true
	case celVarExtensions:
		return in.celExtensions(), true
	case celVarAttributes:
		return in.celAttributes(), true
	case celVarData:
		return in.celData(), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *celActivation) Parent() interpreter.Activation { return nil }
