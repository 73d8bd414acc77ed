package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguousAndNarrow(t *testing.T) {
	var prevHi uint64
	for i := 0; i < histBuckets; i++ {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if lo >= 1<<histSubBits && float64(hi-lo+1)/float64(lo) > 1.0/128+1e-12 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/128 of its value", i, lo, hi)
		}
		for _, v := range []uint64{lo, hi, lo + (hi-lo)/2} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = hi
		if hi == math.MaxUint64 {
			if i != histBuckets-1 {
				t.Fatalf("max value in bucket %d of %d", i, histBuckets)
			}
			return
		}
	}
	t.Fatalf("buckets end at %d before MaxUint64", prevHi)
}

// exactQuantile is the value of rank ceil(q·n) of sorted values.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func TestQuantilesMatchExactWithinPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]time.Duration, 100_000)
	for i := range vals {
		// Log-normal-ish latencies around 1 ms with a long tail.
		vals[i] = time.Duration(math.Exp(rng.NormFloat64()*0.8) * float64(time.Millisecond))
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want, got := exactQuantile(vals, q), h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/128+1 {
			t.Errorf("q%.3f = %v, exact %v: want at most 1/128 above", q, got, want)
		}
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count %d", h.Count())
	}
	if h.Max() != vals[len(vals)-1] {
		t.Errorf("max %v, want %v", h.Max(), vals[len(vals)-1])
	}
}

func TestQuantileSmallAndEdgeCases(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram should give 0")
	}
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v)) // exact below 256 ns
	}
	h.Record(-5) // counts as 0
	cases := map[float64]time.Duration{0.5: 50, 0.99: 99, 0.999: 100, 1: 100, 0.0001: 0}
	for q, want := range cases {
		if got := h.Quantile(q); got != want {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	s := h.Summary()
	if s.Count != 101 || s.MaxMs != 0 { // 100 ns rounds to 0.000 ms
		t.Errorf("summary %+v", s)
	}
}
