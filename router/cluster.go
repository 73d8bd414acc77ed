package router

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/router/store"
)

// cluster is this instance's membership in the registry of instances, and
// the waiting for a trigger change to be live on every one of them.
//
// Each instance renews its entry every heartbeat interval, recording the
// version of the triggers it serves (every change up to that revision is
// installed in its view; the watch loop decides that, see watch.go). When
// that version moves and other instances are registered, it also publishes
// an acknowledgement on the config channel, which every instance's watch
// loop hands to hear. An instance silent for MissedHeartbeats intervals
// counts as gone: it is not waited for, and the next heartbeat of any
// instance removes it from the registry. A graceful shutdown leaves the
// registry at once.
//
// wait returns once every instance registered when a change was made serves
// it: the script that made the change returned the registry, so an instance
// registering later loads the change with its first view. It wakes on
// acknowledgements and on this instance's own view, and reads the registry
// every heartbeat interval in case an acknowledgement was lost or an
// instance died.
type cluster struct {
	store     *store.Store
	log       *slog.Logger
	id        string
	interval  time.Duration // heartbeat
	deadAfter time.Duration
	timeout   time.Duration // longest wait for a change

	kick    chan struct{} // announce now (capacity 1)
	done    chan struct{} // closed when run returned
	running atomic.Bool   // run was started

	mu      sync.Mutex
	served  store.Version            // this instance's view
	heard   map[string]store.Version // other live members, as last heard
	peers   bool                     // other instances are registered: acknowledge
	changed chan struct{}            // closed and replaced when served or heard move
}

func newCluster(st *store.Store, cfg Config) *cluster {
	return &cluster{
		store: st, log: cfg.Logger, id: cfg.InstanceID,
		interval: cfg.HeartbeatInterval, deadAfter: MissedHeartbeats * cfg.HeartbeatInterval, timeout: cfg.TriggerSyncTimeout,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		heard: map[string]store.Version{}, changed: make(chan struct{}),
	}
}

// broadcastLocked wakes the waiters; c.mu is held.
func (c *cluster) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *cluster) announce() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// setServed records the version this instance's view serves.
func (c *cluster) setServed(v store.Version) {
	c.mu.Lock()
	if v == c.served {
		c.mu.Unlock()
		return
	}
	newEpoch := v.Epoch != c.served.Epoch
	c.served = v
	c.broadcastLocked()
	peers := c.peers
	c.mu.Unlock()
	// Alone, nobody waits for this instance but itself: the heartbeat
	// records the version in passing. A new epoch means the store lost
	// its data, the registry included: register again at once.
	if peers || newEpoch {
		c.announce()
	}
}

// hear records an acknowledgement: instance id serves v.
func (c *cluster) hear(id string, v store.Version) {
	if id == c.id {
		return
	}
	c.mu.Lock()
	_, known := c.heard[id]
	c.mergeLocked(id, v)
	newPeer := !c.peers
	c.peers = true
	c.broadcastLocked()
	c.mu.Unlock()
	// A newcomer may be waiting for this instance, which stayed quiet while
	// alone: tell it where this view stands.
	if !known || newPeer {
		c.announce()
	}
}

// mergeLocked records that id serves v, unless an acknowledgement already
// said it serves more of the same epoch; c.mu is held.
func (c *cluster) mergeLocked(id string, v store.Version) {
	if old, ok := c.heard[id]; ok && old.Epoch == v.Epoch && old.Rev > v.Rev {
		return
	}
	c.heard[id] = v
}

// join registers this instance (serving nothing yet), so that changes made
// from now on wait for it.
func (c *cluster) join(ctx context.Context) error {
	_, err := c.beat(ctx)
	return err
}

// run renews the registration every interval, and announces a new view when
// kicked, until ctx ends.
func (c *cluster) run(ctx context.Context) {
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.kick:
		}
		_, err := c.beat(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			c.log.Warn("heartbeat: cannot renew this instance's registration", "err", err)
		case err == nil && failing:
			failing = false
			c.log.Info("heartbeat: registration renewed")
		}
	}
}

// beat writes this instance's entry (and, with peers, its acknowledgement)
// and takes in what the registry says of the others.
func (c *cluster) beat(ctx context.Context) (store.Members, error) {
	c.mu.Lock()
	served, peers := c.served, c.peers
	c.mu.Unlock()
	m, err := c.store.Heartbeat(ctx, c.id, served, c.deadAfter, peers)
	if err != nil {
		return m, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	live := map[string]bool{}
	for _, x := range m.Live(c.deadAfter) {
		if x.ID != c.id {
			live[x.ID] = true
			c.mergeLocked(x.ID, x.Served)
		}
	}
	for id := range c.heard {
		if !live[id] {
			delete(c.heard, id)
		}
	}
	c.peers = len(live) > 0
	c.broadcastLocked()
	return m, nil
}

// start runs run in a goroutine of the router's.
func (c *cluster) start(r *Router) {
	c.running.Store(true)
	r.goLoop("router.cluster", c.run, func() { close(c.done) })
}

// leave removes this instance from the registry once run returned (it
// renews the entry otherwise).
func (c *cluster) leave(ctx context.Context) {
	if !c.running.Load() {
		return
	}
	<-c.done
	c.leaveNow(ctx)
}

// leaveNow removes this instance from the registry (run is not running).
func (c *cluster) leaveNow(ctx context.Context) {
	if err := c.store.Leave(ctx, c.id); err != nil {
		c.log.Warn("leave the registry of instances", "err", err)
	}
}

// answerMargin is kept before the caller's deadline by wait.
const answerMargin = 100 * time.Millisecond

// wait returns once every instance of ch.Members that is alive serves
// ch.Version, or when the timeout passed (or, sooner, shortly before ctx's
// deadline) or ctx ended; lagging names, sorted,
// the instances that did not confirm by then (this one included, if its
// own view lags).
func (c *cluster) wait(ctx context.Context, ch store.Change) (lagging []string) {
	pending := map[string]bool{c.id: true}
	c.mu.Lock()
	for _, m := range ch.Members.Live(c.deadAfter) {
		if m.ID != c.id {
			pending[m.ID] = true
			c.mergeLocked(m.ID, m.Served)
		}
	}
	c.mu.Unlock()
	// The answer must reach a caller whose deadline comes first: it names
	// the laggards instead of arriving after the caller gave up.
	limit := c.timeout
	if dl, ok := ctx.Deadline(); ok {
		limit = max(min(limit, time.Until(dl)-answerMargin), 0)
	}
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	poll := time.NewTicker(c.interval)
	defer poll.Stop()
	for {
		c.mu.Lock()
		for id := range pending {
			v := c.heard[id]
			if id == c.id {
				v = c.served
			}
			if v.Covers(ch.Version) {
				delete(pending, id)
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-poll.C:
			// Acknowledgements travel on pub/sub, which drops messages
			// when a connection breaks; and an instance may die
			// meanwhile. The registry settles both.
			_, reg, err := c.store.SyncPoint(ctx)
			if err != nil {
				continue
			}
			live := map[string]bool{c.id: true}
			c.mu.Lock()
			for _, m := range reg.Live(c.deadAfter) {
				live[m.ID] = true
				if m.ID != c.id {
					c.mergeLocked(m.ID, m.Served)
				}
			}
			c.mu.Unlock()
			for id := range pending {
				if !live[id] {
					delete(pending, id)
				}
			}
		case <-timeout.C:
			return sortedKeys(pending)
		case <-ctx.Done():
			return sortedKeys(pending)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
