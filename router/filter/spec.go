package filter

// Spec is the declarative form of a trigger filter, as written under the
// `filter:` key of a trigger file (YAML or JSON; the json tags below are
// the keys in both, see trigger.Decode).
//
// Every non-empty field at one level is a condition and all of them must hold
// (logical AND). A Spec with no condition at all matches every event.
// Empty maps and empty slices count as absent: `any: []` is not a filter that
// matches nothing, it is no filter. Use `not: {}` to match nothing.
//
// A Spec is only data; Compile checks it and turns it into a Filter.
type Spec struct {
	// Attributes requires each named context attribute (core or extension)
	// to be present with exactly this value, compared on the attribute's
	// canonical string form (CloudEvents 1.0 type system: integers in
	// decimal, booleans as "true"/"false", timestamps in RFC 3339 UTC,
	// binary in standard base64).
	Attributes map[string]string `json:"attributes,omitempty"`

	// Prefix requires each named attribute to be present and its canonical
	// string form to start with the given, non-empty, value.
	Prefix map[string]string `json:"prefix,omitempty"`

	// Suffix requires each named attribute to be present and its canonical
	// string form to end with the given, non-empty, value.
	Suffix map[string]string `json:"suffix,omitempty"`

	// CESQL is a CloudEvents SQL v1 expression over the context attributes;
	// the event matches when it evaluates to boolean true without error.
	CESQL string `json:"cesql,omitempty"`

	// CEL is a Common Expression Language expression over the context
	// attributes and the decoded data (see the package documentation for the
	// variables); the event matches when it evaluates to true without error.
	CEL string `json:"cel,omitempty"`

	// All requires every sub-filter to match.
	All []Spec `json:"all,omitempty"`

	// Any requires at least one sub-filter to match.
	Any []Spec `json:"any,omitempty"`

	// Not requires the sub-filter not to match. `not: {}` (the negation of
	// the empty, match-all filter) matches nothing.
	Not *Spec `json:"not,omitempty"`
}

// IsEmpty reports whether s has no condition at all, in which case it
// matches every event. A non-nil Not always makes a Spec non-empty.
func (s Spec) IsEmpty() bool {
	return len(s.Attributes) == 0 &&
		len(s.Prefix) == 0 &&
		len(s.Suffix) == 0 &&
		s.CESQL == "" &&
		s.CEL == "" &&
		len(s.All) == 0 &&
		len(s.Any) == 0 &&
		s.Not == nil
}
