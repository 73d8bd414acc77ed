package router

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
)

func matches(r *Router, typ string) []string {
	in := filter.NewInput(&pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: typ})
	return r.snap.Load().index.Match(in, nil)
}

// Concurrent applies and removals share rebuilds of the view, and every
// caller returns only once its own change is live.
func TestConcurrentLocalChangesAreLiveOnReturn(t *testing.T) {
	b := testenv.Embedded(t)
	r, err := New(Config{Prefix: b.Prefix}, b.Client, &fakeInvoker{})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, r.Shutdown(ctx))
	})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				name := fmt.Sprintf("t%03d", i)
				p := trigger.ToProto(trigger.Spec{Name: name,
					Filter: filter.Spec{Attributes: map[string]string{"type": "type-" + name}},
					Target: trigger.Target{GRPC: "127.0.0.1:1"}})
				p.Generation = 1
				if err := r.ApplyLocal(p); err != nil {
					errs <- err
					return
				}
				if got := matches(r, "type-"+name); len(got) != 1 || got[0] != name {
					errs <- fmt.Errorf("%s not live after ApplyLocal returned: matched %v", name, got)
					return
				}
				if i%2 == 1 {
					r.RemoveLocal(name)
					if got := matches(r, "type-"+name); len(got) != 0 {
						errs <- fmt.Errorf("%s still matches after RemoveLocal returned", name)
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
	snap := r.snap.Load()
	require.Len(t, snap.triggers, n/2)
	// An older generation does not replace a newer one.
	p := trigger.ToProto(trigger.Spec{Name: "t000", Filter: filter.Spec{Attributes: map[string]string{"type": "other"}}, Target: trigger.Target{GRPC: "127.0.0.1:1"}})
	p.Generation = 0
	require.NoError(t, r.ApplyLocal(p))
	require.Equal(t, []string{"t000"}, matches(r, "type-t000"))
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
