package filter

import (
	"slices"
	"strings"
)

// And returns a Filter that matches when every one of fs matches,
// evaluating them in order and stopping at the first that does not. Nil
// members are skipped; with none left it matches every event. Explain
// reports the clauses of each member at the top level, with their own
// paths.
func And(fs ...Filter) Filter {
	var parts []Filter
	for _, f := range fs {
		switch f := f.(type) {
		case nil, matchAll:
		case *allFilter:
			parts = append(parts, f.parts...)
		default:
			parts = append(parts, f)
		}
	}
	switch len(parts) {
	case 0:
		return matchAll{}
	case 1:
		return parts[0]
	}
	return &allFilter{parts: parts}
}

// AttributePrefixes returns a Filter that matches when the event has the
// attribute and its canonical string form starts with one of prefixes:
// the condition a trigger's event scope adds. Without prefixes it matches
// every event (no restriction). Explain reports it as one clause of
// KindPrefixes at path ("scope.sources"). prefixes is copied.
func AttributePrefixes(path, attribute string, prefixes ...string) Filter {
	if len(prefixes) == 0 {
		return matchAll{}
	}
	return &prefixesFilter{path: path, attr: attribute, prefixes: slices.Clone(prefixes)}
}

// prefixesFilter matches when the attribute starts with one of prefixes.
type prefixesFilter struct {
	path, attr string
	prefixes   []string
}

// Match implements Filter.
func (f *prefixesFilter) Match(in *Input) bool {
	v, ok := in.attribute(f.attr)
	if !ok {
		return false
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}
