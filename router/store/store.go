package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store is Switchyard's state in one Redis (or Redis-compatible) server. It
// is safe for concurrent use; it does not own the client.
type Store struct {
	rdb   redis.UniversalClient
	keys  Keys
	dur   Durability
	flags atomic.Bool // the server takes script flags (see oomScript)
}

// New returns a Store using rdb with keys under prefix (DefaultPrefix if empty).
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, keys: NewKeys(prefix)}
}

// Client returns the underlying client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Keys returns the key builder.
func (s *Store) Keys() Keys { return s.keys }

var allScripts = []*redis.Script{putScript, addClaimScript, deleteScript, restoreScript, syncPointScript, enqueueScript, peekScript, statsScript, replayScript, requeueScript, dedupEnqueueScript, dedupAddScript,
	replayCreateScript, replayLeaseScript, replayCheckpointScript, replayCancelScript, replayReleaseScript, laneStatsScript}

// oomScripts run when Redis is out of memory (see oomScript).
var oomScripts = []*oomScript{heartbeatScript, enqueueRoomScript, claimScript, orphanScript, ackScript, ackLettersScript, retryScript, deadScript, ackLogScript, capScript, trimScript, purgeAllScript, dedupEnqueueRoomScript, skipLaneScript}

// LoadScripts loads every Lua script into the server's script cache, in
// the variants the server runs (with script flags or without: see
// oomScript). The store reloads them by itself when the server lost them (a
// restart), so this only saves the first round trip and checks the server
// speaks Lua.
func (s *Store) LoadScripts(ctx context.Context) error {
	s.flags.Store(s.probeFlags(ctx))
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	for _, sc := range oomScripts {
		if err := s.oom(sc).Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	return nil
}

// Ping checks the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// run runs a script by hash, loading it when the server lost its cache.
func (s *Store) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	return sc.Run(ctx, s.rdb, keys, args...)
}

// transaction runs fn's script calls in one MULTI/EXEC, for scripts that
// must not run twice for one call (a claim run again would lease more
// attempts and leave the first run's leases to expire, costing their events
// an attempt): go-redis resends a plain command or pipeline after a lost
// reply, never a transaction. When every call answered NOSCRIPT (the server
// lost its scripts, so nothing ran) it loads them and runs fn once more.
//
// When Redis is out of memory it refuses every MULTI (see oom.go), and fn's
// scripts, which settle or move events already stored, are what frees
// memory: then fn runs once more as a plain pipeline. The price is that a
// reply lost on the way back may have the pipeline resent, and a claim run
// twice costs its events an attempt (their first leases expire); nothing is
// lost, and only while Redis is full.
func (s *Store) transaction(ctx context.Context, fn func(p redis.Pipeliner) []*redis.Cmd) {
	var cmds []*redis.Cmd
	exec := func() {
		_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			cmds = fn(p)
			return nil
		})
	}
	exec()
	if refusedWhole(cmds) {
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			cmds = fn(p)
			return nil
		})
	}
	for _, c := range cmds {
		if !isNoScript(c.Err()) {
			return
		}
	}
	if err := s.LoadScripts(ctx); err != nil {
		for _, c := range cmds {
			c.SetErr(err)
		}
		return
	}
	exec()
	if refusedWhole(cmds) {
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			cmds = fn(p)
			return nil
		})
	}
}

// pipelined runs fn's commands in one pipeline; when a script was missing
// from the server's cache it loads every script and runs fn once more.
// Scripts are idempotent per (id, attempt), so a second run is safe.
func (s *Store) pipelined(ctx context.Context, fn func(redis.Pipeliner)) ([]redis.Cmder, error) {
	f := func(p redis.Pipeliner) error { fn(p); return nil }
	cmds, err := s.rdb.Pipelined(ctx, f)
	if err != nil && anyNoScript(cmds) {
		if lerr := s.LoadScripts(ctx); lerr != nil {
			return cmds, errors.Join(err, lerr)
		}
		cmds, err = s.rdb.Pipelined(ctx, f)
	}
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	return cmds, err
}

func anyNoScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if isNoScript(c.Err()) {
			return true
		}
	}
	return false
}

func nowMS(t time.Time) int64 { return t.UnixMilli() }

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	case []byte:
		n, _ := strconv.ParseInt(string(x), 10, 64)
		return n
	}
	return 0
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// msTime converts a unix-ms score ("" for none) to a time (zero for none).
func msTime(v any) time.Time {
	s := toString(v)
	if s == "" {
		return time.Time{}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(f))
}
