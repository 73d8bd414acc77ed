package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/server"
)

// The API refuses what would pass a limit, naming the limit and the field:
// one trigger more than max_triggers (concurrent creates included), and a
// filter with more expressions than a trigger may hold. Nothing refused is
// stored; changing an existing trigger at the limit still works.
func TestTriggerLimitsThroughTheAPI(t *testing.T) {
	b := testenv.Embedded(t)
	e := startServer(t, b, func(c *server.Config) { c.Router.MaxTriggers = 5 })
	ctx := context.Background()
	spec := func(name string) trigger.Spec {
		return trigger.Spec{Name: name, Target: trigger.Target{GRPC: "127.0.0.1:1"}}
	}

	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.client.ApplyTrigger(ctx, trigger.ToProto(spec(fmt.Sprintf("t%d", i))))
			if err == nil {
				ok.Add(1)
				return
			}
			v := triggerViolations(t, err)
			if assertContains(t, v["trigger.name"], "max_triggers 5") {
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 5, ok.Load(), "exactly the limit is created, concurrently too")
	require.EqualValues(t, 15, refused.Load())
	ts, err := e.client.ListTriggers(ctx)
	require.NoError(t, err)
	require.Len(t, ts, 5)

	// At the limit, an existing trigger still changes.
	changed := spec(ts[0].GetName())
	changed.Description = "changed"
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(changed))
	require.NoError(t, err)

	// Filter size: expressions per trigger.
	_, err = e.client.DeleteTrigger(ctx, ts[1].GetName(), true)
	require.NoError(t, err)
	big := spec("big")
	for i := range filter.MaxExpressions + 1 {
		big.Filter.All = append(big.Filter.All, filter.Spec{CEL: fmt.Sprintf("size(id) > %d", i)})
	}
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(big))
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, triggerViolations(t, err)["trigger.filter"], "expressions per trigger")
	_, err = e.client.GetTrigger(ctx, "big")
	require.Equal(t, codes.NotFound, status.Code(err))
}

func assertContains(t *testing.T, s, sub string) bool {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
		return false
	}
	return true
}

// A caller scoped to a trigger-name prefix (a tenant) creates at most
// max_triggers_per_scope triggers under it; another tenant's count, and an
// unscoped admin, are not held by it.
func TestTriggersPerScopeThroughTheAPI(t *testing.T) {
	e := startAuthServer(t, testenv.Embedded(t), func(c *server.Config) { c.Router.MaxTriggersPerScope = 2 })
	ctx := context.Background()
	a := e.as(t, e.key(t, "tenant-a", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"a-"}}))
	b := e.as(t, e.key(t, "tenant-b", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"b-"}}))
	admin := e.as(t, adminToken)
	target := &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: "127.0.0.1:1"}}
	for _, name := range []string{"a-1", "a-2"} {
		_, err := a.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: name, Target: target})
		require.NoError(t, err)
	}
	_, err := a.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "a-3", Target: target})
	st := requireCode(t, err, codes.InvalidArgument, "max_triggers_per_scope 2")
	require.Equal(t, "trigger.name", badRequestField(st))
	_, err = a.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "a-1", Target: target, Description: "changed"})
	require.NoError(t, err, "an existing trigger still changes")
	_, err = b.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "b-1", Target: target})
	require.NoError(t, err, "another tenant has its own count")
	_, err = admin.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "a-admin", Target: target})
	require.NoError(t, err, "an unscoped caller is held by max_triggers only")
}
