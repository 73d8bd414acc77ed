package filter

// anyFilter matches when at least one sub-filter matches (logical OR),
// evaluating them in order and stopping at the first that does.
type anyFilter []Filter

// Match implements Filter.
func (f anyFilter) Match(in *Input) bool {
	for _, sub := range f {
		if sub.Match(in) {
			return true
		}
	}
	return false
}
