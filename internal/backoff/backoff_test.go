package backoff

import (
	"context"
	"slices"
	"testing"
	"time"
)

const (
	lo = 50 * time.Millisecond
	hi = 2 * time.Second
)

// Every delay lies in [lo, hi]; the first in [lo, 3·lo]; a delay is never
// more than three times the previous one.
func TestNextStaysInBounds(t *testing.T) {
	for range 2000 {
		first := Next(0, lo, hi)
		if first < lo || first > 3*lo {
			t.Fatalf("first delay %s outside [%s, %s]", first, lo, 3*lo)
		}
		prev := first
		for range 30 {
			d := Next(prev, lo, hi)
			if d < lo || d > hi {
				t.Fatalf("delay %s after %s outside [%s, %s]", d, prev, lo, hi)
			}
			if d > 3*prev {
				t.Fatalf("delay %s more than three times the previous %s", d, prev)
			}
			prev = d
		}
	}
	// A previous delay far beyond hi (a changed configuration) is capped
	// without overflowing.
	for range 100 {
		if d := Next(time.Duration(1<<62), lo, hi); d < lo || d > hi {
			t.Fatalf("delay %s after a huge previous one, want within [%s, %s]", d, lo, hi)
		}
	}
}

// Bounds that leave no room to draw are returned as they are.
func TestNextDegenerateBounds(t *testing.T) {
	for name, c := range map[string]struct{ lo, hi, want time.Duration }{
		"equal":       {lo, lo, lo},
		"hi below lo": {lo, lo / 2, lo / 2},
		"zero lo":     {0, hi, 0},
		"negative lo": {-lo, hi, 0},
	} {
		t.Run(name, func(t *testing.T) {
			if got := Next(lo, c.lo, c.hi); got != c.want {
				t.Fatalf("Next(%s, %s, %s) = %s, want %s", lo, c.lo, c.hi, got, c.want)
			}
		})
	}
}

// Failures in a row wait longer: the mean delay grows with the number of
// failures until the cap bounds it.
func TestNextGrowsToTheCap(t *testing.T) {
	const n = 1000
	prev := make([]time.Duration, n)
	var means []time.Duration
	for range 12 {
		var sum time.Duration
		for i := range prev {
			prev[i] = Next(prev[i], lo, hi)
			sum += prev[i]
		}
		means = append(means, sum/n)
	}
	for i := 1; i < 6; i++ {
		if means[i] <= means[i-1] {
			t.Fatalf("mean delay did not grow from failure %d to %d: %v", i, i+1, means)
		}
	}
	if last := means[len(means)-1]; last < hi/3 {
		t.Fatalf("mean delay after %d failures is %s, want it near the cap %s: %v", len(means), last, hi, means)
	}
}

// Instances that lost the store at the same moment do not come back
// together: for each of their first retries, no short window holds more
// than a small share of them, while a plain doubling delay (the schedule
// this package replaced) puts every one of them in the same instant.
func TestJitterSpreadsRetries(t *testing.T) {
	const instances = 200
	const retries = 8
	window := lo / 5
	at := make([][]time.Duration, retries) // at[k][i]: when instance i tries for the (k+1)th time
	prev := make([]time.Duration, instances)
	elapsed := make([]time.Duration, instances)
	for k := range retries {
		for i := range instances {
			prev[i] = Next(prev[i], lo, hi)
			elapsed[i] += prev[i]
			at[k] = append(at[k], elapsed[i])
		}
	}
	for k, times := range at {
		if got := crowded(times, window); got > instances/4 {
			t.Errorf("retry %d: %d of %d instances within %s of each other, want at most %d", k+1, got, instances, window, instances/4)
		}
	}

	var doubling []time.Duration
	for range instances {
		var d, sum time.Duration
		for range retries {
			d = min(max(2*d, lo), hi)
			sum += d
		}
		doubling = append(doubling, sum)
	}
	if got := crowded(doubling, window); got != instances {
		t.Fatalf("plain doubling: %d of %d instances retry together, want all", got, instances)
	}
}

// crowded returns the largest number of times that lie within one window.
func crowded(times []time.Duration, window time.Duration) int {
	s := slices.Clone(times)
	slices.Sort(s)
	most, start := 0, 0
	for end := range s {
		for s[end]-s[start] > window {
			start++
		}
		most = max(most, end-start+1)
	}
	return most
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep with a live context reported it was cut short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep with a done context reported the whole delay passed")
	}
	if waited := time.Since(start); waited > time.Minute {
		t.Fatalf("Sleep with a done context waited %s", waited)
	}
}
