package connectors

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// FieldType is the type of a connector field.
type FieldType string

// Field types.
const (
	TypeString     FieldType = "string"
	TypeInt        FieldType = "int"
	TypeBool       FieldType = "bool"
	TypeDuration   FieldType = "duration"
	TypeStringList FieldType = "list of strings"
	TypeStringMap  FieldType = "map of strings"
	// TypeSecretName is a string naming a secret the server holds
	// (internal/secrets): the field carries the name, never the value.
	// Broker targets take their credentials this way.
	TypeSecretName FieldType = "secret name"
)

// Field documents and types one configuration field of a connector.
type Field struct {
	Name string
	Type FieldType
	// Default is used when the field is absent; nil for none.
	Default any
	// Required fields have no default and must be given.
	Required bool
	// Secret fields are never logged or shown.
	Secret bool
	// Doc says what the field does, in one or two sentences.
	Doc string
	// Example is a sample value for the docs.
	Example string
}

// EventDoc documents the CloudEvent a connector emits.
type EventDoc struct {
	Type, Source, Subject, ID, Time, DataContentType, Data string
	// Extensions lists extension attributes and what they hold.
	Extensions map[string]string
}

// Confirms says whom a source tells that an event is safe once Switchyard
// has accepted it (the Ack with a nil error). Whoever is told lets go of the
// event: a replication slot moves past it, a broker deletes the message, a
// webhook sender stops retrying. From then on Switchyard's store holds the
// only copy, so on the embedded store, which keeps everything in memory, a
// restart loses every such event not yet delivered. The server therefore
// refuses to run a source that confirms anything on the embedded store
// unless the operator allows it (allow_volatile_sources).
type Confirms string

// What sources confirm.
const (
	// ConfirmsUpstream: the source commits its position to the system it
	// reads (a slot's LSN, a group's offset, a message acknowledgement),
	// which does not send those events again.
	ConfirmsUpstream Confirms = "upstream"
	// ConfirmsCaller: a push source answers its caller with success, and
	// the caller does not send again.
	ConfirmsCaller Confirms = "caller"
	// ConfirmsCheckpoint: the source keeps its position in Switchyard's own
	// store (Env.Checkpoints). A store that forgets the events forgets the
	// position with them, and the source starts over as on its first start.
	ConfirmsCheckpoint Confirms = "checkpoint"
	// ConfirmsNothing: the source tells no one and reads again after a
	// restart whatever it had not delivered; a volatile store loses nothing
	// of it.
	ConfirmsNothing Confirms = "nothing"
)

// unknownLoss is what an undeclared connector is assumed to lose.
const unknownLoss = "events accepted but not yet delivered (the connector does not declare what it confirms, so it is assumed to confirm them)"

func (c Confirms) valid() bool {
	switch c {
	case ConfirmsUpstream, ConfirmsCaller, ConfirmsCheckpoint, ConfirmsNothing:
		return true
	}
	return false
}

// Spec registers a connector.
type Spec struct {
	// Kind names the connector in configuration ("postgres", "kafka").
	Kind string
	// Summary is one line; Description may be longer (Markdown).
	Summary, Description string
	Fields               []Field
	Emits                EventDoc
	// Confirms says whom the source tells that accepted events are safe.
	// Empty means undeclared and is treated as confirming (every built-in
	// connector declares it; a test checks).
	Confirms Confirms
	// Loses says, in one sentence fragment, what a restart of a volatile
	// store loses with this connector (e.g. "row changes accepted but not
	// yet delivered: the slot's confirmed LSN has moved past them, so
	// PostgreSQL does not send them again"). It is shown in the docs, in
	// the error refusing the source on the embedded store and in the
	// start-up warning when it is allowed there. Empty when Confirms is
	// ConfirmsNothing.
	Loses string
	New   Constructor
}

var kindRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (s Spec) validate() error {
	var errs []error
	if !kindRE.MatchString(s.Kind) {
		errs = append(errs, fmt.Errorf("kind %q must be lower-case letters, digits and '_'", s.Kind))
	}
	if s.Summary == "" || s.New == nil {
		errs = append(errs, fmt.Errorf("connector %q needs a summary and a constructor", s.Kind))
	}
	switch {
	case s.Confirms != "" && !s.Confirms.valid():
		errs = append(errs, fmt.Errorf("connector %q: Confirms %q: want upstream, caller, checkpoint or nothing", s.Kind, s.Confirms))
	case s.Confirms == ConfirmsNothing && s.Loses != "":
		errs = append(errs, fmt.Errorf("connector %q confirms nothing, so a restart loses nothing: Loses must be empty", s.Kind))
	}
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if f.Name == "" || f.Doc == "" || f.Type == "" {
			errs = append(errs, fmt.Errorf("connector %q: field %q needs a name, a type and a doc", s.Kind, f.Name))
		}
		if seen[f.Name] {
			errs = append(errs, fmt.Errorf("connector %q: field %q twice", s.Kind, f.Name))
		}
		seen[f.Name] = true
		if f.Required && f.Default != nil {
			errs = append(errs, fmt.Errorf("connector %q: required field %q has a default", s.Kind, f.Name))
		}
		if f.Default != nil {
			if _, err := convert(f, f.Default); err != nil {
				errs = append(errs, fmt.Errorf("connector %q: field %q: default: %w", s.Kind, f.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Volatile reports whether a restart of a volatile store loses events of
// this connector's sources (every Confirms but ConfirmsNothing).
func (s Spec) Volatile() bool { return s.Confirms != ConfirmsNothing }

// Risk is a declared source that loses events when the store forgets them.
type Risk struct {
	// Path locates the declaration ("sources[2]").
	Path       string
	Name, Kind string
	Confirms   Confirms
	// Loses is the spec's Loses.
	Loses string
}

// Risks returns the declared sources whose kind is Volatile, in order.
// Kinds the registry does not know are skipped (NewRunner reports them).
func (r *Registry) Risks(decls []SourceConfig) []Risk {
	var out []Risk
	for i, d := range decls {
		s, ok := r.Lookup(d.Kind)
		if !ok || !s.Volatile() {
			continue
		}
		loses := s.Loses
		if loses == "" {
			loses = unknownLoss
		}
		out = append(out, Risk{Path: fmt.Sprintf("sources[%d]", i), Name: d.Name, Kind: d.Kind, Confirms: s.Confirms, Loses: loses})
	}
	return out
}

// Registry holds connector specs by kind. The zero value is not usable; use
// NewRegistry. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]Spec
}

// NewRegistry returns an empty registry (tests use their own).
func NewRegistry() *Registry { return &Registry{kinds: map[string]Spec{}} }

// Default is the registry built-in connectors register into.
var Default = NewRegistry()

// Register adds a spec; an invalid or duplicate spec is an error.
func (r *Registry) Register(s Spec) error {
	if err := s.validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kinds[s.Kind]; ok {
		return fmt.Errorf("connector %q registered twice", s.Kind)
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

// List returns every spec sorted by kind.
func (r *Registry) List() []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Spec, 0, len(r.kinds))
	for _, s := range r.kinds {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// Config is a source's validated fields with defaults applied.
type Config struct {
	values map[string]any
}

// Build validates raw fields (from the config file) against spec: unknown
// fields, missing required fields and values of the wrong type are errors
// naming the field under path (e.g. "sources[2].fields").
func (s Spec) Build(path string, raw map[string]any) (Config, error) {
	c, problems := CheckFields(s.Fields, raw)
	var errs []error
	for _, p := range problems {
		if p.Unknown {
			errs = append(errs, fmt.Errorf("%s.%s: unknown field of connector %q (%s)", path, p.Field, s.Kind, p.Msg))
			continue
		}
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, p.Field, p.Msg))
	}
	return c, errors.Join(errs...)
}

// FieldProblem is one field CheckFields refused.
type FieldProblem struct {
	// Field is the field's name.
	Field string
	// Unknown is set for a field the list does not declare; Msg then
	// lists the known ones.
	Unknown bool
	// Msg says what is wrong.
	Msg string
}

// CheckFields validates raw values against a list of fields, as Spec.Build
// does for a source, and returns them typed with the defaults filled in.
// Every problem is reported, unknown fields first (sorted), then the
// declared fields in their order. Broker targets validate their fields
// with it too.
func CheckFields(fields []Field, raw map[string]any) (Config, []FieldProblem) {
	var problems []FieldProblem
	c := Config{values: map[string]any{}}
	known := map[string]Field{}
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		known[f.Name] = f
		names = append(names, f.Name)
	}
	sort.Strings(names)
	var unknown []string
	for k := range raw {
		if _, ok := known[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		problems = append(problems, FieldProblem{Field: k, Unknown: true, Msg: "known: " + strings.Join(names, ", ")})
	}
	for _, f := range fields {
		v, ok := raw[f.Name]
		if !ok || v == nil {
			if f.Required {
				problems = append(problems, FieldProblem{Field: f.Name, Msg: "required: " + f.Doc})
				continue
			}
			v = f.Default
			if v == nil {
				continue
			}
		}
		cv, err := convert(f, v)
		if err != nil {
			problems = append(problems, FieldProblem{Field: f.Name, Msg: err.Error()})
			continue
		}
		c.values[f.Name] = cv
	}
	return c, problems
}

func convert(f Field, v any) (any, error) {
	switch f.Type {
	case TypeString, TypeSecretName:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case TypeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case TypeInt:
		switch n := v.(type) {
		case int:
			return n, nil
		case int64:
			return int(n), nil
		case float64:
			if n == float64(int(n)) {
				return int(n), nil
			}
		}
	case TypeDuration:
		switch d := v.(type) {
		case time.Duration:
			return d, nil
		case string:
			x, err := time.ParseDuration(d)
			if err != nil {
				return nil, fmt.Errorf("invalid duration %q (use e.g. 500ms, 10s, 5m)", d)
			}
			return x, nil
		}
	case TypeStringList:
		switch l := v.(type) {
		case []string:
			return l, nil
		case []any:
			out := make([]string, 0, len(l))
			for _, x := range l {
				s, ok := x.(string)
				if !ok {
					return nil, fmt.Errorf("want a list of strings, found %T", x)
				}
				out = append(out, s)
			}
			return out, nil
		}
	case TypeStringMap:
		switch m := v.(type) {
		case map[string]string:
			return m, nil
		case map[string]any:
			out := make(map[string]string, len(m))
			for k, x := range m {
				s, ok := x.(string)
				if !ok {
					return nil, fmt.Errorf("want a map of strings, %q is %T", k, x)
				}
				out[k] = s
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("want a %s, got %T (%v)", f.Type, v, v)
}

// String returns a string field ("" when unset).
func (c Config) String(name string) string { s, _ := c.values[name].(string); return s }

// Int returns an int field (0 when unset).
func (c Config) Int(name string) int { n, _ := c.values[name].(int); return n }

// Bool returns a bool field.
func (c Config) Bool(name string) bool { b, _ := c.values[name].(bool); return b }

// Duration returns a duration field.
func (c Config) Duration(name string) time.Duration { d, _ := c.values[name].(time.Duration); return d }

// StringList returns a list field.
func (c Config) StringList(name string) []string { l, _ := c.values[name].([]string); return l }

// StringMap returns a map field.
func (c Config) StringMap(name string) map[string]string {
	m, _ := c.values[name].(map[string]string)
	return m
}

// Map returns a copy of the fields' typed values (defaults included), for
// callers that need to compare two configurations.
func (c Config) Map() map[string]any {
	out := make(map[string]any, len(c.values))
	for k, v := range c.values {
		out[k] = v
	}
	return out
}

// NewConfig builds a Config directly from typed values (for tests and
// programmatic use); it applies no defaults.
func NewConfig(values map[string]any) Config { return Config{values: values} }
