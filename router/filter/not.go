package filter

// notFilter matches when its sub-filter does not. path is the `not` it was
// compiled from ("filter.all[0].not"), for Explain.
type notFilter struct {
	sub  Filter
	path string
}

// Match implements Filter.
func (f *notFilter) Match(in *Input) bool {
	return !f.sub.Match(in)
}
