package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/server"
)

// routedOn publishes one event of type typ on e and returns how many
// triggers it was routed to.
func routedOn(t *testing.T, e *env, id, typ string) int {
	t.Helper()
	st, body := e.post(t, "application/cloudevents+json", nil,
		[]byte(fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/cluster","type":%q}`, id, typ)))
	require.Equal(t, http.StatusAccepted, st)
	return int(body["routed"].(float64))
}

// Each of Create, Update, Apply and Delete answers once the other instance
// routes by the change, with no lagging instance.
func TestTriggerServiceChangesAreLiveOnTheOtherInstance(t *testing.T) {
	b := testenv.Real(t)
	named := func(id string) func(*server.Config) { return func(c *server.Config) { c.Router.InstanceID = id } }
	a := startServer(t, b, named("a"))
	o := startServer(t, b, named("o"))
	api := a.client.Triggers()
	ctx := context.Background()
	mk := func(typ string) *switchyardv1.Trigger {
		return trigger.ToProto(trigger.Spec{Name: "svc", Filter: filter.Spec{Attributes: map[string]string{"type": typ}},
			Target: trigger.Target{GRPC: "127.0.0.1:1"}})
	}

	created, err := api.CreateTrigger(ctx, &switchyardv1.CreateTriggerRequest{Trigger: mk("one")})
	require.NoError(t, err)
	require.Empty(t, created.GetLaggingInstances())
	require.Equal(t, 1, routedOn(t, o, "c-1", "one"))

	updated, err := api.UpdateTrigger(ctx, &switchyardv1.UpdateTriggerRequest{Trigger: mk("two"), ExpectedGeneration: 1})
	require.NoError(t, err)
	require.Empty(t, updated.GetLaggingInstances())
	require.Equal(t, 1, routedOn(t, o, "u-1", "two"))
	require.Equal(t, 0, routedOn(t, o, "u-2", "one"))

	applied, err := api.ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{Trigger: mk("three")})
	require.NoError(t, err)
	require.Empty(t, applied.GetLaggingInstances())
	require.True(t, applied.GetChanged())
	require.Equal(t, 1, routedOn(t, o, "a-1", "three"))

	unchanged, err := api.ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{Trigger: mk("three")})
	require.NoError(t, err)
	require.False(t, unchanged.GetChanged())
	require.Empty(t, unchanged.GetLaggingInstances())

	deleted, err := api.DeleteTrigger(ctx, &switchyardv1.DeleteTriggerRequest{Name: "svc", Purge: true})
	require.NoError(t, err)
	require.Empty(t, deleted.GetLaggingInstances())
	require.Equal(t, 0, routedOn(t, o, "d-1", "three"))
}
