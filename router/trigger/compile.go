package trigger

import (
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
)

// Trigger is a validated spec with its defaults applied and its filter
// compiled. It is immutable and safe for concurrent use.
type Trigger struct {
	// Spec is the trigger as stored, defaults applied.
	Spec Spec
	// Filter is the compiled filter.
	Filter filter.Filter
	// Generation is the stored generation this was compiled from.
	Generation int64
	// Stored is the stored message this was compiled from (nil when compiled
	// from a spec alone): what an instance writes back if the store lost it.
	// Not to be modified.
	Stored *switchyardv1.Trigger
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
	return &Trigger{Spec: s, Filter: f}, nil
}
