package filter

// attrCond is one (attribute name, value) condition of an attribute filter.
type attrCond struct {
	name, value string
}

// exactFilter matches when every named attribute is present and its
// canonical string form equals the value.
type exactFilter struct {
	conds []attrCond
	path  string // "filter.attributes", for Explain
}

// Match implements Filter.
func (f *exactFilter) Match(in *Input) bool {
	for _, c := range f.conds {
		if v, ok := in.attribute(c.name); !ok || v != c.value {
			return false
		}
	}
	return true
}
