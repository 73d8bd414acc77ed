package targets

import (
	"fmt"
	"sort"
	"sync"
)

// Registry holds target specs by kind. The zero value is not usable; use
// NewRegistry. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]Spec
}

// NewRegistry returns an empty registry (tests use their own).
func NewRegistry() *Registry { return &Registry{kinds: map[string]Spec{}} }

// Default is the registry built-in kinds register into (targets/all
// imports them all).
var Default = NewRegistry()

// Register adds a spec; an invalid or duplicate spec is an error.
func (r *Registry) Register(s Spec) error {
	if err := s.validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kinds[s.Kind]; ok {
		return fmt.Errorf("target kind %q registered twice", s.Kind)
	}
	r.kinds[s.Kind] = s
	return nil
}

// MustRegister registers s in Default and panics on error (for init funcs).
func MustRegister(s Spec) {
	if err := Default.Register(s); err != nil {
		panic(err)
	}
}

// Lookup returns the spec of kind.
func (r *Registry) Lookup(kind string) (Spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.kinds[kind]
	return s, ok
}

// Kinds returns the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// List returns every spec sorted by kind.
func (r *Registry) List() []Spec {
	kinds := r.Kinds()
	out := make([]Spec, 0, len(kinds))
	for _, k := range kinds {
		s, _ := r.Lookup(k)
		out = append(out, s)
	}
	return out
}
