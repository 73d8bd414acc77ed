package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis Cluster and replication.
//
// Every atomic step (a script, a MULTI/EXEC) touches the keys of one hash
// slot: the braces in the key names (Keys) put each trigger's keys, the
// ingest log's, the trigger configuration's and each source's in one slot
// each. What spans slots is never one atomic step:
//   - a commit of direct publishes for several triggers is one transaction
//     per slot (Add, AddAndClaim), each publish depending on its own;
//   - the fan-out queues into each trigger's slot, then acknowledges the
//     log in the log's slot (idempotent per record, so a crash between
//     queues nothing twice);
//   - listing dead-letter streams scans every master (DLQTriggers);
//   - pub/sub is cluster-wide: a message published on any node reaches
//     subscribers on every node.
//
// Durability (Redis WAIT) is asked on the connection that made a write:
// WAIT counts the replicas that have every write that connection made, so
// the write is run on a connection of its own, taken from the master that
// owns the slot.

// Durability says when a write that accepts events counts as done.
type Durability struct {
	// Replicas is how many replicas must have the write (Redis WAIT)
	// before it counts as done; 0: once the master has it.
	Replicas int
	// Timeout bounds the wait for the replicas.
	Timeout time.Duration
}

// ReplicationError reports a write that the master applied but fewer
// replicas than asked confirmed within the timeout. The write stands (its
// events will be delivered); only its durability across a failover is not
// established.
type ReplicationError struct {
	Want, Got int
	Timeout   time.Duration
	// Err is set when the WAIT itself failed (Got is then unknown).
	Err error
}

func (e *ReplicationError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("written, but waiting for %d replicas failed: %v", e.Want, e.Err)
	}
	return fmt.Sprintf("written, but %d of the %d replicas asked confirmed it within %s", e.Got, e.Want, e.Timeout)
}

func (e *ReplicationError) Unwrap() error { return e.Err }

// TriggerErrors reports, per trigger, the writes that failed when a
// commit spanned several hash slots and only some of its transactions
// failed. Triggers not named were written.
type TriggerErrors map[string]error

func (e TriggerErrors) Error() string {
	parts := make([]string, 0, len(e))
	for t, err := range e {
		parts = append(parts, t+": "+err.Error())
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns every trigger's error (errors.Is and errors.As look into
// them).
func (e TriggerErrors) Unwrap() []error {
	out := make([]error, 0, len(e))
	for _, err := range e {
		out = append(out, err)
	}
	return out
}

// For returns the error of trigger's write (nil when it landed).
func (e TriggerErrors) For(trigger string) error { return e[trigger] }

// SetDurability sets when writes that accept events count as done. Call it
// before the store is used.
func (s *Store) SetDurability(d Durability) { s.dur = d }

// Durability returns what SetDurability set.
func (s *Store) Durability() Durability { return s.dur }

// cluster returns the cluster client, nil when the store is on one server.
func (s *Store) cluster() *redis.ClusterClient {
	c, _ := s.rdb.(*redis.ClusterClient)
	return c
}

// Slot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of its
// hash tag (the part between the first '{' and the next '}', when not
// empty) or of the whole key, modulo 16384.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}

// bySlot groups triggers by the hash slot of their queue keys, in one group
// when the store is on one server (one transaction may then hold them all).
func (s *Store) bySlot(triggers []string) [][]string {
	if s.cluster() == nil {
		return [][]string{triggers}
	}
	idx := map[int]int{}
	var out [][]string
	for _, t := range triggers {
		sl := Slot(s.keys.Queue(t).Ready)
		i, ok := idx[sl]
		if !ok {
			i = len(out)
			idx[sl] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], t)
	}
	return out
}

// master returns a client of the server that owns key's slot: the store's
// client on one server (or behind Sentinel), the slot's master on a
// cluster.
func (s *Store) master(ctx context.Context, key string) (*redis.Client, error) {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	case *redis.Client:
		return c, nil
	}
	return nil, fmt.Errorf("store: a %T cannot wait for replicas", s.rdb)
}

// isRedirect reports whether err says the slot is not (wholly) served by
// the node asked: a transaction that met one was refused whole.
func isRedirect(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	return strings.HasPrefix(m, "MOVED ") || strings.HasPrefix(m, "ASK ") || strings.HasPrefix(m, "TRYAGAIN") ||
		strings.HasPrefix(m, "EXECABORT") || strings.HasPrefix(m, "CLUSTERDOWN")
}

// acceptTx runs fn's commands (all in key's slot) in one MULTI/EXEC. When
// the store waits for replicas, it runs them on a connection of its own to
// the slot's master and then WAITs on that connection; a WAIT that falls
// short returns a *ReplicationError, the commands' results standing. A
// transaction refused because its slot was moving (nothing ran) is tried
// again on the slot's new master, up to three times.
func (s *Store) acceptTx(ctx context.Context, key string, fn func(p redis.Pipeliner)) error {
	if s.dur.Replicas <= 0 {
		cmds, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error { fn(p); return nil })
		return execErr(cmds, err)
	}
	var err error
	for try := 0; try < 4; try++ {
		if try > 0 {
			if c := s.cluster(); c != nil {
				c.ReloadState(ctx)
			}
			if !sleepCtx(ctx, time.Duration(try)*20*time.Millisecond) {
				return errors.Join(err, ctx.Err())
			}
		}
		var m *redis.Client
		if m, err = s.master(ctx, key); err != nil {
			return err
		}
		err = s.txWait(ctx, m, fn)
		if !isRedirect(err) || s.cluster() == nil {
			return err
		}
	}
	return err
}

// txWait runs fn in a MULTI/EXEC on one connection of m and WAITs there.
func (s *Store) txWait(ctx context.Context, m *redis.Client, fn func(p redis.Pipeliner)) error {
	conn := m.Conn()
	defer conn.Close()
	cmds, err := conn.TxPipelined(ctx, func(p redis.Pipeliner) error { fn(p); return nil })
	// The transaction ran when any of its commands succeeded (a refused or
	// lost one leaves an error on each): then its writes are waited for,
	// even when one command failed on its own (a claim's NOSCRIPT).
	executed := false
	for _, c := range cmds {
		if isRedirect(c.Err()) {
			return c.Err()
		}
		executed = executed || c.Err() == nil
	}
	if !executed {
		return execErr(cmds, err) // out of memory, say, rather than EXECABORT
	}
	if werr := s.wait(ctx, conn); werr != nil {
		return werr
	}
	return err
}

// wait WAITs on conn for the replicas the store's durability asks.
func (s *Store) wait(ctx context.Context, conn *redis.Conn) error {
	n, err := conn.Wait(ctx, s.dur.Replicas, s.dur.Timeout).Result()
	if err != nil {
		return &ReplicationError{Want: s.dur.Replicas, Timeout: s.dur.Timeout, Err: err}
	}
	if int(n) < s.dur.Replicas {
		return &ReplicationError{Want: s.dur.Replicas, Got: int(n), Timeout: s.dur.Timeout}
	}
	return nil
}

// perSlot runs fn for each group of triggers (see bySlot), concurrently when
// there are several, and returns each group's error by trigger.
func (s *Store) perSlot(groups [][]string, fn func(group []string) error) map[string]error {
	errs := map[string]error{}
	var mu sync.Mutex
	record := func(g []string, err error) {
		if err == nil {
			return
		}
		mu.Lock()
		for _, t := range g {
			errs[t] = err
		}
		mu.Unlock()
	}
	if len(groups) == 1 {
		record(groups[0], fn(groups[0]))
		return errs
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() { record(g, fn(g)) })
	}
	wg.Wait()
	return errs
}

// DLQTriggers lists the triggers that have a dead-letter queue, including
// deleted triggers whose dead letters remain. On a cluster it scans every
// master: the streams are spread over the slots.
func (s *Store) DLQTriggers(ctx context.Context) ([]string, error) {
	pat := s.keys.p + ":{t:*}:dlq"
	scan := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var out []string
		iter := c.Scan(ctx, 0, pat, 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(k, s.keys.p+":{t:"), "}:dlq"))
		}
		return out, iter.Err()
	}
	c := s.cluster()
	if c == nil {
		return scan(ctx, s.rdb)
	}
	var mu sync.Mutex
	seen := map[string]bool{} // a stream being migrated is on two masters
	var out []string
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		names, err := scan(ctx, m)
		mu.Lock()
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		mu.Unlock()
		return err
	})
	return out, err
}

// Subscribers counts the clients subscribed to channel. Subscriptions are
// per node on a cluster (a message reaches every node), so it adds up
// every node's count.
func (s *Store) Subscribers(ctx context.Context, channel string) (int64, error) {
	c := s.cluster()
	if c == nil {
		n, err := s.rdb.PubSubNumSub(ctx, channel).Result()
		return n[channel], err
	}
	var mu sync.Mutex
	var total int64
	err := c.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		n, err := node.PubSubNumSub(ctx, channel).Result()
		mu.Lock()
		total += n[channel]
		mu.Unlock()
		return err
	})
	return total, err
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
