package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/store"
)

// TestPreviewPutAgreesWithPutTrigger: a preview answers what the put then
// does (created, changed, refused), writes nothing and announces nothing.
func TestPreviewPutAgreesWithPutTrigger(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		_, _, _, err := s.Restore(ctx, nil)
		require.NoError(t, err)
		steps := []struct {
			t    *switchyardv1.Trigger
			mode store.PutMode
			gen  int64
			err  error
		}{
			{&switchyardv1.Trigger{Name: "a"}, store.PutUpdate, 0, store.ErrNotFound},
			{&switchyardv1.Trigger{Name: "a"}, store.PutApply, 0, nil},
			{&switchyardv1.Trigger{Name: "a"}, store.PutCreate, 0, store.ErrExists},
			{&switchyardv1.Trigger{Name: "a"}, store.PutApply, 0, nil},
			{&switchyardv1.Trigger{Name: "a", Description: "x"}, store.PutUpdate, 7, store.ErrConflict},
			{&switchyardv1.Trigger{Name: "a", Description: "x"}, store.PutUpdate, 1, nil},
		}
		for i, st := range steps {
			before, err := s.CurrentVersion(ctx)
			require.NoError(t, err)
			stored, _ := s.GetTrigger(ctx, "a")
			plan, old, perr := s.PreviewPut(ctx, st.t, st.mode, st.gen)
			after, err := s.CurrentVersion(ctx)
			require.NoError(t, err)
			require.Equal(t, before, after, "step %d: a preview announces nothing", i)
			now, _ := s.GetTrigger(ctx, "a")
			require.True(t, proto.Equal(stored, now), "step %d: a preview writes nothing", i)
			require.True(t, proto.Equal(stored, old), "step %d: the preview returns the stored trigger", i)

			res, err := s.PutTrigger(ctx, st.t, st.mode, st.gen)
			if st.err != nil {
				require.ErrorIs(t, perr, st.err, "step %d", i)
				require.ErrorIs(t, err, st.err, "step %d", i)
				continue
			}
			require.NoError(t, perr)
			require.NoError(t, err)
			require.Equal(t, res.Created, plan.Created, "step %d", i)
			require.Equal(t, res.Changed, plan.Changed, "step %d", i)
			require.Equal(t, res.Trigger.GetGeneration(), plan.Trigger.GetGeneration(), "step %d", i)
			require.Equal(t, res.Trigger.GetDescription(), plan.Trigger.GetDescription(), "step %d", i)
		}
	})
}
