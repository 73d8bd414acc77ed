package filter

// allFilter matches when every part matches (logical AND), evaluating them
// in order and stopping at the first that does not. path is the filter
// level it was compiled from ("filter.any[1]"), for Explain; nested
// conjunctions are flattened into it, their parts keeping their own paths.
type allFilter struct {
	parts []Filter
	path  string
}

// Match implements Filter.
func (f *allFilter) Match(in *Input) bool {
	for _, sub := range f.parts {
		if !sub.Match(in) {
			return false
		}
	}
	return true
}

// matchAll is the empty filter: it matches every event.
type matchAll struct{}

// Match implements Filter.
func (matchAll) Match(*Input) bool { return true }
