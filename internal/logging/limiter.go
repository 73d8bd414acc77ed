package logging

import (
	"sync"
	"time"
)

// Defaults of a Limiter.
const (
	// DefaultLimitEvery is how often a key may log once its burst is spent.
	DefaultLimitEvery = 10 * time.Second
	// DefaultLimitBurst is how many lines a key logs at once.
	DefaultLimitBurst = 5
	// MaxLimitKeys bounds the keys a Limiter tracks; lines of keys beyond
	// it are suppressed together under one overflow key.
	MaxLimitKeys = 100_000
)

// OverflowKey collects the lines of keys beyond MaxLimitKeys.
const OverflowKey = "\x00overflow"

// Limiter rate-limits log lines per key with a token bucket: a key logs
// Burst lines at once, then one every Every; the lines it refuses are
// counted, and Flush reports each key's count at most once every Every, for
// a summary line. Safe for concurrent use.
type Limiter struct {
	every time.Duration
	burst float64

	mu   sync.Mutex
	keys map[string]*bucket
}

type bucket struct {
	tokens     float64
	last       time.Time // of the last refill
	suppressed int64
	reported   time.Time // when Flush last reported the key
	attrs      []any     // what the summary line says about the key
}

// NewLimiter returns a Limiter (zero values take the defaults).
func NewLimiter(every time.Duration, burst int) *Limiter {
	if every <= 0 {
		every = DefaultLimitEvery
	}
	if burst <= 0 {
		burst = DefaultLimitBurst
	}
	return &Limiter{every: every, burst: float64(burst), keys: map[string]*bucket{}}
}

// Allow reports whether a line of key may be logged at now; if not, it is
// counted as suppressed. attrs describe the key in the summary line (the
// first call's are kept).
func (l *Limiter) Allow(key string, now time.Time, attrs ...any) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.keys[key]
	if b == nil {
		if len(l.keys) >= MaxLimitKeys {
			key, attrs = OverflowKey, []any{"keys", "many"}
			if b = l.keys[key]; b != nil {
				b.suppressed++
				return false
			}
		}
		b = &bucket{tokens: l.burst, last: now, reported: now, attrs: attrs}
		l.keys[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()/l.every.Seconds())
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	b.suppressed++
	return false
}

// Suppressed is a key's count of suppressed lines since its last report.
type Suppressed struct {
	Key   string
	Count int64
	Attrs []any // as given to the key's first Allow
}

// Flush returns the keys whose suppressed lines were not reported for
// Every, with their counts (reset), and forgets the keys idle long enough
// for their bucket to be full again with nothing left to report.
func (l *Limiter) Flush(now time.Time) []Suppressed {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Suppressed
	for k, b := range l.keys {
		if b.suppressed > 0 && now.Sub(b.reported) >= l.every {
			out = append(out, Suppressed{Key: k, Count: b.suppressed, Attrs: b.attrs})
			b.suppressed, b.reported = 0, now
			continue
		}
		if b.suppressed == 0 && now.Sub(b.last) >= time.Duration(l.burst)*l.every {
			delete(l.keys, k)
		}
	}
	return out
}

// Len returns how many keys are tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
