package filter

import (
	"fmt"
	"slices"
	"strconv"
)

// Limits enforced by Compile.
const (
	// MaxDepth is how deeply all, any and not may nest: the top-level
	// filter is at depth 0, its all/any members and its not at depth 1, and
	// so on; a filter at a depth greater than MaxDepth is rejected.
	MaxDepth = 32
	// MaxExpressionBytes is the maximum length, in bytes, of one CESQL or
	// CEL expression.
	MaxExpressionBytes = 4096
	// MaxExpressions is how many CESQL and CEL expressions one filter may
	// hold, at every level together: each is compiled when the trigger is
	// applied and may be evaluated for every event.
	MaxExpressions = 16
	// MaxNodes is how many filters one filter tree may hold: the top-level
	// filter and every member of an all or any and every not.
	MaxNodes = 256
	// MaxConditions is how many attributes, prefix and suffix entries one
	// filter tree may hold together.
	MaxConditions = 1024
	// maxErrors caps the problems one Compile call reports.
	maxErrors = 100
)

// rootPath is the path of the top-level filter in CompileError.Path.
const rootPath = "filter"

// Compile checks s and compiles it, once, into a Filter.
//
// Every problem found is reported (up to a cap of 100) as a *CompileError
// with the path of the offending field and, for CESQL and CEL expressions,
// the position inside the expression; see CompileError and CompileErrors.
// Checked are: attribute names (CloudEvents names, [a-z0-9]+), prefix and
// suffix values (non-empty), CESQL syntax, functions and result type, CEL
// syntax and types (the result must be bool or dyn), expression sizes
// (MaxExpressionBytes), nesting depth (MaxDepth) and the size of the whole
// filter (MaxExpressions, MaxNodes, MaxConditions; a filter over them is
// not compiled, and each excess is reported at "filter").
//
// The empty Spec compiles to a Filter that matches every event.
func Compile(s Spec) (Filter, error) {
	c := &compiler{}
	if c.checkSize(s); len(c.errs) > 0 {
		// Too large to compile: compiling is the cost the caps bound.
		return nil, joinErrors(c.errs)
	}
	f := c.compile(s, rootPath, 0)
	if err := joinErrors(c.errs); err != nil {
		return nil, err
	}
	return f, nil
}

// compiler accumulates the problems found while compiling a Spec tree.
type compiler struct {
	errs []*CompileError
}

func (c *compiler) fail(path string, line, column int, format string, args ...any) {
	switch {
	case len(c.errs) < maxErrors:
		c.errs = append(c.errs, &CompileError{Path: path, Line: line, Column: column, Msg: fmt.Sprintf(format, args...)})
	case len(c.errs) == maxErrors:
		c.errs = append(c.errs, &CompileError{Path: rootPath, Msg: fmt.Sprintf("more than %d problems; stopped reporting", maxErrors)})
	}
}

// filterSize counts what the size limits bound.
type filterSize struct{ nodes, expressions, conditions int }

// measure adds s's tree to z, down to MaxDepth (compile reports deeper
// filters), stopping once a count passes its limit.
func (z *filterSize) measure(s Spec, depth int) {
	if depth > MaxDepth || z.nodes > MaxNodes || z.expressions > MaxExpressions || z.conditions > MaxConditions {
		return
	}
	z.nodes++
	z.conditions += len(s.Attributes) + len(s.Prefix) + len(s.Suffix)
	if s.CESQL != "" {
		z.expressions++
	}
	if s.CEL != "" {
		z.expressions++
	}
	if s.Not != nil {
		z.measure(*s.Not, depth+1)
	}
	for _, sub := range s.All {
		z.measure(sub, depth+1)
	}
	for _, sub := range s.Any {
		z.measure(sub, depth+1)
	}
}

// checkSize reports each size limit the filter passes, naming it.
func (c *compiler) checkSize(s Spec) {
	var z filterSize
	z.measure(s, 0)
	if z.expressions > MaxExpressions {
		c.fail(rootPath, 0, 0, "more than %d CESQL and CEL expressions: a trigger's filter holds at most %d (the limit on expressions per trigger)", MaxExpressions, MaxExpressions)
	}
	if z.nodes > MaxNodes {
		c.fail(rootPath, 0, 0, "more than %d filters: a trigger's filter holds at most %d, itself and every all, any and not member counted (the limit on filter nodes)", MaxNodes, MaxNodes)
	}
	if z.conditions > MaxConditions {
		c.fail(rootPath, 0, 0, "more than %d attributes, prefix and suffix entries: a trigger's filter holds at most %d (the limit on filter conditions)", MaxConditions, MaxConditions)
	}
}

// compile compiles one level of the tree; the result is meaningless when
// problems were reported.
func (c *compiler) compile(s Spec, path string, depth int) Filter {
	if depth > MaxDepth {
		c.fail(path, 0, 0, "filter is nested more than %d levels deep", MaxDepth)
		return nil
	}
	// Cheapest conditions first: a conjunction stops at the first miss.
	var parts []Filter
	if conds := c.attrConds(s.Attributes, path+".attributes", false); len(conds) > 0 {
		parts = append(parts, &exactFilter{conds: conds, path: path + ".attributes"})
	}
	if conds := c.attrConds(s.Prefix, path+".prefix", true); len(conds) > 0 {
		parts = append(parts, &prefixFilter{conds: conds, path: path + ".prefix"})
	}
	if conds := c.attrConds(s.Suffix, path+".suffix", true); len(conds) > 0 {
		parts = append(parts, &suffixFilter{conds: conds, path: path + ".suffix"})
	}
	if s.Not != nil {
		if sub := c.compile(*s.Not, path+".not", depth+1); sub != nil {
			if inner, ok := sub.(*notFilter); ok {
				parts = append(parts, inner.sub) // not(not(x)) is x
			} else {
				parts = append(parts, &notFilter{sub: sub, path: path + ".not"})
			}
		}
	}
	for i, sub := range s.All {
		f := c.compile(sub, path+".all["+strconv.Itoa(i)+"]", depth+1)
		switch f := f.(type) {
		case nil, matchAll:
		case *allFilter:
			parts = append(parts, f.parts...) // flatten nested conjunctions
		default:
			parts = append(parts, f)
		}
	}
	if len(s.Any) > 0 {
		alts := &anyFilter{path: path + ".any"}
		matchesAll := false
		for i, sub := range s.Any {
			f := c.compile(sub, path+".any["+strconv.Itoa(i)+"]", depth+1)
			switch f := f.(type) {
			case nil:
			case matchAll:
				matchesAll = true
			case *anyFilter:
				alts.alts = append(alts.alts, f.alts...) // flatten nested disjunctions
			default:
				alts.alts = append(alts.alts, f)
			}
		}
		switch {
		case matchesAll:
		case len(alts.alts) == 1:
			parts = append(parts, alts.alts[0])
		case len(alts.alts) > 1:
			parts = append(parts, alts)
		}
	}
	if s.CESQL != "" {
		if f := c.expression(s.CESQL, path+".cesql", compileCESQL); f != nil {
			parts = append(parts, f)
		}
	}
	if s.CEL != "" {
		if f := c.expression(s.CEL, path+".cel", compileCEL); f != nil {
			parts = append(parts, f)
		}
	}
	switch len(parts) {
	case 0:
		return matchAll{}
	case 1:
		return parts[0]
	}
	return &allFilter{parts: parts, path: path}
}

// attrConds checks the attribute names (and, for prefix and suffix, the
// values) of one attribute map and returns its conditions: type first, then
// source (the attributes most likely to tell events apart), then by name.
func (c *compiler) attrConds(m map[string]string, path string, nonEmpty bool) []attrCond {
	if len(m) == 0 {
		return nil
	}
	conds := make([]attrCond, 0, len(m))
	for name, value := range m {
		conds = append(conds, attrCond{name: name, value: value})
	}
	slices.SortFunc(conds, func(a, b attrCond) int {
		if ra, rb := attrRank(a.name), attrRank(b.name); ra != rb {
			return ra - rb
		}
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	for _, cond := range conds {
		switch {
		case !ValidAttributeName(cond.name):
			c.fail(path, 0, 0, "invalid attribute name %q: CloudEvents attribute names are lowercase ASCII letters and digits", cond.name)
		case nonEmpty && cond.value == "":
			c.fail(path+"."+cond.name, 0, 0, "value must not be empty")
		}
	}
	return conds
}

// attrRank orders attribute conditions: type, source, then the others.
func attrRank(name string) int {
	switch name {
	case "type":
		return 0
	case "source":
		return 1
	}
	return 2
}

// expression checks the size of a CESQL or CEL expression and compiles it,
// reporting its problems under path.
func (c *compiler) expression(src, path string, compile func(src, path string) (Filter, []exprError)) Filter {
	if len(src) > MaxExpressionBytes {
		c.fail(path, 0, 0, "expression is %d bytes long; the maximum is %d", len(src), MaxExpressionBytes)
		return nil
	}
	f, errs := compile(src, path)
	for _, e := range errs {
		c.fail(path, e.line, e.column, "%s", e.msg)
	}
	if len(errs) > 0 {
		return nil
	}
	return f
}

// ValidAttributeName reports whether name is a valid CloudEvents context
// attribute name: one or more lowercase ASCII letters or digits.
func ValidAttributeName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; (b < 'a' || b > 'z') && (b < '0' || b > '9') {
			return false
		}
	}
	return true
}
