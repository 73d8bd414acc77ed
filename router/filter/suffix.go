package filter

import "strings"

// suffixFilter matches when every named attribute is present and its
// canonical string form ends with the (non-empty) value.
type suffixFilter struct {
	conds []attrCond
	path  string // "filter.suffix", for Explain
}

// Match implements Filter.
func (f *suffixFilter) Match(in *Input) bool {
	for _, c := range f.conds {
		if v, ok := in.attribute(c.name); !ok || !strings.HasSuffix(v, c.value) {
			return false
		}
	}
	return true
}
