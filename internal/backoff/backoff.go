package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Next returns the delay before the next try of a call that failed again
// after waiting prev (zero for the first failure): a random duration in
// [lo, min(hi, 3·max(prev, lo))]. It is safe for concurrent use.
// lo must be positive and hi at least lo; otherwise lo (or hi, if smaller)
// is returned as it is.
func Next(prev, lo, hi time.Duration) time.Duration {
	if lo <= 0 || hi <= lo {
		return max(min(lo, hi), 0)
	}
	top := hi
	if p := max(prev, lo); p < hi/3 { // 3·p is below hi (and cannot overflow)
		top = 3 * p
	}
	return lo + rand.N(top-lo+1)
}

// Sleep waits d or until ctx is done, whichever comes first, and reports
// whether the whole of d passed (false: ctx ended).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
