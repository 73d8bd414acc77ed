package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-io/switchyard/internal/backoff"
	"github.com/switchyard-io/switchyard/internal/logging"
	"github.com/switchyard-io/switchyard/internal/panics"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
)

// Router is one Switchyard instance's engine. Create it with New, start it
// with Start, stop it with Shutdown. Publish may be called from any goroutine
// once Start returned.
type Router struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	invoker delivery.Invoker
	metrics *metrics
	tr      *tracer // nil when tracing is off
	// logLimit rate-limits lines repeated per event (see loglimit.go).
	logLimit *logging.Limiter

	snap      atomic.Pointer[snapshot] // triggers and their index
	reloadMu  sync.Mutex               // serialises changes of snap
	pendMu    sync.Mutex               // guards pending
	pending   []*changeReq             // changes waiting for install
	watchKick chan struct{}            // asks the watch loop to compare versions now
	cluster   *cluster                 // registry of instances, waiting for trigger changes
	health    health                   // why this instance cannot work, if so

	backlog *backlog // per trigger, for admission (admission.go)

	appendCh chan *appendReq
	workers  *workers      // run attempts
	idNonce  string        // random, tells this instance's queue ids apart
	idSeq    atomic.Uint64 // numbers this instance's queue ids

	peers atomic.Bool // other instances listen for wake-ups (checked each sweep)
	full  fullness    // the store refused a write for want of memory

	archive *archiver // nil when the archive is off (archive.go)
	replays *replays  // replay jobs run here; nil when the archive is off (replay.go)

	budgetLogged atomic.Int64        // unix ns of the last filter budget warning
	reserved     triggerReservations // creates in progress (ReserveTrigger)

	mu          sync.Mutex
	dispatchers map[string]*dispatcher
	pulls       pullHubs // consumers of pull triggers (pull.go)
	stopping    atomic.Bool

	intakeCtx    context.Context // cancelled first on shutdown: fan-out, claims
	stopIntake   context.CancelFunc
	attemptCtx   context.Context // cancelled last: running attempts
	stopAttempts context.CancelFunc
	wg           sync.WaitGroup // background loops
	claimLoops   sync.WaitGroup // dispatcher claim loops and append loops (they start attempts)
	attempts     sync.WaitGroup // running attempts and their completion
	started      atomic.Bool
}

// New builds a Router over a Redis client. It does not start anything.
func New(cfg Config, rdb redis.UniversalClient, invoker delivery.Invoker) (*Router, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("router config: %w", err)
	}
	if invoker == nil {
		invoker = delivery.NewTargets(delivery.TargetsConfig{Unary: cfg.UnaryInvoke, Logger: cfg.Logger, Outbound: cfg.Outbound})
	}
	r := &Router{
		cfg:         cfg,
		log:         cfg.Logger,
		store:       store.New(rdb, cfg.Prefix),
		invoker:     invoker,
		metrics:     newMetrics(cfg.Metrics),
		tr:          newTracer(cfg.Tracing),
		logLimit:    logging.NewLimiter(0, 0),
		backlog:     newBacklog(),
		appendCh:    make(chan *appendReq, 4096),
		workers:     newWorkers(cfg.Logger),
		dispatchers: map[string]*dispatcher{},
		watchKick:   make(chan struct{}, 1),
	}
	r.store.SetDurability(store.Durability{Replicas: cfg.AckReplicas, Timeout: cfg.AckTimeout})
	r.cluster = newCluster(r.store, cfg)
	r.metrics.reg.MustRegister(newQueueCollector(r, cfg.Metrics.StoreReadTTL))
	r.metrics.reg.MustRegister(newLaneCollector(r, cfg.Metrics.StoreReadTTL))
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	r.idNonce = hex.EncodeToString(nonce[:])
	r.snap.Store(emptySnapshot())
	r.peers.Store(true)
	if r.archive = newArchiver(cfg.Archive, r.store); r.archive != nil {
		r.replays = newReplays(r)
		r.metrics.reg.MustRegister(newArchiveCollector(r, cfg.Metrics.StoreReadTTL), r.replays.scanned, r.replays.queued)
	}
	r.intakeCtx, r.stopIntake = context.WithCancel(context.Background())
	r.attemptCtx, r.stopAttempts = context.WithCancel(context.Background())
	return r, nil
}

// Store returns the router's store.
func (r *Router) Store() *store.Store { return r.store }

// Registry returns the router's Prometheus metrics.
func (r *Router) Registry() *prometheus.Registry { return r.metrics.reg }

// Start joins the registry of instances, loads the triggers and starts the
// background loops: trigger watch, heartbeat, group-commit writers, fan-out,
// sweeper and one dispatcher per trigger. It fails when the store cannot be
// reached.
func (r *Router) Start(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("router already started")
	}
	if err := r.store.LoadScripts(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := r.checkMemoryPolicy(ctx); err != nil {
		return err
	}
	if err := r.store.EnsureLogGroup(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// A store without an epoch is new (or lost its data before any
	// instance could restore it): found one.
	if epoch, founded, _, err := r.store.Restore(ctx, nil); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	} else if founded {
		r.log.Info("store: new epoch of trigger revisions", "epoch", epoch)
	}
	// Subscribed and registered before the first load: a change made from
	// then on either waits for this instance or is in what it loads, and
	// its notice arrives either way.
	sub, err := r.subscribe(ctx)
	if err != nil {
		return fmt.Errorf("%w: subscribe: %w", ErrUnavailable, err)
	}
	if err := r.cluster.join(ctx); err != nil {
		_ = sub.Close()
		return fmt.Errorf("%w: join the registry of instances: %w", ErrUnavailable, err)
	}
	if err := r.reload(ctx); err != nil {
		_ = sub.Close()
		r.cluster.leaveNow(ctx)
		return fmt.Errorf("%w: load triggers: %w", ErrUnavailable, err)
	}
	for range 2 {
		// Counted as claim loops too: a commit may start attempts (see
		// commitClaims), which Shutdown must not see after it waited for
		// every claim loop.
		r.claimLoops.Add(1)
		r.goLoop("router.append", r.appendLoop, r.claimLoops.Done)
	}
	r.goLoop("router.watch", func(ctx context.Context) { r.watchLoop(ctx, sub) }, nil)
	r.cluster.start(r)
	r.goLoop("router.fanout", r.fanoutLoop, nil)
	r.goLoop("router.sweep", r.sweepLoop, nil)
	if r.archive != nil {
		r.goLoop("router.archive-trim", r.archiveTrimLoop, nil)
		r.goLoop("router.replays", r.replays.loop, nil)
	}
	return nil
}

// goLoop runs fn(intakeCtx) on a goroutine of its own until it returns,
// restarting it after a panic (see panics.Loop); then calls exit, if any.
func (r *Router) goLoop(where string, fn func(context.Context), exit func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if exit != nil {
			defer exit()
		}
		panics.Loop(r.intakeCtx, r.log, where, fn)
	}()
}

// Shutdown stops in two phases: first it stops taking events and starting
// attempts, and waits for running attempts to finish and be recorded, up to
// the config's DrainTimeout or ctx; then it cancels what still runs (their
// leases expire and another instance retries them) and returns. Safe to call
// more than once.
func (r *Router) Shutdown(ctx context.Context) error {
	// Flipped under r.mu: a reconcile in progress finishes first, and none
	// after it starts a dispatcher.
	r.mu.Lock()
	first := r.stopping.CompareAndSwap(false, true)
	r.mu.Unlock()
	if !first {
		return nil
	}
	r.stopIntake()
	// Other instances stop waiting for this one at once.
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	r.cluster.leave(lctx)
	cancel()
	// No attempt starts once every claim loop has returned; only then may
	// the attempts be waited for.
	r.claimLoops.Wait()
	drained := make(chan struct{})
	go func() { r.attempts.Wait(); close(drained) }()
	timer := time.NewTimer(r.cfg.DrainTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-drained:
	case <-timer.C:
		err = errors.New("drain timeout: unfinished attempts left to their leases")
	case <-ctx.Done():
		err = ctx.Err()
	}
	r.stopAttempts()
	r.mu.Lock()
	for _, d := range r.dispatchers {
		d.stop()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.workers.close()
	close(r.appendCh)
	return errors.Join(err, r.invoker.Close())
}

// Bounds of the delay between tries of the router's loops that retry a
// failed Redis call (reading the ingest log, fanning out, recording
// outcomes, handing pulled attempts back, waiting for the store's epoch).
// Each delay is drawn at random between them (internal/backoff), so the
// instances sharing a Redis that failed do not all retry at once.
const (
	retryMinWait = 50 * time.Millisecond
	retryMaxWait = 2 * time.Second
)

// nextBackoff returns the delay before the next try of a Redis call that
// failed again after waiting prev (zero for a first failure).
func nextBackoff(prev time.Duration) time.Duration {
	return backoff.Next(prev, retryMinWait, retryMaxWait)
}

// backoffSleep waits d or until ctx ends; false when ctx ended.
func backoffSleep(ctx context.Context, d time.Duration) bool { return backoff.Sleep(ctx, d) }
