package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// ReserveTrigger caps the triggers under each scope prefix the new name
// falls under, counting the creates in progress; an existing trigger, a
// name outside the scope and a released reservation do not count.
func TestReserveTriggerPerScope(t *testing.T) {
	b := testenv.Embedded(t)
	r, err := New(Config{Prefix: b.Prefix, MaxTriggersPerScope: 2, MaxTriggers: -1}, b.Client, &fakeInvoker{})
	require.NoError(t, err)
	require.NoError(t, r.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, r.Shutdown(ctx))
	})
	install := func(name string) {
		c, err := trigger.Compile(trigger.Spec{Name: name, Target: trigger.Target{GRPC: "127.0.0.1:1"}})
		require.NoError(t, err)
		_, _, err = r.PutTrigger(t.Context(), trigger.ToProto(c.Spec), store.PutApply, 0)
		require.NoError(t, err)
	}
	scopes := []string{"shop-", "shop-eu-"}
	install("shop-a")
	release, err := r.ReserveTrigger("shop-b", scopes) // in progress, not installed yet
	require.NoError(t, err)

	_, err = r.ReserveTrigger("shop-c", scopes)
	var le *LimitError
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, "max_triggers_per_scope", le.Limit)
	require.Equal(t, "trigger.name", le.Field)
	require.Contains(t, le.Error(), `scope "shop-" holds 2 triggers`)

	again, err := r.ReserveTrigger("shop-a", scopes)
	require.NoError(t, err, "an existing trigger changes, whatever the count")
	again()
	other, err := r.ReserveTrigger("mail-x", scopes)
	require.NoError(t, err, "a name outside the scope's prefixes is not counted against them")
	other()

	release()
	ok, err := r.ReserveTrigger("shop-c", scopes)
	require.NoError(t, err, "a released reservation frees its place")
	ok()
	release() // twice is harmless

	// The global cap counts every trigger. The router is stopped first: its
	// loops read the config (the sweep copies it), so changing it under
	// them would race.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	r.cfg.MaxTriggers = 1
	_, err = r.ReserveTrigger("mail-y", nil)
	require.True(t, errors.As(err, &le))
	require.Equal(t, "max_triggers", le.Limit)
}
