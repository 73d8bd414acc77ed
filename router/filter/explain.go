package filter

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// This file answers "why does (or doesn't) this filter match this event?".
// Explain walks the compiled tree a second time, apart from Match, so that
// matching pays nothing for it; each leaf decides with the very code its
// Match uses (the attribute lookup, the CESQL and CEL eval functions), and
// the property test in explain_test.go holds the two to the same verdicts.

// ClauseKind says what a Clause tests. The values are the filter keys.
type ClauseKind string

// Clause kinds.
const (
	// KindAttributes: one attribute has exactly a value (filter.attributes).
	KindAttributes ClauseKind = "attributes"
	// KindPrefix: one attribute starts with a value (filter.prefix).
	KindPrefix ClauseKind = "prefix"
	// KindSuffix: one attribute ends with a value (filter.suffix).
	KindSuffix ClauseKind = "suffix"
	// KindPrefixes: one attribute starts with one of several values
	// (AttributePrefixes: a trigger's event scope).
	KindPrefixes ClauseKind = "prefixes"
	// KindCESQL: a CloudEvents SQL expression is true.
	KindCESQL ClauseKind = "cesql"
	// KindCEL: a CEL expression is true.
	KindCEL ClauseKind = "cel"
	// KindAll: every clause of Causes holds (a conjunction inside an any
	// or a not).
	KindAll ClauseKind = "all"
	// KindAny: at least one alternative of Causes holds.
	KindAny ClauseKind = "any"
	// KindNot: the negated filter, whose clauses are Causes, does not
	// match.
	KindNot ClauseKind = "not"
	// KindOther: a Filter this package did not build; only its verdict is
	// known.
	KindOther ClauseKind = "other"
)

// maxShown bounds the values and errors a Clause quotes (in bytes, cut at
// a rune boundary), so that an explanation of an event with a large
// attribute or data stays small.
const maxShown = 256

// Clause is one condition of a filter, evaluated against one event.
type Clause struct {
	// Path locates the condition in the trigger, as Compile's errors do:
	// "filter.attributes.type", "filter.all[1].cel", "filter.any",
	// "scope.sources".
	Path string `json:"path"`
	// Kind says what the condition tests.
	Kind ClauseKind `json:"kind"`
	// Held reports whether the condition holds for the event.
	Held bool `json:"held"`
	// Attribute is the attribute an attributes, prefix, suffix or
	// prefixes condition reads.
	Attribute string `json:"attribute,omitempty"`
	// Missing reports that the event does not have Attribute (which then
	// never matches).
	Missing bool `json:"missing,omitempty"`
	// Expected is the value (attributes), prefix or suffix the condition
	// wants.
	Expected string `json:"expected,omitempty"`
	// Prefixes are the values a prefixes condition accepts.
	Prefixes []string `json:"prefixes,omitempty"`
	// Actual is the attribute's canonical string form, when present.
	Actual string `json:"actual,omitempty"`
	// Expression is the CESQL or CEL source.
	Expression string `json:"expression,omitempty"`
	// Value is what the expression evaluated to, rendered as a literal
	// ("true", "false", `"eu-1"`, "42"), when it evaluated.
	Value string `json:"value,omitempty"`
	// Error is why the expression failed to evaluate (which does not
	// match, also under a not).
	Error string `json:"error,omitempty"`
	// Reason says in one sentence why the condition holds or not.
	Reason string `json:"reason"`
	// Causes are the parts of an all, the alternatives of an any, or the
	// clauses of a not's negated filter.
	Causes []Clause `json:"causes,omitempty"`
}

// Explanation is the verdict of a filter on one event, with its reasons.
type Explanation struct {
	// Matched is what Filter.Match answers for the event.
	Matched bool `json:"matched"`
	// Clauses are the top-level conditions of the filter (all of which
	// must hold), in the order Match evaluates them, each with its
	// verdict. Every one is evaluated, also after one fails, so that all
	// the reasons of a miss show at once. Empty for the empty filter,
	// which matches every event.
	Clauses []Clause `json:"clauses"`
}

// Failed returns the top-level clauses that do not hold: the reasons the
// filter does not match (none when it does).
func (e Explanation) Failed() []Clause {
	var out []Clause
	for _, c := range e.Clauses {
		if !c.Held {
			out = append(out, c)
		}
	}
	return out
}

// Explain evaluates f against the event held by in and says whether it
// matches, as f.Match(in) does (always the same verdict), and why: the
// verdict of every condition, with the attribute values and expression
// results behind it. It costs more than Match (it evaluates every
// condition and formats values) and is meant for people and tools asking
// why, not for routing.
//
// f is a Filter from Compile, And or AttributePrefixes; any other Filter is
// reported as one clause of KindOther with its verdict.
func Explain(f Filter, in *Input) Explanation {
	if in == nil {
		in = NewInput(nil)
	}
	e := Explanation{Clauses: []Clause{}}
	e.Matched = explainInto(f, in, &e.Clauses)
	return e
}

// explainInto appends the clauses of f, read as a conjunction, to out and
// returns whether they all hold.
func explainInto(f Filter, in *Input, out *[]Clause) bool {
	switch f := f.(type) {
	case matchAll:
		return true
	case *allFilter:
		ok := true
		for _, p := range f.parts {
			if !explainInto(p, in, out) {
				ok = false
			}
		}
		return ok
	case *exactFilter:
		return explainAttrs(KindAttributes, f.path, f.conds, in, out)
	case *prefixFilter:
		return explainAttrs(KindPrefix, f.path, f.conds, in, out)
	case *suffixFilter:
		return explainAttrs(KindSuffix, f.path, f.conds, in, out)
	}
	c := explainNode(f, in)
	*out = append(*out, c)
	return c.Held
}

// explainNode explains a filter that is one clause.
func explainNode(f Filter, in *Input) Clause {
	switch f := f.(type) {
	case *prefixesFilter:
		return f.explain(in)
	case *cesqlFilter:
		return f.explain(in)
	case *celFilter:
		return f.explain(in)
	case *notFilter:
		c := Clause{Path: f.path, Kind: KindNot}
		subMatched := explainInto(f.sub, in, &c.Causes)
		c.Held = !subMatched
		switch {
		case len(c.Causes) == 0: // not: {}
			c.Reason = "the negated filter is empty and matches every event, so this matches none"
		case subMatched:
			c.Reason = "the negated filter matches"
		default:
			c.Reason = "the negated filter does not match"
		}
		return c
	case *anyFilter:
		c := Clause{Path: f.path, Kind: KindAny}
		var first string
		for _, alt := range f.alts {
			ac := group(alt, in)
			if ac.Held && first == "" {
				first = ac.Path
			}
			c.Causes = append(c.Causes, ac)
		}
		c.Held = first != ""
		if c.Held {
			c.Reason = first + " matches"
		} else {
			c.Reason = fmt.Sprintf("none of the %d alternatives matches", len(f.alts))
		}
		return c
	case nil:
		return Clause{Kind: KindOther, Reason: "no filter: nothing matches"}
	}
	held := f.Match(in)
	return Clause{Kind: KindOther, Held: held, Reason: "evaluated to " + strconv.FormatBool(held)}
}

// group explains f as one clause: itself when it is one, else a KindAll
// clause holding its parts.
func group(f Filter, in *Input) Clause {
	var parts []Clause
	held := explainInto(f, in, &parts)
	if len(parts) == 1 {
		return parts[0]
	}
	c := Clause{Path: nodePath(f), Kind: KindAll, Held: held, Causes: parts}
	failed := 0
	for _, p := range parts {
		if !p.Held {
			failed++
		}
	}
	if held {
		c.Reason = "every condition holds"
	} else {
		c.Reason = fmt.Sprintf("%d of %d conditions do not hold", failed, len(parts))
	}
	return c
}

// nodePath is the path f was compiled from.
func nodePath(f Filter) string {
	switch f := f.(type) {
	case *allFilter:
		return f.path
	case *anyFilter:
		return f.path
	case *notFilter:
		return f.path
	case *exactFilter:
		return f.path
	case *prefixFilter:
		return f.path
	case *suffixFilter:
		return f.path
	case *prefixesFilter:
		return f.path
	case *cesqlFilter:
		return f.path
	case *celFilter:
		return f.path
	}
	return ""
}

// explainAttrs appends one clause per attribute condition.
func explainAttrs(kind ClauseKind, path string, conds []attrCond, in *Input, out *[]Clause) bool {
	ok := true
	for _, cond := range conds {
		c := Clause{Path: path + "." + cond.name, Kind: kind, Attribute: cond.name, Expected: cond.value}
		v, present := in.attribute(cond.name)
		c.Actual = shown(v)
		switch kind {
		case KindAttributes:
			c.Held = present && v == cond.value
		case KindPrefix:
			c.Held = present && strings.HasPrefix(v, cond.value)
		case KindSuffix:
			c.Held = present && strings.HasSuffix(v, cond.value)
		}
		switch {
		case !present:
			c.Missing = true
			c.Reason = "the event has no " + cond.name + " attribute"
		case kind == KindAttributes && c.Held:
			c.Reason = fmt.Sprintf("%s is %s", cond.name, quote(v))
		case kind == KindAttributes:
			c.Reason = fmt.Sprintf("%s is %s, not %s", cond.name, quote(v), quote(cond.value))
		case kind == KindPrefix:
			c.Reason = fmt.Sprintf("%s %s %s with %s", cond.name, quote(v), verb(c.Held, "starts", "does not start"), quote(cond.value))
		default:
			c.Reason = fmt.Sprintf("%s %s %s with %s", cond.name, quote(v), verb(c.Held, "ends", "does not end"), quote(cond.value))
		}
		if !c.Held {
			ok = false
		}
		*out = append(*out, c)
	}
	return ok
}

func verb(held bool, yes, no string) string {
	if held {
		return yes
	}
	return no
}

func (f *prefixesFilter) explain(in *Input) Clause {
	c := Clause{Path: f.path, Kind: KindPrefixes, Attribute: f.attr, Prefixes: f.prefixes}
	v, present := in.attribute(f.attr)
	c.Actual = shown(v)
	if !present {
		c.Missing = true
		c.Reason = "the event has no " + f.attr + " attribute"
		return c
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(v, p) {
			c.Held = true
			c.Reason = fmt.Sprintf("%s %s starts with %s", f.attr, quote(v), quote(p))
			return c
		}
	}
	quoted := make([]string, len(f.prefixes))
	for i, p := range f.prefixes {
		quoted[i] = quote(p)
	}
	if len(quoted) == 1 {
		c.Reason = fmt.Sprintf("%s %s does not start with %s", f.attr, quote(v), quoted[0])
	} else {
		c.Reason = fmt.Sprintf("%s %s starts with none of %s", f.attr, quote(v), strings.Join(quoted, ", "))
	}
	return c
}

func (f *cesqlFilter) explain(in *Input) Clause {
	c := Clause{Path: f.path, Kind: KindCESQL, Expression: f.src}
	v, err := f.eval(in)
	if err != nil {
		c.Error = shown(err.Error())
		c.Reason = "evaluation failed: " + c.Error
		if strings.Contains(err.Error(), "missing attribute") {
			c.Reason += "; reading an absent attribute is an error in CESQL: guard it with EXISTS"
		}
		return c
	}
	c.Value = renderCESQL(v)
	b, isBool := v.(bool)
	c.Held = isBool && b
	if isBool {
		c.Reason = "evaluated to " + c.Value
	} else {
		c.Reason = "evaluated to " + c.Value + ", not a boolean"
	}
	return c
}

// renderCESQL renders a CESQL value (boolean, 32-bit integer or string) as
// a literal.
func renderCESQL(v any) string {
	switch v := v.(type) {
	case string:
		return quote(v)
	case nil:
		return "null"
	}
	return shown(fmt.Sprint(v))
}

func (f *celFilter) explain(in *Input) Clause {
	c := Clause{Path: f.path, Kind: KindCEL, Expression: f.src}
	out, err := f.eval(in)
	// When the expression reads data, how CEL saw it often is the answer.
	readData := f.readsData
	if err != nil {
		c.Error = shown(err.Error())
		c.Reason = "evaluation failed: " + c.Error
		if readData {
			if note := dataNote(in); note != "" {
				c.Reason += "; " + note
			} else if strings.Contains(err.Error(), "no such key") {
				c.Reason += "; test an optional field first: has(data.field) && …"
			}
		}
		return c
	}
	c.Value = renderCEL(out)
	b, isBool := out.(types.Bool)
	c.Held = isBool && bool(b)
	switch {
	case !isBool:
		c.Reason = "evaluated to " + c.Value + ", not a boolean"
	default:
		c.Reason = "evaluated to " + c.Value
	}
	if !c.Held && readData {
		if note := dataNote(in); note != "" {
			c.Reason += "; " + note
		}
	}
	return c
}

// dataNote says how CEL saw the event's data when that was not as JSON,
// or "" when it was.
func dataNote(in *Input) string {
	ev := in.ev
	ct, hasCT := cloudevent.Attribute(ev, cloudevent.AttrDataContentType)
	_, isProto := ev.GetData().(*pb.CloudEvent_ProtoData)
	readAsJSON := !isProto && (!hasCT || isJSONMediaType(normalizeMediaType(ct)))
	var kind string
	switch in.celData().(type) {
	case nil:
		if ev.GetData() == nil {
			return "the event has no data, so data is null"
		}
		return "" // the JSON null
	case string:
		kind = "a string"
	case []byte:
		kind = "bytes"
	default:
		return ""
	}
	switch {
	case isProto:
		return "the data is protobuf, so data is " + kind
	case readAsJSON && hasCT:
		return "the data does not parse as JSON despite datacontenttype " + quote(ct) + ", so data is " + kind
	case readAsJSON:
		return "the data does not parse as JSON, so data is " + kind
	}
	return "the datacontenttype is " + quote(ct) + ", not JSON, so data is " + kind
}

// renderCEL renders a CEL value as a literal.
func renderCEL(v ref.Val) string {
	switch v := v.(type) {
	case types.String:
		return quote(string(v))
	case types.Bool:
		return strconv.FormatBool(bool(v))
	case types.Null:
		return "null"
	case types.Bytes:
		return shown("b" + strconv.Quote(string(v)))
	case nil:
		return "null"
	}
	return shown(fmt.Sprint(v.Value()))
}

// quote renders s as a Go string literal, cut to maxShown bytes.
func quote(s string) string {
	if len(s) > maxShown {
		return strconv.Quote(cut(s)) + "…"
	}
	return strconv.Quote(s)
}

// shown cuts s to maxShown bytes, marking the cut with "…".
func shown(s string) string {
	if len(s) > maxShown {
		return cut(s) + "…"
	}
	return s
}

// cut returns the longest prefix of s of at most maxShown bytes that ends
// at a rune boundary.
func cut(s string) string {
	n := maxShown
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
