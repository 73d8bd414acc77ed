// Package testenv gives tests the stores they run against: the embedded
// miniredis, the real Redis on this machine (REDIS_URL, default
// redis://127.0.0.1:6379/0) and a Redis Cluster of three masters with a
// replica each, started once per test package (SharedCluster; Main stops
// it), each with a private key prefix so tests never see each other's keys.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Backend is one Redis to run a test against.
type Backend struct {
	Name   string
	Client redis.UniversalClient
	// URL reaches the same server (for child processes).
	URL string
	// Prefix is a key prefix private to this test.
	Prefix string
	// Mini is the embedded server, nil for real Redis.
	Mini *miniredis.Miniredis
}

// RedisURL is the real Redis the integration tests use.
func RedisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Prefix returns a random key prefix.
func Prefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "sytest-" + hex.EncodeToString(b)
}

// PrefixT returns a random key prefix whose keys in the real Redis are
// deleted when the test ends (after the cleanups registered later, such as
// those stopping the servers that write under it).
func PrefixT(t testing.TB) string {
	prefix := Prefix()
	t.Cleanup(func() {
		opt, err := redis.ParseURL(RedisURL())
		if err != nil {
			return
		}
		c := redis.NewClient(opt)
		defer c.Close()
		DeletePrefix(c, prefix)
	})
	return prefix
}

// DeletePrefix deletes every key under prefix, as far as c can (on a
// cluster, on every master), one key at a time: they may be in different
// hash slots.
func DeletePrefix(c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for _, k := range keys {
			c.Del(ctx, k)
		}
		return nil
	}
	switch c := c.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, del)
	case *redis.Client:
		_ = del(ctx, c)
	}
}

// Real connects to the real Redis; the test fails if it is not reachable
// (the test command starts it).
func Real(t testing.TB) Backend {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("real Redis at %s is not reachable (the test command starts it): %v", RedisURL(), err)
	}
	prefix := Prefix()
	t.Cleanup(func() {
		DeletePrefix(c, prefix)
		_ = c.Close()
	})
	return Backend{Name: "redis", Client: c, URL: RedisURL(), Prefix: prefix}
}

// Embedded starts a miniredis for the test.
func Embedded(t testing.TB) Backend {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return Backend{Name: "embedded", Client: c, URL: "redis://" + m.Addr() + "/0", Prefix: Prefix(), Mini: m}
}

// Cluster connects to the package's shared Redis Cluster (started by the
// first call, stopped by Main) with a private key prefix whose keys are
// deleted when the test ends.
func Cluster(t testing.TB) Backend {
	t.Helper()
	rc := SharedCluster(t)
	c := rc.Client()
	prefix := Prefix()
	t.Cleanup(func() {
		DeletePrefix(c, prefix)
		_ = c.Close()
	})
	return Backend{Name: "cluster", Client: c, URL: rc.URL(), Prefix: prefix}
}

// Each runs fn as a subtest against the embedded store and the real Redis.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	each(t, fn, "embedded", "redis")
}

// All runs fn as a subtest against the embedded store, the real Redis and
// the shared Redis Cluster (the package's TestMain must call Main).
func All(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	each(t, fn, "embedded", "redis", "cluster")
}

func each(t *testing.T, fn func(t *testing.T, b Backend), names ...string) {
	t.Helper()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var b Backend
			switch name {
			case "embedded":
				b = Embedded(t)
			case "redis":
				b = Real(t)
			default:
				b = Cluster(t)
			}
			fn(t, b)
		})
	}
}

// Eventually polls cond every 10ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
