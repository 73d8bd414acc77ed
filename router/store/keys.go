package store

// DefaultPrefix starts every key Switchyard writes.
const DefaultPrefix = "sy"

// Keys builds key names. The zero value is not usable; use NewKeys.
type Keys struct{ p string }

// NewKeys returns the key builder for prefix (DefaultPrefix when empty).
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Keys{p: prefix}
}

// Triggers is the hash of stored triggers (name → switchyard.v1.Trigger).
func (k Keys) Triggers() string { return k.p + ":{cfg}:triggers" }

// Revision counts trigger changes; instances poll it.
func (k Keys) Revision() string { return k.p + ":{cfg}:rev" }

// Epoch names the store's lifetime: a random id written when an instance
// finds none (the first start, or Redis came back without its data), so a
// revision is only comparable within one epoch. An epoch whose revision key
// is gone counts as none: its revisions would start again from 0.
func (k Keys) Epoch() string { return k.p + ":{cfg}:epoch" }

// Members is the registry of running instances (a ZSET instance id → its
// last heartbeat, unix ms on the Redis clock).
func (k Keys) Members() string { return k.p + ":{cfg}:members" }

// Served records what each registered instance serves (a HASH instance id →
// "<epoch> <revision>": every trigger change up to that revision is live there).
func (k Keys) Served() string { return k.p + ":{cfg}:served" }

// ConfigChannel is the pub/sub channel announcing trigger changes and the
// instances' acknowledgements of them (see Notice).
func (k Keys) ConfigChannel() string { return k.p + ":cfg" }

// WakeChannel is the pub/sub channel naming triggers that got work.
func (k Keys) WakeChannel() string { return k.p + ":wake" }

// Log is the ingest log stream: every accepted event, until fanned out.
func (k Keys) Log() string { return k.p + ":{in}:log" }

// Admitted counts, per trigger, the events in the ingest log not yet fanned
// out (a HASH trigger → count), kept in step with the log by the same
// transactions; admission adds it to the queue's size.
func (k Keys) Admitted() string { return k.p + ":{in}:admitted" }

// Queue names one trigger's keys.
func (k Keys) Queue(trigger string) QueueKeys {
	b := k.p + ":{t:" + trigger + "}:"
	return QueueKeys{
		Ready:    b + "ready",
		Events:   b + "ev",
		Attempts: b + "att",
		History:  b + "hist",
		InFlight: b + "inflight",
		Delayed:  b + "delayed",
		Stats:    b + "stats",
		DLQ:      b + "dlq",
		Since:    b + "since",
		Dedup:    b + "dedup",
	}
}

// QueueKeys are one trigger's keys, all in the hash slot of {t:<name>}.
type QueueKeys struct {
	Ready    string // LIST of event ids waiting for an attempt, oldest first
	Events   string // HASH event id → event (io.cloudevents.v1.CloudEvent bytes)
	Attempts string // HASH event id → number of the latest attempt started
	History  string // HASH event id → failed attempts so far (switchyard.v1.DeadLetter bytes, attempts only)
	InFlight string // ZSET event id → lease deadline (unix ms) of the running attempt
	Delayed  string // ZSET event id → due time (unix ms) of its scheduled retry
	Stats    string // HASH counters and circuit-breaker state
	DLQ      string // STREAM of dead letters (fields "e": the event, "d": switchyard.v1.DeadLetter without it)
	Since    string // HASH event id → unix ms its age counts from, for replayed events
	Dedup    string // ZSET DedupKey → when queued (unix ms, Redis clock), for the dedup window (see dedup.go); not in all()
}

func (q QueueKeys) all() []string {
	return []string{q.Ready, q.Events, q.Attempts, q.History, q.InFlight, q.Delayed, q.Stats, q.DLQ, q.Since}
}
