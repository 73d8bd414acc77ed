package store

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Checkpoints returns durable key-value storage for one source's position,
// in the hash sy:{src:<name>}:cp.
func (s *Store) Checkpoints(source string) *Checkpoints {
	return &Checkpoints{rdb: s.rdb, key: s.keys.p + ":{src:" + source + "}:cp"}
}

// Checkpoints implements connectors.Checkpoints over one Redis hash.
type Checkpoints struct {
	rdb redis.UniversalClient
	key string
}

// Get returns the value of k, or nil when absent.
func (c *Checkpoints) Get(ctx context.Context, k string) ([]byte, error) {
	b, err := c.rdb.HGet(ctx, c.key, k).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// Set stores v under k.
func (c *Checkpoints) Set(ctx context.Context, k string, v []byte) error {
	return c.rdb.HSet(ctx, c.key, k, v).Err()
}
