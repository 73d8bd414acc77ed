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
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

func matches(r *Router, typ string) []string {
	in := filter.NewInput(&pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: typ})
	return r.snap.Load().index.Match(in, nil)
}

// Concurrent applies and removals share rebuilds of the view, and every
// caller returns only once its own change is live.
func TestConcurrentChangesAreLiveOnReturn(t *testing.T) {
	b := testenv.Embedded(t)
	r := startRouter(t, b.Client, b.Prefix, nil)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				name := fmt.Sprintf("t%03d", i)
				if _, lagging, err := r.PutTrigger(t.Context(), testTrigger(name, "type-"+name), store.PutApply, 0); err != nil || len(lagging) > 0 {
					errs <- fmt.Errorf("apply %s: %v, lagging %v", name, err, lagging)
					return
				}
				if got := matches(r, "type-"+name); len(got) != 1 || got[0] != name {
					errs <- fmt.Errorf("%s not live after PutTrigger returned: matched %v", name, got)
					return
				}
				if i%2 == 1 {
					if _, lagging, err := r.DeleteTrigger(t.Context(), name, false); err != nil || len(lagging) > 0 {
						errs <- fmt.Errorf("delete %s: %v, lagging %v", name, err, lagging)
						return
					}
					if got := matches(r, "type-"+name); len(got) != 0 {
						errs <- fmt.Errorf("%s still matches after DeleteTrigger returned", name)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Len(t, r.snap.Load().triggers, n/2)
	testenv.Eventually(t, 5*time.Second, func() bool {
		cur, err := r.store.CurrentVersion(t.Context())
		return err == nil && r.snap.Load().ver == cur
	}, "the view serves the store's version")
}

// A state read or written at an older revision never replaces a newer one,
// a removal included, and the view serves a revision only when told to.
func TestInstallKeepsTheNewestState(t *testing.T) {
	r, err := New(Config{}, nil, &fakeInvoker{})
	require.NoError(t, err)
	r.stopping.Store(true) // no dispatchers: there is no store
	r.snap.Store(&snapshot{ver: store.Version{Epoch: "e1", Rev: 10}, triggers: map[string]*trigger.Trigger{}, index: emptySnapshot().index})
	mk := func(name, typ string, gen int64) *trigger.Trigger {
		ct, err := compile(withGen(testTrigger(name, typ), gen))
		require.NoError(t, err)
		return ct
	}
	r.install("e1", 0, localChange{name: "x", t: mk("x", "new", 2), at: 12})
	require.Equal(t, []string{"x"}, matches(r, "new"))
	r.install("e1", 0, localChange{name: "x", at: 11}) // a removal read before the change at 12
	require.Equal(t, []string{"x"}, matches(r, "new"), "an older removal is ignored")
	r.install("e1", 0, localChange{name: "x", t: mk("x", "old", 1), at: 11})
	require.Equal(t, []string{"x"}, matches(r, "new"), "an older state is ignored")
	r.install("e1", 0, localChange{name: "x", at: 13})
	require.Empty(t, matches(r, "new"))
	r.install("e1", 0, localChange{name: "x", t: mk("x", "new", 2), at: 12})
	require.Empty(t, matches(r, "new"), "a removal at 13 outranks a state at 12")
	require.Equal(t, int64(10), r.snap.Load().ver.Rev, "local changes do not move the served revision")
	r.install("e2", 0, localChange{name: "y", t: mk("y", "y", 1), at: 50})
	require.Empty(t, matches(r, "y"), "a change of another epoch is left to the watch loop")
	r.install("e1", 13)
	s := r.snap.Load()
	require.Equal(t, store.Version{Epoch: "e1", Rev: 13}, s.ver)
	require.Empty(t, s.known, "states known at or below the served revision are forgotten")
	require.Equal(t, int64(13), s.knownAt("x"))
}

func testTrigger(name, typ string) *switchyardv1.Trigger {
	return trigger.ToProto(trigger.Spec{Name: name,
		Filter: filter.Spec{Attributes: map[string]string{"type": typ}},
		Target: trigger.Target{GRPC: "127.0.0.1:1"}})
}

func withGen(p *switchyardv1.Trigger, gen int64) *switchyardv1.Trigger {
	p.Generation = gen
	return p
}

// A trigger changed since the base index was built is matched from the small
// layer only, removed ones not at all, and results stay in name order.
func TestRouteIndexLayers(t *testing.T) {
	mk := func(name, typ string) *trigger.Trigger {
		tr, err := trigger.Compile(trigger.Spec{Name: name, Filter: filter.Spec{Attributes: map[string]string{"type": typ}}, Target: trigger.Target{GRPC: "127.0.0.1:1"}})
		require.NoError(t, err)
		return tr
	}
	m := map[string]*trigger.Trigger{"a": mk("a", "x"), "c": mk("c", "x"), "d": mk("d", "x"), "e": mk("e", "y")}
	x := &routeIndex{base: filter.NewIndex(entriesOf(m, nil))}
	require.Equal(t, []string{"a", "c", "d"}, matchIn(x, "x"))

	m2 := map[string]*trigger.Trigger{"a": m["a"], "b": mk("b", "x"), "c": m["c"], "e": mk("e", "x")} // b added, d removed, e changed
	x2 := x.update(m2, []string{"b", "d", "e"})
	require.NotNil(t, x2.delta)
	require.Equal(t, []string{"a", "b", "c", "e"}, matchIn(x2, "x"))
	require.Empty(t, matchIn(x2, "y"))
	require.Equal(t, []string{"a", "c", "d"}, matchIn(x, "x"), "the old index is unchanged")

	// Past foldAt changes the layers fold into a new base.
	var many []string
	for i := range foldAt {
		many = append(many, fmt.Sprintf("n%03d", i))
	}
	x3 := x2.update(m2, many)
	require.Nil(t, x3.delta)
	require.Equal(t, []string{"a", "b", "c", "e"}, matchIn(x3, "x"))
}

func matchIn(x *routeIndex, typ string) []string {
	return x.Match(filter.NewInput(&pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: typ}), nil)
}
