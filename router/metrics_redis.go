package router

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisHook returns a go-redis hook counting the client's failed commands,
// pipelines and dials in switchyard_redis_errors_total. The server adds it
// to the client it owns (router.New does not: a client may be shared by
// several routers, in tests, and each would count the others' errors).
func (r *Router) RedisHook() redis.Hook { return errorHook{m: r.metrics} }

type errorHook struct{ m *metrics }

func (h errorHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			h.m.redisErrors.Inc()
		}
		return c, err
	}
}

func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if failed(ctx, err) {
			h.m.redisErrors.Inc()
		}
		return err
	}
}

func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if failed(ctx, err) {
			h.m.redisErrors.Inc()
		}
		return err
	}
}

// failed reports whether err says the store failed: the connection (lost,
// refused, timed out) or the server refusing work in a state an operator
// must hear of (out of memory, a replica, loading, a cluster or failover in
// trouble). Not a missing key, not an answer the store expects or handles
// (a script it reloads, a group that exists, a handshake option an older
// server does not know), not the caller giving up or closing the client.
func failed(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, redis.ErrClosed) || ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return false
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return true // no answer from the server
	}
	msg := err.Error()
	for _, p := range refusals {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// refusals are the error replies of a server that refuses work for now.
var refusals = []string{"OOM", "READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY ", "NOREPLICAS", "MISCONF", "NOAUTH", "WRONGPASS"}
