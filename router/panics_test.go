package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/panics"
	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// ackingInvoker acknowledges every attempt and counts them by trigger and
// event id; safe for concurrent use.
type ackingInvoker struct {
	mu  sync.Mutex
	got map[string]int
}

func (a *ackingInvoker) Invoke(_ context.Context, at *delivery.Attempt) delivery.Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got[at.Trigger+"/"+at.Event.GetId()]++
	return delivery.Result{Verdict: delivery.Ack, Code: "OK", Start: time.Now()}
}

func (a *ackingInvoker) Close() error { return nil }

func (a *ackingInvoker) delivered(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got[key] > 0
}

// A panic injected once in each background loop and per-attempt goroutine
// (group commit, fan-out, dispatch, attempt, recording, sweep) is
// recovered and counted; the router keeps running, the loops resume, and
// every accepted event is delivered to every trigger it matched.
func TestInjectedPanicsAreSurvived(t *testing.T) {
	wheres := []string{"router.commit", "router.fanout", "router.dispatch", "router.attempt", "router.record", "router.sweep"}
	var fired sync.Map
	restore := panics.SetHook(func(where string) {
		for _, w := range wheres {
			if w == where {
				if _, again := fired.LoadOrStore(where, true); !again {
					panic("injected at " + where)
				}
			}
		}
	})
	defer restore()
	before := map[string]float64{}
	for _, w := range wheres {
		before[w] = panics.Count(w)
	}

	b := testenv.Embedded(t)
	inv := &ackingInvoker{got: map[string]int{}}
	r, err := New(Config{Prefix: b.Prefix, Logger: slog.New(slog.DiscardHandler), SweepInterval: 20 * time.Millisecond,
		LogClaimIdle: 300 * time.Millisecond, LeaseGrace: 50 * time.Millisecond}, b.Client, inv)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, r.Shutdown(sctx))
	})
	for name, typ := range map[string]string{"a": "both", "b": "both", "c": "one"} {
		spec := trigger.Spec{Name: name, Target: trigger.Target{URL: "http://fn.example/" + name},
			Filter:   filter.Spec{Attributes: map[string]string{"type": typ}},
			Delivery: trigger.Delivery{Timeout: trigger.Duration{Duration: 200 * time.Millisecond}, InitialBackoff: trigger.Duration{Duration: 10 * time.Millisecond}}}
		c, err := trigger.Compile(spec)
		require.NoError(t, err)
		_, _, err = r.PutTrigger(ctx, trigger.ToProto(c.Spec), store.PutApply, 0)
		require.NoError(t, err)
	}

	var want []string
	for i := range 20 {
		typ := "one"
		if i%2 == 0 {
			typ = "both"
		}
		id := fmt.Sprintf("ev-%d", i)
		ev := &pb.CloudEvent{Id: id, Source: "/t", SpecVersion: "1.0", Type: typ}
		// A publish whose group commit panicked answers an error: the
		// publisher tries again, as after any store error.
		testenv.Eventually(t, 10*time.Second, func() bool {
			_, err := r.Publish(ctx, []*pb.CloudEvent{ev})
			return err == nil
		}, "publish %s", id)
		if typ == "both" {
			want = append(want, "a/"+id, "b/"+id)
		} else {
			want = append(want, "c/"+id)
		}
	}
	for _, k := range want {
		testenv.Eventually(t, 20*time.Second, func() bool { return inv.delivered(k) }, "%s delivered", k)
	}
	for _, w := range wheres {
		testenv.Eventually(t, 10*time.Second, func() bool { return panics.Count(w) >= before[w]+1 }, "the panic at %s counted", w)
	}
	// Still serving after all of it.
	_, err = r.Publish(ctx, []*pb.CloudEvent{{Id: "after", Source: "/t", SpecVersion: "1.0", Type: "one"}})
	require.NoError(t, err)
	testenv.Eventually(t, 10*time.Second, func() bool { return inv.delivered("c/after") }, "delivered after the panics")
}
