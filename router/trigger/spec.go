package trigger

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchyard-io/switchyard/router/filter"
)

// Delivery defaults, applied to every zero field of a Delivery.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxAttempts    = 8
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultMaxEventAge    = 24 * time.Hour
	DefaultMaxConcurrency = 64
	DefaultMaxQueue       = 100_000
)

// Limits of the delivery policy fields, checked by Validate.
const (
	MaxTimeout        = 15 * time.Minute
	MaxMaxAttempts    = 1000
	MaxMaxConcurrency = 10_000
	MaxMaxQueue       = 100_000_000
	MaxNameLength     = 63
)

// Spec is one trigger as written in a trigger file or sent over the API.
type Spec struct {
	// Name identifies the trigger; see ValidName.
	Name string `json:"name"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// Filter selects events; empty selects every event.
	Filter filter.Spec `json:"filter,omitempty"`
	// Target is where matching events go.
	Target Target `json:"target"`
	// Delivery is how they are delivered.
	Delivery Delivery `json:"delivery,omitempty"`
	// Scope confines the trigger to events whose source and type lie
	// inside it, whatever Filter says (Compile ANDs it into the filter the
	// router matches with). The server sets it from a caller whose own
	// scope restricts event sources or types, so a tenant's trigger never
	// receives another tenant's events.
	Scope EventScope `json:"scope,omitzero"`
}

// EventScope restricts the events a trigger may receive by prefixes of
// their source and type. An empty list does not restrict.
type EventScope struct {
	// Sources: the event's source must start with one of these.
	Sources []string `json:"sources,omitempty"`
	// Types: the event's type must start with one of these.
	Types []string `json:"types,omitempty"`
}

// Limits of an EventScope, checked by Validate (the same as an identity's
// scope may hold).
const (
	MaxScopePrefixes    = 32
	MaxScopePrefixBytes = 256
)

// IsEmpty reports whether the scope restricts nothing.
func (e EventScope) IsEmpty() bool { return len(e.Sources) == 0 && len(e.Types) == 0 }

// conditions returns the filter conditions the scope adds: for each
// restricted attribute, a prefix condition (or any of several).
func (e EventScope) conditions() []filter.Spec {
	var out []filter.Spec
	for _, dim := range []struct {
		attr     string
		prefixes []string
	}{{"source", e.Sources}, {"type", e.Types}} {
		switch len(dim.prefixes) {
		case 0:
		case 1:
			out = append(out, filter.Spec{Prefix: map[string]string{dim.attr: dim.prefixes[0]}})
		default:
			any := make([]filter.Spec, len(dim.prefixes))
			for i, p := range dim.prefixes {
				any[i] = filter.Spec{Prefix: map[string]string{dim.attr: p}}
			}
			out = append(out, filter.Spec{Any: any})
		}
	}
	return out
}

// Target is where a trigger's events go: exactly one of GRPC, URL, Pull
// and Publish is set. See target.go for the TLS and credential settings of
// GRPC and URL, publish.go for Publish.
type Target struct {
	// GRPC is the host:port of a switchyard.function.v1.FunctionService
	// server, reached in plaintext, or grpcs://host:port for TLS.
	GRPC string `json:"grpc,omitempty"`
	// URL is an http or https URL that receives CloudEvents binary-mode POSTs.
	URL string `json:"url,omitempty"`
	// Pull, set (`pull: {}`), makes consumers pull the events over the
	// PullService instead (see PullTarget).
	Pull *PullTarget `json:"pull,omitempty"`
	// Publish, set, publishes the events to a broker or a database table
	// (see PublishTarget) instead of invoking a function.
	Publish *PublishTarget `json:"publish,omitempty"`
	// TLS configures a grpcs:// or https:// target; nil takes the server's
	// defaults.
	TLS *TargetTLS `json:"tls,omitempty"`
	// Auth attaches credentials to every attempt.
	Auth *TargetAuth `json:"auth,omitempty"`
}

// String renders the target as Redacted does, so that a target printed by
// accident shows no credential.
func (t Target) String() string { return t.Redacted() }

// Delivery is a trigger's delivery policy. A zero field takes its default
// (the Default* constants) in SetDefaults.
type Delivery struct {
	// Timeout bounds one attempt.
	Timeout Duration `json:"timeout,omitzero"`
	// MaxAttempts counts attempts, the first included, before the event is
	// dead-lettered.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// InitialBackoff is the first retry delay; it doubles per attempt up to
	// MaxBackoff, and the actual delay is drawn uniformly below it (full jitter).
	InitialBackoff Duration `json:"initial_backoff,omitzero"`
	// MaxBackoff caps every retry delay, including a delay a function asks for.
	MaxBackoff Duration `json:"max_backoff,omitzero"`
	// MaxEventAge dead-letters events accepted longer ago than this.
	MaxEventAge Duration `json:"max_event_age,omitzero"`
	// MaxConcurrency caps attempts in flight across all instances.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// MaxQueue caps the trigger's undelivered events (queued, in flight,
	// waiting for a retry, or accepted and not yet fanned out); at it
	// publishers are pushed back (HTTP 429, gRPC RESOURCE_EXHAUSTED).
	MaxQueue int64 `json:"max_queue,omitempty"`
	// DeadLetterMaxEntries caps the trigger's dead-letter queue; the oldest
	// entries are evicted beyond it, and counted. 0: the server's default.
	DeadLetterMaxEntries int64 `json:"dead_letter_max_entries,omitempty"`
	// DeadLetterMaxAge evicts (and counts) older dead letters. 0: the
	// server's default.
	DeadLetterMaxAge Duration `json:"dead_letter_max_age,omitzero"`
	// Ordering, set, delivers the events of one key one at a time, in
	// acceptance order (see Ordering).
	Ordering *Ordering `json:"ordering,omitempty"`
	// DedupWindow makes an event a no-op for this trigger when an event of
	// the same source and id was queued for it within the window: the
	// publisher is answered success, the copy counted as a duplicate (see
	// router/store/dedup.go). Nil: the server's default (serve
	// --dedup-window, off unless set); 0: off. At most MaxDedupWindow.
	DedupWindow *Duration `json:"dedup_window,omitempty"`
}

// Ordering is ordered delivery per key: the events of one key form a lane,
// delivered one at a time in the order they were accepted; lanes proceed
// in parallel up to MaxConcurrency, and a failing event (its retries, its
// backoff) holds only its own lane.
type Ordering struct {
	// Key is a CloudEvents attribute name ("subject", an extension) or a
	// CEL expression over the event (the variables of CEL filters). An
	// event whose key is missing or empty goes to the default lane, "".
	Key string `json:"key"`
	// OnDead says what a dead-lettered event does to its lane: OnDeadContinue
	// (the default) moves on to the next event, OnDeadBlock stops the lane
	// until the dead letter is replayed (delivered first) or skipped.
	OnDead string `json:"on_dead,omitempty"`
}

// Values of Ordering.OnDead.
const (
	OnDeadContinue = "continue"
	OnDeadBlock    = "block"
)

// SetDefaults fills every zero field with its default.
func (d *Delivery) SetDefaults() {
	if d.Timeout.Duration == 0 {
		d.Timeout.Duration = DefaultTimeout
	}
	if d.MaxAttempts == 0 {
		d.MaxAttempts = DefaultMaxAttempts
	}
	if d.InitialBackoff.Duration == 0 {
		d.InitialBackoff.Duration = DefaultInitialBackoff
	}
	if d.MaxBackoff.Duration == 0 {
		d.MaxBackoff.Duration = DefaultMaxBackoff
	}
	if d.MaxEventAge.Duration == 0 {
		d.MaxEventAge.Duration = DefaultMaxEventAge
	}
	if d.MaxConcurrency == 0 {
		d.MaxConcurrency = DefaultMaxConcurrency
	}
	if d.MaxQueue == 0 {
		d.MaxQueue = DefaultMaxQueue
	}
	if d.Ordering != nil && d.Ordering.OnDead == "" {
		o := *d.Ordering // the caller's spec may share it
		o.OnDead = OnDeadContinue
		d.Ordering = &o
	}
}

// SetDefaults fills the delivery policy's zero fields.
func (s *Spec) SetDefaults() { s.Delivery.SetDefaults() }

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ValidName reports whether name is a valid trigger name: 1 to 63 lower-case
// letters, digits and '-', starting and ending with a letter or digit. Names
// never contain '{', '}' or ':', so they are safe inside Redis hash tags.
func ValidName(name string) bool {
	return len(name) <= MaxNameLength && nameRE.MatchString(name)
}

// CheckName returns nil when name is a valid trigger name (see ValidName),
// else an error saying what a name must look like.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("required")
	case !ValidName(name):
		return fmt.Errorf("%q is not a valid name: use 1 to %d lower-case letters, digits and '-', starting and ending with a letter or digit", name, MaxNameLength)
	}
	return nil
}

// Validate checks the spec as given (before or after SetDefaults) and
// reports every problem as a FieldError in a FieldErrors list.
func (s Spec) Validate() error {
	if _, errs := s.validate(); len(errs) > 0 {
		return errs
	}
	return nil
}

// validate checks the spec and returns its compiled filter when valid.
func (s Spec) validate() (filter.Filter, FieldErrors) {
	var errs FieldErrors
	add := func(path, format string, a ...any) {
		errs = append(errs, FieldError{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	if err := CheckName(s.Name); err != nil {
		add("name", "%v", err)
	}
	if len(s.Description) > 1024 {
		add("description", "longer than 1024 bytes")
	}
	f, err := filter.Compile(s.Filter)
	if err != nil {
		errs = append(errs, filterErrors(err)...)
	}
	errs = append(errs, s.Target.validate()...)
	d := s.Delivery
	durations := []struct {
		path string
		v    time.Duration
		max  time.Duration
	}{
		{"delivery.timeout", d.Timeout.Duration, MaxTimeout},
		{"delivery.initial_backoff", d.InitialBackoff.Duration, 24 * time.Hour},
		{"delivery.max_backoff", d.MaxBackoff.Duration, 7 * 24 * time.Hour},
		{"delivery.max_event_age", d.MaxEventAge.Duration, 365 * 24 * time.Hour},
	}
	for _, f := range durations {
		switch {
		case f.v < 0:
			add(f.path, "must not be negative, got %s", f.v)
		case f.v > f.max:
			add(f.path, "must be at most %s, got %s", f.max, f.v)
		}
	}
	if d.Timeout.Duration != 0 && d.Timeout.Duration < time.Millisecond {
		add("delivery.timeout", "must be at least 1ms, got %s", d.Timeout.Duration)
	}
	if d.InitialBackoff.Duration > 0 && d.MaxBackoff.Duration > 0 && d.InitialBackoff.Duration > d.MaxBackoff.Duration {
		add("delivery.initial_backoff", "%s exceeds delivery.max_backoff %s", d.InitialBackoff.Duration, d.MaxBackoff.Duration)
	}
	if d.MaxAttempts < 0 || d.MaxAttempts > MaxMaxAttempts {
		add("delivery.max_attempts", "must be between 1 and %d, got %d", MaxMaxAttempts, d.MaxAttempts)
	}
	if d.MaxConcurrency < 0 || d.MaxConcurrency > MaxMaxConcurrency {
		add("delivery.max_concurrency", "must be between 1 and %d, got %d", MaxMaxConcurrency, d.MaxConcurrency)
	}
	if d.DeadLetterMaxEntries < 0 || d.DeadLetterMaxEntries > MaxMaxQueue {
		add("delivery.dead_letter_max_entries", "must be between 0 (server default) and %d, got %d", MaxMaxQueue, d.DeadLetterMaxEntries)
	}
	if d.DeadLetterMaxAge.Duration < 0 {
		add("delivery.dead_letter_max_age", "must not be negative, got %s", d.DeadLetterMaxAge.Duration)
	}
	errs = append(errs, d.validateDedup()...)
	if d.MaxQueue < 0 || d.MaxQueue > MaxMaxQueue {
		add("delivery.max_queue", "must be between 1 and %d, got %d", MaxMaxQueue, d.MaxQueue)
	}
	if o := d.Ordering; o != nil {
		if _, err := filter.CompileKey(o.Key, "delivery.ordering.key"); err != nil {
			errs = append(errs, filterErrors(err)...)
		}
		switch o.OnDead {
		case "", OnDeadContinue, OnDeadBlock:
		default:
			add("delivery.ordering.on_dead", "must be %q or %q, got %q", OnDeadContinue, OnDeadBlock, o.OnDead)
		}
	}
	for _, dim := range []struct {
		name string
		list []string
	}{{"sources", s.Scope.Sources}, {"types", s.Scope.Types}} {
		if len(dim.list) > MaxScopePrefixes {
			add("scope."+dim.name, "at most %d prefixes, got %d", MaxScopePrefixes, len(dim.list))
			continue
		}
		for i, p := range dim.list {
			path := fmt.Sprintf("scope.%s[%d]", dim.name, i)
			switch {
			case p == "":
				add(path, "a prefix cannot be empty (leave the list empty for no restriction)")
			case len(p) > MaxScopePrefixBytes:
				add(path, "a prefix has at most %d bytes, got %d", MaxScopePrefixBytes, len(p))
			case !utf8.ValidString(p):
				add(path, "not valid UTF-8")
			}
		}
	}
	return f, errs
}

func validHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", hp, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", hp)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has an invalid port", hp)
	}
	return nil
}

// filterErrors turns a filter compile error into field errors under "filter".
func filterErrors(err error) FieldErrors {
	var out FieldErrors
	var leaves []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		leaves = append(leaves, e)
	}
	walk(err)
	for _, e := range leaves {
		var ce *filter.CompileError
		if errors.As(e, &ce) {
			out = append(out, FieldError{Path: ce.Path, Line: ce.Line, Column: ce.Column, Msg: ce.Msg})
			continue
		}
		out = append(out, FieldError{Path: "filter", Msg: e.Error()})
	}
	return out
}

// FieldError is one invalid field of a trigger.
type FieldError struct {
	// Path locates the field, e.g. "delivery.max_attempts" or "filter.all[1].cel".
	Path string
	// Line and Column locate the problem inside an expression (1-based), or 0.
	Line, Column int
	// Msg says what is wrong.
	Msg string
}

func (e FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %d:%d: %s", e.Path, e.Line, e.Column, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

// FieldErrors lists every invalid field of a trigger.
type FieldErrors []FieldError

func (e FieldErrors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return "invalid trigger: " + strings.Join(msgs, "; ")
}

// Duration is a time.Duration written as a Go duration string ("500ms",
// "5m", "24h") in trigger files.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: use a number with a unit, like 500ms, 10s, 5m or 24h", s)
		}
		d.Duration = v
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("invalid duration %s: use a string like \"10s\"", b)
	}
	d.Duration = time.Duration(secs * float64(time.Second))
	return nil
}
