package filter

// notFilter matches when its sub-filter does not.
type notFilter struct {
	sub Filter
}

// Match implements Filter.
func (f notFilter) Match(in *Input) bool {
	return !f.sub.Match(in)
}
