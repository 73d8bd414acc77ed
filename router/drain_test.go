package router

import (
	"testing"
	"time"
)

func TestDrainMeter(t *testing.T) {
	var m drainMeter
	now := time.Unix(1000, 0)
	if r := m.perSecond(now); r != 0 {
		t.Fatalf("empty meter: %v/s", r)
	}
	// 100 completions every 100 ms: 1,000/s.
	for i := range 20 {
		m.add(100, now.Add(time.Duration(i)*100*time.Millisecond))
	}
	if r := m.perSecond(now.Add(2 * time.Second)); r < 900 || r > 1100 {
		t.Fatalf("rate %v/s, want about 1000", r)
	}
	if r := m.perSecond(now.Add(2*time.Second + drainStale + time.Millisecond)); r != 0 {
		t.Fatalf("stale meter: %v/s", r)
	}
	// After a silence the old rate is forgotten.
	later := now.Add(time.Minute)
	m.add(10, later)
	m.add(10, later.Add(500*time.Millisecond))
	if r := m.perSecond(later.Add(500 * time.Millisecond)); r < 30 || r > 50 {
		t.Fatalf("rate after silence %v/s, want about 40", r)
	}
}

func TestPushbackDelay(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		held, maxQueue, need int64
		rate                 float64
		want                 time.Duration
	}{
		{"unknown rate", 100, 100, 1, 0, unknownDrainDelay},
		{"room for one plus 1% at 1000/s: the floor", 100, 100, 1, 1000, minPushbackDelay},
		{"a batch of 100 at 1000/s", 10_000, 10_000, 100, 1000, 200 * time.Millisecond},
		{"far over the cap", 20_000, 10_000, 1, 100, 30 * time.Second},
		{"slow drain", 1000, 1000, 10, 10, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pushbackDelay(tc.held, tc.maxQueue, tc.need, tc.rate); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
