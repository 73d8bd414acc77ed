package router

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/switchyard-io/switchyard/dlq"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
)

// Defaults of Config.
const (
	DefaultBreakerThreshold   = 5
	DefaultBreakerCooldown    = time.Second
	DefaultBreakerMaxCooldown = time.Minute
	DefaultLeaseGrace         = 5 * time.Second
	DefaultSweepInterval      = time.Second
	DefaultFanoutBatch        = 512
	DefaultClaimBatch         = 128
	DefaultMaxHops            = 16
	DefaultMaxBatchEvents     = 1000
	DefaultLogClaimIdle       = 3 * time.Second
	DefaultDrainTimeout       = 15 * time.Second
	DefaultTriggerSyncTimeout = 5 * time.Second
	DefaultHeartbeatInterval  = time.Second
	DefaultAckTimeout         = time.Second
	DefaultMaxDedupWindow     = time.Hour
	// MissedHeartbeats is how many heartbeat intervals an instance may stay
	// silent before the others count it as gone: not waited for, and
	// removed from the registry.
	MissedHeartbeats           = 3
	DefaultMaxTriggers         = 50_000
	DefaultMaxTriggersPerScope = 1_000
	// HopsExtension counts how many times an event passed through
	// Switchyard: replies published, deliveries made (delivery.HopsExtension).
	HopsExtension = delivery.HopsExtension
)

// Config configures a Router. Zero fields take the defaults above.
type Config struct {
	// Prefix starts every Redis key (store.DefaultPrefix).
	Prefix string
	// InstanceID names this process in the store (hostname-pid).
	InstanceID string
	// BreakerThreshold consecutive target failures open a trigger's circuit
	// breaker; negative disables breakers.
	BreakerThreshold int
	// BreakerCooldown is the first open period; it doubles per consecutive
	// opening up to BreakerMaxCooldown.
	BreakerCooldown, BreakerMaxCooldown time.Duration
	// LeaseGrace is added to a trigger's timeout to form an attempt's lease:
	// an attempt not finished by then is taken to be lost with its instance.
	LeaseGrace time.Duration
	// SweepInterval is how often every trigger's queue is checked for work
	// that another instance scheduled (retries, expired leases).
	SweepInterval time.Duration
	// FanoutBatch is how many log records one fan-out step reads.
	FanoutBatch int
	// ClaimBatch is how many attempts one claim may start.
	ClaimBatch int
	// DLQMaxEntries caps each trigger's dead-letter queue; the oldest entries
	// are evicted (and counted) beyond it. The server's dlq.Policy (DLQ):
	// default dlq.DefaultMaxEntries; a trigger may set its own.
	DLQMaxEntries int64
	// DLQMaxAge evicts (and counts) dead letters older than this (default
	// dlq.DefaultMaxAge; a trigger may set its own).
	DLQMaxAge time.Duration
	// MaxHops is the loop guard: a function reply whose hop count would
	// exceed it is refused, and a delivery whose hop count would exceed it
	// is dead-lettered (HOP_LIMIT) without being sent.
	MaxHops int
	// MaxBatchEvents bounds one PublishBatch.
	MaxBatchEvents int
	// FilterCostPerEvent bounds the CEL cost of matching one event against
	// every trigger together (filter.DefaultCELEventBudget when 0): once
	// spent, the CEL filters not yet evaluated for the event do not match
	// it (counted in switchyard_filter_budget_exhausted_total). Each
	// expression is also bounded alone (filter.CELCostLimit); the budget
	// keeps the total from growing with the number of triggers.
	FilterCostPerEvent uint64
	// MaxTriggers caps the triggers the store holds; negative: no cap.
	// Creating one more is refused (ReserveTrigger).
	MaxTriggers int
	// MaxTriggersPerScope caps the triggers under each trigger-name prefix
	// that scopes a caller (a tenant); negative: no cap.
	MaxTriggersPerScope int
	// LogClaimIdle is how long a log record may stay unfinished by a fan-out
	// consumer before another takes it over.
	LogClaimIdle time.Duration
	// DrainTimeout bounds the wait for in-flight attempts at shutdown.
	DrainTimeout time.Duration
	// TriggerSyncTimeout bounds how long a trigger change waits for every
	// live instance to serve it before it answers anyway, naming the
	// instances that lag.
	TriggerSyncTimeout time.Duration
	// HeartbeatInterval is how often the instance renews its entry in the
	// registry of instances; one silent for MissedHeartbeats intervals counts
	// as gone.
	HeartbeatInterval time.Duration
	// UnaryInvoke makes every gRPC attempt a unary FunctionService/Invoke
	// call. By default a target that serves FunctionService/InvokeStream
	// gets its attempts as messages on one long-lived stream, which costs
	// both sides far less per event (see router/delivery/stream.go).
	UnaryInvoke bool
	// AckReplicas is how many Redis replicas must have a publish's events
	// (Redis WAIT on the connection that wrote them) before the publisher
	// is answered; 0 answers once the master has them. See
	// store.Durability.
	AckReplicas int
	// AckTimeout bounds that wait (DefaultAckTimeout); a publish whose
	// replicas did not confirm in time is answered ErrUnavailable, its
	// events kept.
	AckTimeout time.Duration
	// DedupWindow is the dedup window of the triggers that set none
	// (delivery.dedup_window unset); 0: off. See router/dedup.go.
	DedupWindow time.Duration
	// MaxDedupWindow is the longest dedup window a trigger may be given
	// through the API (DefaultMaxDedupWindow; at most
	// trigger.MaxDedupWindow); a stored trigger's longer window is cut to
	// it. It bounds the memory every trigger spends on deduplication.
	MaxDedupWindow time.Duration
	// Outbound is how targets are reached: the egress guard, TLS to
	// targets, the secrets triggers may name (see delivery.Outbound). It
	// configures the router's own invoker and the Policy that the API
	// applies to triggers (TriggerPolicy). The zero value checks nothing.
	Outbound delivery.Outbound
	// Tracing traces publishes and delivery attempts with OpenTelemetry
	// (see tracing.go); the zero value is off and costs nothing.
	Tracing Tracing
	// Metrics configures the Prometheus metrics (see MetricsConfig).
	Metrics MetricsConfig
	// AllowEvictingRedis lets Start use a Redis whose maxmemory-policy
	// evicts any key (allkeys-*), which deletes queues silently when
	// memory runs out; without it Start refuses such a Redis
	// (ErrEvictingStore).
	AllowEvictingRedis bool
	// Logger receives JSON logs (slog.Default when nil).
	Logger *slog.Logger
}

// DLQ is the server's dead-letter retention (DLQMaxEntries, DLQMaxAge).
func (c Config) DLQ() dlq.Policy {
	return dlq.Policy{MaxEntries: c.DLQMaxEntries, MaxAge: c.DLQMaxAge}
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = store.DefaultPrefix
	}
	if c.InstanceID == "" {
		h, _ := os.Hostname()
		c.InstanceID = h + "-" + strconv.Itoa(os.Getpid())
	}
	if c.BreakerThreshold == 0 {
		c.BreakerThreshold = DefaultBreakerThreshold
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = DefaultBreakerCooldown
	}
	if c.BreakerMaxCooldown == 0 {
		c.BreakerMaxCooldown = DefaultBreakerMaxCooldown
	}
	if c.LeaseGrace == 0 {
		c.LeaseGrace = DefaultLeaseGrace
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.FanoutBatch == 0 {
		c.FanoutBatch = DefaultFanoutBatch
	}
	if c.ClaimBatch == 0 {
		c.ClaimBatch = DefaultClaimBatch
	}
	pol := c.DLQ()
	pol.SetDefaults()
	c.DLQMaxEntries, c.DLQMaxAge = pol.MaxEntries, pol.MaxAge
	if c.MaxHops == 0 {
		c.MaxHops = DefaultMaxHops
	}
	if c.MaxBatchEvents == 0 {
		c.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if c.MaxTriggers == 0 {
		c.MaxTriggers = DefaultMaxTriggers
	}
	if c.MaxTriggersPerScope == 0 {
		c.MaxTriggersPerScope = DefaultMaxTriggersPerScope
	}
	if c.FilterCostPerEvent == 0 {
		c.FilterCostPerEvent = filter.DefaultCELEventBudget
	}
	if c.LogClaimIdle == 0 {
		c.LogClaimIdle = DefaultLogClaimIdle
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.TriggerSyncTimeout == 0 {
		c.TriggerSyncTimeout = DefaultTriggerSyncTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.MaxDedupWindow == 0 {
		c.MaxDedupWindow = DefaultMaxDedupWindow
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Metrics.setDefaults()
}

// prefixRE is what a key prefix may look like: no braces (a brace would move
// keys out of their Redis Cluster hash tags), no glob characters (the store
// lists keys by pattern), no white space.
var prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Prefix != "" && !prefixRE.MatchString(c.Prefix) {
		errs = append(errs, fmt.Errorf("key prefix %q: use 1 to 64 letters, digits, '.', '_', ':' and '-', starting with a letter or digit", c.Prefix))
	}
	if c.LeaseGrace < 0 {
		errs = append(errs, fmt.Errorf("lease grace must not be negative"))
	}
	if c.SweepInterval < 0 || (c.SweepInterval > 0 && c.SweepInterval < 10*time.Millisecond) {
		errs = append(errs, fmt.Errorf("sweep interval must be at least 10ms"))
	}
	if c.TriggerSyncTimeout < 0 {
		errs = append(errs, fmt.Errorf("trigger sync timeout must not be negative"))
	}
	if c.HeartbeatInterval < 0 || (c.HeartbeatInterval > 0 && c.HeartbeatInterval < 10*time.Millisecond) {
		errs = append(errs, fmt.Errorf("heartbeat interval must be at least 10ms"))
	}
	if c.FanoutBatch < 0 || c.ClaimBatch < 0 || c.MaxBatchEvents < 0 {
		errs = append(errs, fmt.Errorf("batch sizes and caps must not be negative"))
	}
	errs = append(errs, c.DLQ().Validate())
	if c.AckReplicas < 0 || c.AckTimeout < 0 {
		errs = append(errs, fmt.Errorf("ack replicas and ack timeout must not be negative"))
	}
	errs = append(errs, c.validateDedup(), c.Outbound.Validate(), c.Metrics.Validate())
	return errors.Join(errs...)
}
