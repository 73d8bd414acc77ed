package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// QueueGauges are a queue's figures, as metrics show them.
type QueueGauges struct {
	Trigger string
	// Ready events wait for an attempt; InFlight have one running (on any
	// instance); Delayed wait for a scheduled retry; Waiting wait for the
	// time their publisher asked (deliverafter); DeadLetters are held in the
	// trigger's dead-letter queue.
	Ready, InFlight, Delayed, Waiting, DeadLetters int64
	// Oldest is when the event at the head of the ready list was accepted
	// (or, for a replayed event, re-entered the queue); zero when none waits.
	Oldest time.Time
	// Breaker is the circuit breaker's state, BreakerUntil the end of its
	// open period (zero when never opened).
	Breaker      BreakerState
	BreakerUntil time.Time
}

// gaugeChunk is how many queues one pipeline of GaugesAll reads: a round
// trip per chunk keeps each reply buffer small however many triggers exist.
const gaugeChunk = 1000

// GaugesAll reads the figures of many queues with plain read commands,
// pipelined (a round trip per 1,000 queues, plus one when replayed events
// head some queues). Plain reads rather than a script: they are served
// while Redis refuses writes (out of memory), never meet a flushed script
// cache, and a cluster client splits them by node like any pipeline. A
// queue whose keys hold something unexpected is left out; a failed round
// trip fails the whole read.
func (s *Store) GaugesAll(ctx context.Context, triggers []string) ([]QueueGauges, error) {
	out := make([]QueueGauges, 0, len(triggers))
	for len(triggers) > 0 {
		chunk := triggers[:min(gaugeChunk, len(triggers))]
		triggers = triggers[len(chunk):]
		g, err := s.gaugeChunk(ctx, chunk)
		if err != nil {
			return nil, err
		}
		out = append(out, g...)
	}
	return out, nil
}

type gaugeCmds struct {
	ready, inflight, delayed, waiting, dlq *redis.IntCmd
	head                                   *redis.StringCmd
	breaker                                *redis.SliceCmd
}

func (s *Store) gaugeChunk(ctx context.Context, triggers []string) ([]QueueGauges, error) {
	cmds := make([]gaugeCmds, len(triggers))
	after := fmt.Sprintf("(%d", time.Now().UnixMilli())
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range triggers {
			q := s.keys.Queue(t)
			cmds[i] = gaugeCmds{
				ready: p.LLen(ctx, q.Ready),
				// The in-flight ZSET holds a sentinel member scored +inf
				// (see wideLua): counting finite scores (lease deadlines in
				// unix ms) skips it. A finite bound rather than "(+inf",
				// which the embedded store reads as inclusive.
				inflight: p.ZCount(ctx, q.InFlight, "-inf", "1e300"),
				delayed:  p.ZCard(ctx, q.Delayed),
				waiting:  p.ZCount(ctx, q.After, after, "+inf"),
				dlq:      p.XLen(ctx, q.DLQ),
				head:     p.LIndex(ctx, q.Ready, 0),
				breaker:  p.HMGet(ctx, q.Stats, "cb_state", "cb_until"),
			}
		}
		return nil
	})
	if err != nil && !isReplyError(err) {
		return nil, fmt.Errorf("read queue gauges: %w", err)
	}
	out := make([]QueueGauges, 0, len(triggers))
	var replayed []int // indexes into out whose head is a replayed event
	var heads []string // their heads
	for i, t := range triggers {
		c := cmds[i]
		skip := false
		for _, cmd := range []redis.Cmder{c.ready, c.inflight, c.delayed, c.waiting, c.dlq, c.head, c.breaker} {
			if cerr := cmd.Err(); cerr != nil && cerr != redis.Nil {
				if !isReplyError(cerr) {
					return nil, fmt.Errorf("read queue gauges: %w", cerr)
				}
				skip = true
			}
		}
		if skip {
			continue
		}
		g := QueueGauges{Trigger: t, Ready: c.ready.Val(), InFlight: c.inflight.Val(), Delayed: max(0, c.delayed.Val()-c.waiting.Val()), Waiting: c.waiting.Val(), DeadLetters: c.dlq.Val(), Breaker: BreakerClosed}
		if bv := c.breaker.Val(); len(bv) == 2 {
			if st := toString(bv[0]); st != "" {
				g.Breaker = BreakerState(st)
			}
			g.BreakerUntil = msTime(bv[1])
		}
		if head := c.head.Val(); head != "" {
			g.Oldest = IDTime(head)
			if strings.HasPrefix(head, "r") {
				replayed = append(replayed, len(out))
				heads = append(heads, head)
			}
		}
		out = append(out, g)
	}
	if len(replayed) == 0 {
		return out, nil
	}
	// A replayed event's age counts from its re-entry into the queue.
	since := make([]*redis.StringCmd, len(replayed))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, i := range replayed {
			since[k] = p.HGet(ctx, s.keys.Queue(out[i].Trigger).Since, heads[k])
		}
		return nil
	})
	if err != nil && !isReplyError(err) {
		return nil, fmt.Errorf("read queue gauges: %w", err)
	}
	for k, i := range replayed {
		if t := msTime(since[k].Val()); !t.IsZero() {
			out[i].Oldest = t
		}
	}
	return out, nil
}

// isReplyError reports whether err is an error reply of one command (a key
// of the wrong type), not a failure of the round trip.
func isReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
