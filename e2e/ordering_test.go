package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// laneFunction is a function that fails a seeded 20% of its attempts, and
// every attempt of one key's events while that key is held, and records,
// per key, the sequence numbers it acknowledged in the order it did.
type laneFunction struct {
	mu                 sync.Mutex
	rng                *rand.Rand
	held               string // the key whose events fail while held
	acked              map[string][]int
	ackedAt            map[string]time.Time // "key/seq" → first acknowledgement
	running            map[string]int       // key → attempts running now
	overlaps           int                  // attempts that found another of their key running
	attempts, failures int
}

func newLaneFunction(seed uint64, held string) *laneFunction {
	return &laneFunction{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), held: held,
		acked: map[string][]int{}, ackedAt: map[string]time.Time{}, running: map[string]int{}}
}

var errRandom = errors.New("random failure (20%)")

func (f *laneFunction) handle(_ context.Context, ev event.Event) (function.Result, error) {
	key := ev.Subject()
	_, s, _ := strings.Cut(ev.ID(), "/")
	seq, err := strconv.Atoi(s)
	if err != nil {
		return function.Result{}, function.Dead(fmt.Errorf("bad id %q", ev.ID()))
	}
	f.mu.Lock()
	f.attempts++
	if f.running[key]++; f.running[key] > 1 {
		f.overlaps++
	}
	fail := f.rng.IntN(5) == 0 || key == f.held
	if fail {
		f.failures++
	} else {
		f.acked[key] = append(f.acked[key], seq)
		if _, ok := f.ackedAt[ev.ID()]; !ok {
			f.ackedAt[ev.ID()] = time.Now()
		}
	}
	f.running[key]--
	f.mu.Unlock()
	if fail {
		// A failure of the event, not of the target: the breaker
		// does not count it.
		return function.Result{}, function.RetryAfter(0, errRandom)
	}
	return function.Result{}, nil
}

func (f *laneFunction) release() {
	f.mu.Lock()
	f.held = ""
	f.mu.Unlock()
}

// done counts the keys whose last event was acknowledged.
func (f *laneFunction) done(last int, keys ...string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, k := range keys {
		if a := f.acked[k]; len(a) > 0 && a[len(a)-1] == last {
			n++
		}
	}
	return n
}

func (f *laneFunction) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ackedAt)
}

// checkLane returns why a key's acknowledged sequence is not 0..last in
// order with no gap ("" when it is). An event acknowledged and then
// delivered again (its instance died before recording the ack) repeats
// its number right away, and is counted as a duplicate.
func checkLane(acked []int, last int) (problem string, dups int) {
	if len(acked) == 0 || acked[0] != 0 {
		return fmt.Sprintf("does not start at 0: %v", head(acked)), 0
	}
	for i := 1; i < len(acked); i++ {
		switch acked[i] - acked[i-1] {
		case 1:
		case 0:
			dups++
		default:
			return fmt.Sprintf("%d follows %d", acked[i], acked[i-1]), dups
		}
	}
	if acked[len(acked)-1] != last {
		return fmt.Sprintf("ends at %d, not %d", acked[len(acked)-1], last), dups
	}
	return "", dups
}

func head(a []int) []int { return a[:min(len(a), 10)] }

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestOrderedDeliveryPerKey is the acceptance test of delivery.ordering:
// 100 keys × 200 events published in per-key order, through a function that
// fails a seeded 20% of its attempts; the server is killed (SIGKILL) while
// delivering and started again on the same Redis. One key ("k000") fails
// every attempt until the other 99 are all delivered: its retries hold its
// own lane only. Every key's events must be acknowledged in order with no
// gap; the other keys' latencies are printed.
func TestOrderedDeliveryPerKey(t *testing.T) {
	testenv.Real(t)
	const keys, per = 100, 200
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("k%03d", i)
	}
	stuck, others := names[0], names[1:]
	fn := newLaneFunction(13, stuck)
	fnAddr := freeAddr(t)
	serveFunction(t, fnAddr, fn.handle)

	args := []string{"--redis-url", testenv.RedisURL(), "--key-prefix", testenv.PrefixT(t), "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: lanes
filter: {attributes: {type: lane.test}}
target: {grpc: "%s"}
delivery:
  max_concurrency: 100
  timeout: 2s
  initial_backoff: 5ms
  max_backoff: 50ms
  max_attempts: 1000
  ordering: {key: subject}
`, fnAddr))
	var httpAddr atomic.Pointer[string]
	httpAddr.Store(&a.HTTP)

	// One batch per sequence number, each holding that number's event of
	// every key, published in order every 10 ms; a batch refused (the
	// server is down) is sent again until accepted.
	accepted := make([]time.Time, per)
	pubDone := make(chan error, 1)
	go func() {
		client := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for seq := range per {
			<-tick.C
			var b bytes.Buffer
			b.WriteString("[")
			for i, k := range names {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `{"specversion":"1.0","id":"%s/%d","source":"/lanes","type":"lane.test","subject":"%s"}`, k, seq, k)
			}
			b.WriteString("]")
			deadline := time.Now().Add(60 * time.Second)
			for {
				resp, err := client.Post("http://"+*httpAddr.Load()+"/events", "application/cloudevents-batch+json", bytes.NewReader(b.Bytes()))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						accepted[seq] = time.Now()
						break
					}
				}
				if time.Now().After(deadline) {
					pubDone <- fmt.Errorf("batch %d not accepted: %v", seq, err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		pubDone <- nil
	}()

	// Kill the server while it delivers, once a fifth of the events are.
	testenv.Eventually(t, 60*time.Second, func() bool { return fn.total() >= keys*per/5 }, "a fifth delivered")
	a.Kill()
	atKill := fn.total()
	b := startServe(t, args...)
	httpAddr.Store(&b.HTTP)
	require.NoError(t, <-pubDone)

	for deadline := time.Now().Add(180 * time.Second); fn.done(per-1, others...) < len(others); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			// Say which keys are short and what the store holds, then fail.
			out, _ := run(t, nil, "trigger", "stats", "lanes", "-o", "json", "--server", b.GRPC)
			fn.mu.Lock()
			for _, k := range others {
				if a := fn.acked[k]; len(a) == 0 || a[len(a)-1] != per-1 {
					t.Logf("key %s: %d acknowledged, last %v", k, len(a), a[max(0, len(a)-3):])
				}
			}
			fn.mu.Unlock()
			t.Fatalf("the 99 other keys not delivered in 3 minutes; stats: %s", out)
		}
	}
	fn.mu.Lock()
	stuckAcked := len(fn.acked[stuck])
	fn.mu.Unlock()
	require.Zero(t, stuckAcked, "k000 fails every attempt while held")
	out, err := run(t, nil, "trigger", "stats", "lanes", "--server", b.GRPC)
	require.NoError(t, err)
	// k000's lane is the only one left: its first event scheduled for a
	// retry, the others (199, more when a batch was sent again across the
	// restart) behind it.
	require.Contains(t, out, "lanes: lanes 1 active, 0 blocked;", out)
	fn.release()
	testenv.Eventually(t, 60*time.Second, func() bool { return fn.done(per-1, stuck) == 1 }, "k000 delivered once released")

	fn.mu.Lock()
	defer fn.mu.Unlock()
	dups := 0
	for _, k := range names {
		problem, d := checkLane(fn.acked[k], per-1)
		require.Empty(t, problem, "key %s: acknowledged out of order", k)
		dups += d
	}
	require.Zero(t, fn.overlaps, "two attempts of one key ran at once")
	// Latency: from the batch's acceptance to the event's first
	// acknowledgement. Service time: from when the event could go (its
	// batch accepted and the key's previous event acknowledged) to its
	// acknowledgement, which leaves out the time it waited behind its own
	// key: what a stuck key elsewhere would lengthen.
	var lat, service []time.Duration
	for _, k := range others {
		prev := time.Time{}
		for seq := range per {
			at := fn.ackedAt[fmt.Sprintf("%s/%d", k, seq)]
			lat = append(lat, at.Sub(accepted[seq]))
			service = append(service, at.Sub(later(prev, accepted[seq])))
			prev = at
		}
	}
	t.Logf("ordered delivery: %d keys × %d events, %d attempts (%d failed: 20%% seeded, and k000 held), SIGKILL after %d acknowledged, %d redelivered after acknowledgement",
		keys, per, fn.attempts, fn.failures, atKill, dups)
	t.Logf("the 99 keys other than k000 (stuck in retries meanwhile), acceptance to acknowledgement: p50 %v, p99 %v, max %v (the max includes the SIGKILL: leases of 2s+500ms and a restart)",
		percentile(lat, 0.50).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond), percentile(lat, 1).Round(time.Millisecond))
	t.Logf("the same keys' service time (acceptance or the key's previous acknowledgement, whichever is later, to acknowledgement): p50 %v, p99 %v, max %v",
		percentile(service, 0.50).Round(time.Millisecond), percentile(service, 0.99).Round(time.Millisecond), percentile(service, 1).Round(time.Millisecond))
	b.stop(t)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
