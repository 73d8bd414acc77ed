package filter

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/antlr/antlr4/runtime/Go/antlr"
	cesql "github.com/cloudevents/sdk-go/sql/v2"
	"github.com/cloudevents/sdk-go/sql/v2/gen"
	"github.com/cloudevents/sdk-go/sql/v2/parser"
	"github.com/cloudevents/sdk-go/sql/v2/runtime"
)

// cesqlFilter matches when a CloudEvents SQL expression evaluates to boolean
// true, without error, against the event's attributes.
//
// CESQL semantics to keep in mind: reading an attribute the event does not
// have is an evaluation error, and an error makes the whole expression fail
// (sdk-go propagates it through NOT, comparisons and the right-hand side of
// AND/OR that gets evaluated), so such an expression never matches, even
// under NOT. Test presence with EXISTS first: "EXISTS subject AND subject
// LIKE 'eu-%'", "NOT EXISTS tenant OR tenant <> 'x'".
type cesqlFilter struct {
	expr cesql.Expression
	// src and path (the expression and "filter.cesql") are for Explain.
	src, path string
}

// Match implements Filter.
func (f *cesqlFilter) Match(in *Input) bool {
	v, err := f.eval(in)
	if err != nil {
		return false
	}
	b, isBool := v.(bool)
	return isBool && b
}

// eval evaluates the expression against the event's attributes: Match and
// Explain both decide from its result, so they cannot disagree.
func (f *cesqlFilter) eval(in *Input) (v any, err error) {
	defer func() {
		// sdk-go's evaluator is not ours; a panic in it is a non-match.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("CESQL evaluator failed: %v", r)
		}
	}()
	return f.expr.Evaluate(*in.sdkEvent())
}

// cesqlMu serializes CESQL parsing: the ANTLR runtime that sdk-go's parser
// is generated for shares its prediction caches between parser instances
// without synchronization. Only compilation takes it; matching does not use
// ANTLR.
var cesqlMu sync.Mutex

// exprError is a problem in an expression, with its 1-based position
// (0, 0 when it has none).
type exprError struct {
	line, column int
	msg          string
}

// maxExprErrors caps the syntax errors reported for one expression: ANTLR's
// error recovery tends to cascade after the first one.
const maxExprErrors = 5

// compileCESQL parses and checks a CESQL expression.
//
// sdk-go's parser.Parse is not enough on its own: its error listener drops
// the positions and messages ANTLR reports, its lexer prints errors on
// stderr, and its tree visitor panics on many syntax errors. So the
// expression is first parsed here with the same generated lexer and parser
// and our own error listeners, then checked (functions, integer literals,
// result type), and only a clean expression is handed to parser.Parse to
// build the evaluable tree.
func compileCESQL(src, path string) (Filter, []exprError) {
	if strings.TrimSpace(src) == "" {
		return nil, []exprError{{msg: "expression is empty"}}
	}
	cesqlMu.Lock()
	defer cesqlMu.Unlock()

	listener := &cesqlErrorListener{}
	tree, perr := parseCESQLTree(src, listener)
	if perr != nil {
		return nil, []exprError{*perr}
	}
	if len(listener.errs) > 0 {
		return nil, listener.errs
	}
	var errs []exprError
	checkCESQLTree(tree, &errs)
	if e, bad := checkCESQLResult(tree.Expression()); bad {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return nil, errs
	}

	expr, err := safeParseCESQL(src)
	if err != nil {
		return nil, []exprError{{msg: err.Error()}}
	}
	return &cesqlFilter{expr: expr, src: src, path: path}, nil
}

// parseCESQLTree runs the generated lexer and parser over src, reporting
// syntax errors to listener. A panic inside ANTLR becomes an error.
func parseCESQLTree(src string, listener *cesqlErrorListener) (tree *gen.CesqlContext, perr *exprError) {
	defer func() {
		if r := recover(); r != nil {
			tree, perr = nil, &exprError{msg: fmt.Sprintf("internal parser error: %v", r)}
		}
	}()
	lexer := gen.NewCESQLParserLexer(parser.NewCaseChangingStream(antlr.NewInputStream(src), true))
	lexer.RemoveErrorListeners()
	lexer.AddErrorListener(listener)
	p := gen.NewCESQLParserParser(antlr.NewCommonTokenStream(lexer, antlr.TokenDefaultChannel))
	p.RemoveErrorListeners()
	p.AddErrorListener(listener)
	t, ok := p.Cesql().(*gen.CesqlContext)
	if !ok {
		return nil, &exprError{msg: "internal parser error: no parse tree"}
	}
	return t, nil
}

// safeParseCESQL calls sdk-go's parser, turning a panic into an error.
func safeParseCESQL(src string) (expr cesql.Expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			expr, err = nil, fmt.Errorf("internal parser error: %v", r)
		}
	}()
	expr, err = parser.Parse(src)
	if err == nil && expr == nil {
		err = fmt.Errorf("internal parser error: no expression")
	}
	return expr, err
}

// cesqlErrorListener collects syntax errors with their positions, rewording
// ANTLR's messages.
type cesqlErrorListener struct {
	antlr.DefaultErrorListener
	errs []exprError
}

// SyntaxError implements antlr.ErrorListener. line is 1-based, column is
// the 0-based character offset in the line.
func (l *cesqlErrorListener) SyntaxError(_ antlr.Recognizer, offending interface{}, line, column int, msg string, _ antlr.RecognitionException) {
	if len(l.errs) >= maxExprErrors {
		return
	}
	e := exprError{line: line, column: column + 1}
	switch tok := offending.(type) {
	case nil: // lexer error: "token recognition error at: 'x"
		text := strings.TrimPrefix(msg, "token recognition error at: ")
		text = strings.TrimSuffix(strings.TrimPrefix(text, "'"), "'")
		switch {
		case strings.HasPrefix(text, "'") || strings.HasPrefix(text, `"`):
			e.msg = "unterminated string literal"
		case text != "":
			r := []rune(text)[0]
			e.msg = fmt.Sprintf("unexpected character %s", strconv.QuoteRune(r))
		default:
			e.msg = msg
		}
	case antlr.Token:
		switch {
		case strings.HasPrefix(msg, "missing "):
			// "missing ')' at '<EOF>'"
			e.msg = strings.ReplaceAll(msg, "'<EOF>'", "end of expression")
		case tok.GetTokenType() == antlr.TokenEOF:
			e.msg = "unexpected end of expression"
		case tok.GetTokenType() == gen.CESQLParserLexerSINGLE_QUOTE_SYMB,
			tok.GetTokenType() == gen.CESQLParserLexerDOUBLE_QUOTE_SYMB:
			// A lone quote: the string literal it opens has no end.
			e.msg = "unterminated string literal"
		default:
			e.msg = fmt.Sprintf("unexpected token '%s'", tok.GetText())
		}
	default:
		e.msg = msg
	}
	for _, prev := range l.errs {
		if prev.line == e.line && prev.column == e.column {
			return // ANTLR's recovery reported this position already.
		}
	}
	l.errs = append(l.errs, e)
}

// tokenPos returns the 1-based position of the first token of a rule.
func tokenPos(ctx antlr.ParserRuleContext) (line, column int) {
	tok := ctx.GetStart()
	if tok == nil {
		return 0, 0
	}
	return tok.GetLine(), tok.GetColumn() + 1
}

// checkCESQLTree reports what sdk-go would only find when evaluating
// (unknown functions, wrong argument counts) or reports without a position
// (integer literals out of the 32-bit range).
func checkCESQLTree(node antlr.Tree, errs *[]exprError) {
	switch ctx := node.(type) {
	case *gen.FunctionInvocationExpressionContext:
		name := strings.ToUpper(ctx.FunctionIdentifier().GetText())
		nargs := 0
		if params, ok := ctx.FunctionParameterList().(*gen.FunctionParameterListContext); ok {
			nargs = len(params.AllExpression())
		}
		if runtime.ResolveFunction(name, nargs) == nil {
			line, col := tokenPos(ctx)
			*errs = append(*errs, exprError{line, col, fmt.Sprintf("no function %s taking %d argument(s)", name, nargs)})
		}
	case *gen.IntegerLiteralContext:
		if _, err := strconv.ParseInt(ctx.GetText(), 10, 32); err != nil {
			line, col := tokenPos(ctx)
			*errs = append(*errs, exprError{line, col, fmt.Sprintf("integer literal %s is out of the 32-bit range", ctx.GetText())})
		}
	}
	for _, child := range node.GetChildren() {
		checkCESQLTree(child, errs)
	}
}

// checkCESQLResult rejects expressions that can only produce a non-boolean
// value (literals, arithmetic, functions returning integers or strings): they
// could never match.
func checkCESQLResult(expr gen.IExpressionContext) (exprError, bool) {
	for {
		sub, ok := expr.(*gen.SubExpressionContext)
		if !ok {
			break
		}
		expr = sub.Expression()
	}
	kind := ""
	switch ctx := expr.(type) {
	case *gen.BinaryAdditiveExpressionContext, *gen.BinaryMultiplicativeExpressionContext, *gen.UnaryNumericExpressionContext:
		kind = "an integer"
	case *gen.AtomExpressionContext:
		switch ctx.Atom().(type) {
		case *gen.IntegerAtomContext:
			kind = "an integer"
		case *gen.StringAtomContext:
			kind = "a string"
		}
	case *gen.FunctionInvocationExpressionContext:
		nargs := 0
		if params, ok := ctx.FunctionParameterList().(*gen.FunctionParameterListContext); ok {
			nargs = len(params.AllExpression())
		}
		if fn := runtime.ResolveFunction(ctx.FunctionIdentifier().GetText(), nargs); fn != nil {
			switch fn.ReturnType() {
			case cesql.IntegerType:
				kind = "an integer"
			case cesql.StringType:
				kind = "a string"
			}
		}
	}
	if kind == "" || expr == nil {
		return exprError{}, false
	}
	line, col := tokenPos(expr)
	return exprError{line, col, "expression must evaluate to a boolean, not " + kind}, true
}
