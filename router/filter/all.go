package filter

// allFilter matches when every sub-filter matches (logical AND), evaluating
// them in order and stopping at the first that does not.
type allFilter []Filter

// Match implements Filter.
func (f allFilter) Match(in *Input) bool {
	for _, sub := range f {
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
