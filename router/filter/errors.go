package filter

import (
	"errors"
	"strconv"
	"strings"
)

// CompileError is one problem found by Compile.
//
// When Compile finds several problems it returns them all, joined with
// errors.Join (in a deterministic order: the order of the fields in the
// Spec, map keys sorted); a single problem is returned as a bare
// *CompileError. CompileErrors extracts the list in both cases.
type CompileError struct {
	// Path locates the offending field in the filter tree, rooted at
	// "filter": for example "filter.all[1].cesql", "filter.not.cel" or
	// "filter.prefix.source".
	Path string
	// Line and Column give the 1-based position of the problem inside a
	// CESQL or CEL expression. Columns count Unicode code points. Both are
	// 0 when the problem has no position (a bad attribute name, a size
	// limit, ...).
	Line, Column int
	// Msg describes the problem.
	Msg string
}

// Error formats the problem as "path: line:column: msg", or "path: msg"
// when there is no position.
func (e *CompileError) Error() string {
	var b strings.Builder
	b.Grow(len(e.Path) + len(e.Msg) + 16)
	b.WriteString(e.Path)
	b.WriteString(": ")
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Column))
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// CompileErrors returns every *CompileError contained in err, which is
// typically the error returned by Compile: a bare *CompileError, or several
// of them joined with errors.Join. It returns nil when err contains none.
func CompileErrors(err error) []*CompileError {
	var out []*CompileError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *CompileError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			walk(errors.Unwrap(err))
		}
	}
	walk(err)
	return out
}

// joinErrors returns nil, the only error, or all of them joined.
func joinErrors(errs []*CompileError) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}
