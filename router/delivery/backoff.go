package delivery

import (
	"math/rand/v2"
	"time"
)

// Backoff returns the delay before the attempt after `attempt` (1-based):
// full jitter over min(max, initial·2^(attempt-1)). A positive hint (the
// target's own retry-after) raises the delay to at least the hint; the
// result never exceeds max.
func Backoff(attempt int, initial, max, hint time.Duration) time.Duration {
	ceil := initial
	for i := 1; i < attempt && ceil < max; i++ {
		ceil *= 2
	}
	if ceil > max || ceil <= 0 {
		ceil = max
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	if hint > d {
		d = hint
	}
	if d > max {
		d = max
	}
	return d
}
