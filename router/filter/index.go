package filter

import (
	"cmp"
	"slices"
)

// Entry is one named filter in an Index, typically one trigger.
type Entry struct {
	// Name identifies the entry in Match results. Names should be unique;
	// entries sharing a name are each reported when they match.
	Name string
	// Spec is the filter's declarative form. The Index reads it only to
	// find an exact type or source that every matching event must have.
	Spec Spec
	// Filter is Spec compiled by Compile. It must be equivalent to Spec:
	// the Index skips the entry for events whose type (or source) differs
	// from the one Spec requires. An entry with a nil Filter never matches.
	Filter Filter
}

// Index finds the entries whose filters match an event without evaluating
// every filter.
//
// Strategy. When an Index is built, each entry goes into exactly one bucket:
//
//   - by type, when its Spec requires an exact `type`: `attributes.type` at
//     the top level, or in a member of a top-level `all` (searched
//     recursively through nested `all`s, which are conjunctions too);
//   - else by source, when its Spec requires an exact `source` the same way;
//   - else the scan list.
//
// Match looks up the event's type in the type map and its source in the
// source map (two hash lookups) and evaluates only the entries found there
// plus the scan list. With triggers selecting on an exact type, the common
// case, the cost of Match depends on how many triggers share the event's
// type, not on how many triggers there are; only triggers without an exact
// type or source (prefix-only, CEL-only, ...) cost a filter evaluation for
// every event.
//
// The entry's full Filter is still evaluated (the bucket only proves the
// type or source condition can hold), so the index never changes results,
// only the work done.
//
// An Index is immutable once built and safe for concurrent use; when the
// triggers change, build a new one and swap it in (for example with an
// atomic.Pointer).
type Index struct {
	entries  []Entry            // sorted by Name (stable)
	byType   map[string][]int32 // positions in entries, ascending
	bySource map[string][]int32 // positions in entries, ascending
	scan     []int32            // positions in entries, ascending
}

// IndexStats tells how an Index placed its entries.
type IndexStats struct {
	// Types and Sources are the number of distinct types and sources
	// indexed; ByType, BySource and Scan the number of entries in each
	// bucket.
	Types, Sources         int
	ByType, BySource, Scan int
}

// NewIndex builds an Index over entries. The slice is copied; the entries'
// Filters are shared.
func NewIndex(entries []Entry) *Index {
	ix := &Index{
		entries:  slices.Clone(entries),
		byType:   make(map[string][]int32),
		bySource: make(map[string][]int32),
	}
	slices.SortStableFunc(ix.entries, func(a, b Entry) int { return cmp.Compare(a.Name, b.Name) })
	for i, e := range ix.entries {
		pos := int32(i)
		if t, ok := requiredExact(e.Spec, "type", 0); ok {
			ix.byType[t] = append(ix.byType[t], pos)
		} else if s, ok := requiredExact(e.Spec, "source", 0); ok {
			ix.bySource[s] = append(ix.bySource[s], pos)
		} else {
			ix.scan = append(ix.scan, pos)
		}
	}
	return ix
}

// requiredExact returns a non-empty value that attribute name must equal
// for s to match: from s.Attributes or, recursively, from a member of s.All.
func requiredExact(s Spec, name string, depth int) (string, bool) {
	if v := s.Attributes[name]; v != "" {
		return v, true
	}
	if depth >= MaxDepth {
		return "", false
	}
	for _, sub := range s.All {
		if v, ok := requiredExact(sub, name, depth+1); ok {
			return v, true
		}
	}
	return "", false
}

// Len returns the number of entries in the Index.
func (ix *Index) Len() int { return len(ix.entries) }

// Stats tells how the entries are bucketed.
func (ix *Index) Stats() IndexStats {
	st := IndexStats{Types: len(ix.byType), Sources: len(ix.bySource), Scan: len(ix.scan)}
	for _, l := range ix.byType {
		st.ByType += len(l)
	}
	for _, l := range ix.bySource {
		st.BySource += len(l)
	}
	return st
}

// Match appends to dst the names of the entries whose filters match the
// event held by in, in name order, and returns the extended slice. Pass
// dst[:0] of a reused slice to avoid allocating.
func (ix *Index) Match(in *Input, dst []string) []string {
	ev := in.Event()
	var byType, bySource []int32
	if t := ev.GetType(); t != "" {
		byType = ix.byType[t]
	}
	if s := ev.GetSource(); s != "" {
		bySource = ix.bySource[s]
	}
	scan := ix.scan
	// Each entry is in one bucket only and every bucket is sorted by
	// position, so merging the three yields entries in name order without
	// duplicates.
	for {
		pos, ok := popMin(&byType, &bySource, &scan)
		if !ok {
			return dst
		}
		if e := &ix.entries[pos]; e.Filter != nil && e.Filter.Match(in) {
			dst = append(dst, e.Name)
		}
	}
}

// popMin removes and returns the smallest head of three ascending lists.
func popMin(a, b, c *[]int32) (int32, bool) {
	var best *[]int32
	for _, l := range [...]*[]int32{a, b, c} {
		if len(*l) > 0 && (best == nil || (*l)[0] < (*best)[0]) {
			best = l
		}
	}
	if best == nil {
		return 0, false
	}
	pos := (*best)[0]
	*best = (*best)[1:]
	return pos, true
}
