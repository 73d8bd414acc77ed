package router

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

func dedupTrigger(name, typ string, window *time.Duration) *switchyardv1.Trigger {
	s := trigger.Spec{Name: name, Filter: filter.Spec{Attributes: map[string]string{"type": typ}}, Target: trigger.Target{GRPC: "127.0.0.1:1"}}
	if window != nil {
		s.Delivery.DedupWindow = &trigger.Duration{Duration: *window}
	}
	return trigger.ToProto(s)
}

// TestDedupAcrossInstances: two instances share a store; publishers send
// every event several times, through both instances at once, both to a
// trigger alone (queued directly) and to two triggers (through the ingest
// log and the fan-out). Each event is delivered once per trigger; every
// publish is answered success; the copies are counted, in the store's
// stats and in each instance's metric. A trigger whose window is 0 (off,
// whatever the server's default) gets every copy.
func TestDedupAcrossInstances(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		invs := []*countingInvoker{{seen: map[string]int{}}, {seen: map[string]int{}}}
		rs := make([]*Router, 2)
		for i := range rs {
			rs[i] = startRouter(t, b.Client, b.Prefix, func(c *Config, inv *delivery.Invoker) {
				c.DedupWindow = time.Minute
				*inv = invs[i]
			})
		}
		off := time.Duration(0)
		for _, p := range []*switchyardv1.Trigger{
			dedupTrigger("solo", "solo", nil), // the server's default
			dedupTrigger("fan-a", "fan", nil),
			dedupTrigger("fan-b", "fan", ptrTo(10*time.Minute)),
			dedupTrigger("fan-off", "fan", &off),
		} {
			_, _, err := rs[0].PutTrigger(t.Context(), p, store.PutApply, 0)
			require.NoError(t, err)
		}
		const events, copies = 30, 3
		var wg sync.WaitGroup
		errs := make(chan error, 2*copies*2)
		for _, typ := range []string{"solo", "fan"} {
			for c := range copies {
				for _, r := range rs {
					wg.Go(func() {
						for e := range events {
							if _, err := r.Publish(t.Context(), []*pb.CloudEvent{event(fmt.Sprintf("%s-%d", typ, e), typ)}); err != nil {
								errs <- fmt.Errorf("copy %d: %w", c, err)
								return
							}
						}
					})
				}
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		attempts := func(trigger, prefix string) (unique, total int) {
			for e := range events {
				key := fmt.Sprintf("%s//test %s-%d", trigger, prefix, e)
				n := 0
				for _, inv := range invs {
					inv.mu.Lock()
					n += inv.seen[key]
					inv.mu.Unlock()
				}
				if n > 0 {
					unique++
				}
				total += n
			}
			return unique, total
		}
		sent := copies * len(rs)
		testenv.Eventually(t, 30*time.Second, func() bool {
			for _, trig := range []string{"solo", "fan-a", "fan-b"} {
				pfx := "fan"
				if trig == "solo" {
					pfx = "solo"
				}
				if u, _ := attempts(trig, pfx); u < events {
					return false
				}
			}
			_, total := attempts("fan-off", "fan")
			return total == events*sent
		}, "every event delivered to every trigger")
		for _, trig := range []string{"solo", "fan-a", "fan-b"} {
			pfx := "fan"
			if trig == "solo" {
				pfx = "solo"
			}
			testenv.Eventually(t, 10*time.Second, func() bool {
				qs, err := rs[0].Store().Stats(t.Context(), trig)
				require.NoError(t, err)
				return qs.Counters["delivered"] == fmt.Sprint(events)
			}, "%s: every event acknowledged", trig)
			_, total := attempts(trig, pfx)
			require.Equal(t, events, total, "%s: each event delivered once", trig)
			qs, err := rs[0].Store().Stats(t.Context(), trig)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprint(events*(sent-1)), qs.Counters["duplicates"], trig)
			require.Equal(t, fmt.Sprint(events), qs.Counters["enqueued"], trig)
			var counted float64
			for _, r := range rs {
				v, _ := value(t, r.Registry(), "switchyard_events_duplicate_total", map[string]string{"trigger": trig})
				counted += v
			}
			require.EqualValues(t, events*(sent-1), counted, "%s: the instances' counters add up to the store's", trig)
		}
		require.Equal(t, time.Minute, rs[1].DedupWindow("solo"), "unset: the server's default")
		require.Equal(t, 10*time.Minute, rs[1].DedupWindow("fan-b"))
		require.Zero(t, rs[1].DedupWindow("fan-off"))
		qs, err := rs[0].Store().Stats(t.Context(), "fan-off")
		require.NoError(t, err)
		require.Empty(t, qs.Counters["duplicates"])
	})
}

func ptrTo[T any](v T) *T { return &v }

func TestDedupConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg Config
		ok  bool
	}{
		"off":                      {Config{}, true},
		"default within the max":   {Config{DedupWindow: time.Hour}, true},
		"default above the max":    {Config{DedupWindow: 2 * time.Hour}, false},
		"max raised":               {Config{DedupWindow: 2 * time.Hour, MaxDedupWindow: 3 * time.Hour}, true},
		"max above every server's": {Config{MaxDedupWindow: 25 * time.Hour}, false},
		"negative":                 {Config{DedupWindow: -time.Second}, false},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}
