package filter

// anyFilter matches when at least one alternative matches (logical OR),
// evaluating them in order and stopping at the first that does. path is
// the `any` it was compiled from ("filter.any"), for Explain; nested
// disjunctions are flattened into it, their alternatives keeping their own
// paths.
type anyFilter struct {
	alts []Filter
	path string
}

// Match implements Filter.
func (f *anyFilter) Match(in *Input) bool {
	for _, sub := range f.alts {
		if sub.Match(in) {
			return true
		}
	}
	return false
}
