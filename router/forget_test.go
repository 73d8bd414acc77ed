package router

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// forgettingInvoker records the router's ForgetTrigger calls.
type forgettingInvoker struct {
	countingInvoker
	mu    sync.Mutex
	calls []string
}

func (f *forgettingInvoker) ForgetTrigger(name string, gone bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := name + " changed"
	if gone {
		s = name + " gone"
	}
	f.calls = append(f.calls, s)
}

func (f *forgettingInvoker) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

// TestTargetChangesReachTheInvoker: the invoker hears when a trigger
// appears, when its target changes (not when only its policy does) and when
// it is deleted, so that it can close broker publishers no trigger uses.
func TestTargetChangesReachTheInvoker(t *testing.T) {
	b := testenv.Embedded(t)
	f := &forgettingInvoker{countingInvoker: countingInvoker{seen: map[string]int{}}}
	r := startRouter(t, b.Client, b.Prefix, func(_ *Config, inv *delivery.Invoker) { *inv = f })
	put := func(s trigger.Spec) {
		_, _, err := r.PutTrigger(t.Context(), trigger.ToProto(s), store.PutApply, 0)
		require.NoError(t, err)
	}
	spec := trigger.Spec{Name: "pub", Target: trigger.Target{GRPC: "127.0.0.1:1"}}
	put(spec)
	require.Equal(t, []string{"pub changed"}, f.take(), "a new trigger starts afresh")
	spec.Delivery.MaxAttempts = 3
	put(spec)
	require.Empty(t, f.take(), "a policy change keeps the target's state")
	spec.Target = trigger.Target{URL: "http://127.0.0.1:1/x"}
	put(spec)
	require.Equal(t, []string{"pub changed"}, f.take())
	_, _, err := r.DeleteTrigger(t.Context(), "pub", false)
	require.NoError(t, err)
	require.Equal(t, []string{"pub gone"}, f.take())
}
