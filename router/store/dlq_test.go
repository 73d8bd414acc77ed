package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/dlq"
	"github.com/switchyard-io/switchyard/dlq/dlqtest"
	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

// The store passes the dlq conformance suite on every backend.
func TestDLQConformance(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		dlqtest.Run(t, func(t *testing.T) dlqtest.Harness {
			s := store.New(b.Client, testenv.PrefixT(t))
			require.NoError(t, s.LoadScripts(context.Background()))
			return dlqtest.Harness{Store: s, Bury: buryIn(s), Queued: queuedIn(s)}
		})
	})
}

// buryIn dead-letters events as a dispatcher does: queued, claimed, then
// moved to the DLQ by the dead-letter script.
func buryIn(s *store.Store) func(ctx context.Context, trigger string, letters []dlq.Entry) ([]string, error) {
	var seq int
	return func(ctx context.Context, trigger string, letters []dlq.Entry) ([]string, error) {
		items := make([]store.Item, len(letters))
		for i, l := range letters {
			seq++
			items[i] = store.Item{ID: fmt.Sprintf("%d-%d", time.Now().UnixMilli(), seq), Event: l.Event}
		}
		if _, err := s.Enqueue(ctx, map[string][]store.Item{trigger: items}); err != nil {
			return nil, err
		}
		// The queue may hold other events (replayed ones), ahead of these:
		// claim everything, bury only these.
		res, err := s.Claim(ctx, trigger, time.Now(), 1000, 1<<20, time.Minute)
		if err != nil {
			return nil, err
		}
		byID := map[string][]byte{}
		for i, it := range items {
			byID[it.ID] = letters[i].Letter
		}
		deads := make([]store.Dead, 0, len(res.Items))
		for _, it := range items { // in the order given, whatever order the claim had
			for _, c := range res.Items {
				if c.ID == it.ID {
					deads = append(deads, store.Dead{AttemptRef: store.AttemptRef{ID: c.ID, Attempt: c.Attempt}, Letter: byID[c.ID], Failed: true})
				}
			}
		}
		if _, _, err := s.DeadLetter(ctx, trigger, time.Now(), store.Breaker{}, 0, deads); err != nil {
			return nil, err
		}
		all, err := dlq.Entries(ctx, s, trigger)
		if err != nil {
			return nil, err
		}
		return all[len(all)-len(letters):], nil
	}
}

// queuedIn claims every event waiting in the trigger's queue. (The suite
// buries in a queue only before looking into it.)
func queuedIn(s *store.Store) func(ctx context.Context, trigger string) ([]string, error) {
	return func(ctx context.Context, trigger string) ([]string, error) {
		res, err := s.Claim(ctx, trigger, time.Now(), 1000, 1<<20, time.Minute)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(res.Items))
		for i, it := range res.Items {
			ids[i] = it.ID
		}
		return ids, nil
	}
}
