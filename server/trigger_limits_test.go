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
