// Package testenv gives tests the stores they run against: the embedded
// miniredis and the real Redis on this machine (REDIS_URL, default
// redis://127.0.0.1:6379/0), each with a private key prefix so tests never
// see each other's keys.
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
	Client *redis.Client
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
		deletePrefix(c, prefix)
	})
	return prefix
}

// deletePrefix deletes every key under prefix, as far as c can.
func deletePrefix(c *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for _, k := range keys {
		c.Del(ctx, k)
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
		deletePrefix(c, prefix)
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

// Each runs fn as a subtest against the embedded store and the real Redis.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	for _, name := range []string{"embedded", "redis"} {
		t.Run(name, func(t *testing.T) {
			var b Backend
			if name == "embedded" {
				b = Embedded(t)
			} else {
				b = Real(t)
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
