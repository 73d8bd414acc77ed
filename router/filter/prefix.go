package filter

import "strings"

// prefixFilter matches when every named attribute is present and its
// canonical string form starts with the (non-empty) value.
type prefixFilter struct {
	conds []attrCond
	path  string // "filter.prefix", for Explain
}

// Match implements Filter.
func (f *prefixFilter) Match(in *Input) bool {
	for _, c := range f.conds {
		if v, ok := in.attribute(c.name); !ok || !strings.HasPrefix(v, c.value) {
			return false
		}
	}
	return true
}
