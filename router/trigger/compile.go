package trigger

import (
	"slices"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
)

// Trigger is a validated spec with its defaults applied and its filter
// compiled. It is immutable and safe for concurrent use.
type Trigger struct {
	// Spec is the trigger as stored, defaults applied.
	Spec Spec
	// Match is the filter the router matches with, as a spec: Spec.Filter
	// with Spec.Scope's conditions added to its top-level conjunction (so
	// an exact type or source in Spec.Filter still indexes the trigger).
	Match filter.Spec
	// Filter is Match compiled: the scope's conditions (explained at
	// "scope.sources" and "scope.types", evaluated first since they cost
	// a prefix test) and Spec.Filter compiled.
	Filter filter.Filter
	// Generation is the stored generation this was compiled from.
	Generation int64
	// Stored is the stored message this was compiled from (nil when compiled
	// from a spec alone): what an instance writes back if the store lost it.
	// Not to be modified.
	Stored *switchyardv1.Trigger
	// Key computes an event's ordering key; nil when the trigger is not
	// ordered (Spec.Delivery.Ordering unset).
	Key *filter.Key
}

// Name returns the trigger's name.
func (t *Trigger) Name() string { return t.Spec.Name }

// Compile validates s, applies defaults and compiles its filter.
func Compile(s Spec) (*Trigger, error) {
	s.SetDefaults()
	f, errs := s.validate()
	if len(errs) > 0 {
		return nil, errs
	}
	t := &Trigger{Spec: s, Match: s.Filter, Filter: f}
	if o := s.Delivery.Ordering; o != nil {
		k, err := filter.CompileKey(o.Key, "delivery.ordering.key")
		if err != nil { // validate compiled it
			return nil, filterErrors(err)
		}
		t.Key = k
	}
	if !s.Scope.IsEmpty() {
		// Added at the top level rather than wrapping the filter in a new
		// "all", so a filter nested to the limit still indexes.
		t.Match.All = append(slices.Clone(s.Filter.All), s.Scope.conditions()...)
		t.Filter = filter.And(
			filter.AttributePrefixes("scope.sources", "source", s.Scope.Sources...),
			filter.AttributePrefixes("scope.types", "type", s.Scope.Types...),
			f)
	}
	return t, nil
}

// Explain evaluates the trigger's filter, its scope included, against the
// event held by in: the verdict the router reaches and the reasons (see
// filter.Explain).
func (t *Trigger) Explain(in *filter.Input) filter.Explanation {
	return filter.Explain(t.Filter, in)
}
