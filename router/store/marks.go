package store

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Marks returns the short-lived marks of one source: string keys
// sy:{src:<name>}:m:<key>, each with its own expiry.
func (s *Store) Marks(source string) *Marks {
	return &Marks{rdb: s.rdb, prefix: s.keys.p + ":{src:" + source + "}:m:"}
}

// Marks implements connectors.Marks over expiring Redis strings.
type Marks struct {
	rdb    redis.UniversalClient
	prefix string
}

// Mark sets key to value for ttl unless it holds a value. SET NX and GET run
// in one MULTI, so the value read is the one that won, and go-redis never
// resends the pair after a lost reply. (SET NX GET would do it in one
// command, but only from Redis 7.0 on.)
func (m *Marks) Mark(ctx context.Context, key, value string, ttl time.Duration) (string, bool, error) {
	var set *redis.BoolCmd
	var get *redis.StringCmd
	_, err := m.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		set = p.SetNX(ctx, m.prefix+key, value, ttl)
		get = p.Get(ctx, m.prefix+key)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", false, err
	}
	if set.Val() {
		return value, true, nil
	}
	return get.Val(), false, nil
}

// Put sets key to value for ttl.
func (m *Marks) Put(ctx context.Context, key, value string, ttl time.Duration) error {
	return m.rdb.Set(ctx, m.prefix+key, value, ttl).Err()
}

// Drop deletes key.
func (m *Marks) Drop(ctx context.Context, key string) error {
	return m.rdb.Del(ctx, m.prefix+key).Err()
}
