package router

import (
	"math"
	"sync"
	"time"
)

// drainMeter estimates how fast a trigger's queue drains on this instance
// (attempts completed per second: acknowledged, rescheduled or dead), so that
// a pushback can say when to come back.
type drainMeter struct {
	mu     sync.Mutex
	start  time.Time // of the current window
	count  int64     // completions in the current window
	rate   float64   // smoothed completions per second of past windows
	latest time.Time // of the last completion
}

// drainWindow is the shortest window a rate is measured over.
const drainWindow = 250 * time.Millisecond

// drainStale is how long without a completion before the rate is unknown.
const drainStale = 3 * time.Second

func (m *drainMeter) add(n int, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.start.IsZero() || now.Sub(m.latest) > drainStale {
		m.start, m.count, m.rate = now, 0, 0
	}
	m.count += int64(n)
	m.latest = now
	if el := now.Sub(m.start); el >= drainWindow {
		r := float64(m.count) / el.Seconds()
		if m.rate == 0 {
			m.rate = r
		} else {
			m.rate = 0.5*m.rate + 0.5*r
		}
		m.start, m.count = now, 0
	}
}

// perSecond returns the drain rate, 0 when unknown (nothing completed lately).
func (m *drainMeter) perSecond(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.latest) > drainStale {
		return 0
	}
	return m.rate
}

// Bounds of the retry delay a pushback suggests.
const (
	minPushbackDelay = 20 * time.Millisecond
	maxPushbackDelay = 30 * time.Second
	// unknownDrainDelay is suggested when the queue is not draining here
	// (a stalled target, an open breaker, or another instance delivers).
	unknownDrainDelay = 2 * time.Second
)

// pushbackDelay is how long until a queue holding held events, capped at
// maxQueue, has room for need more plus a margin of 1% of the cap (so that
// publishers told to come back do not all find it full again), at rate
// completions per second.
func pushbackDelay(held, maxQueue, need int64, rate float64) time.Duration {
	if rate <= 0 {
		return unknownDrainDelay
	}
	excess := held - maxQueue + need + maxQueue/100
	if excess < 1 {
		excess = 1
	}
	d := time.Duration(math.Ceil(float64(excess) / rate * float64(time.Second)))
	return min(max(d, minPushbackDelay), maxPushbackDelay)
}
