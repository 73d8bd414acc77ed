package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// A function tells a replay from a first delivery by the round: the attempt
// number starts again at 1 with each replay and the idempotency key stays,
// while the round counts the replays, whichever trigger the event was
// replayed to.
func TestReplayedEventCarriesItsRound(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		type call struct {
			trigger        string
			attempt, round int
			key            string
		}
		var (
			mu      sync.Mutex
			calls   []call
			healthy atomic.Bool
		)
		fn := startFunction(t, func(ctx context.Context, ev event.Event) (function.Result, error) {
			info, _ := function.FromContext(ctx)
			mu.Lock()
			calls = append(calls, call{info.Trigger, info.Attempt, info.Round, info.IdempotencyKey})
			mu.Unlock()
			if healthy.Load() {
				return function.Result{}, nil
			}
			return function.Result{}, status.Error(codes.Unavailable, "not yet")
		})
		e := startServer(t, b, nil)
		e.apply(t, fmt.Sprintf(`
name: fragile
filter: {attributes: {type: fragile}}
target: {grpc: "%[1]s"}
delivery: {max_attempts: 2, initial_backoff: 5ms, max_backoff: 10ms}
---
name: fragile-again
filter: {attributes: {type: nothing-routes-here}}
target: {grpc: "%[1]s"}
`, fn))
		ctx := context.Background()
		require.NoError(t, e.client.Publish(ctx, newEvent("r1", "fragile")))

		dead := func(n int) {
			t.Helper()
			testenv.Eventually(t, 10*time.Second, func() bool {
				d := deadLetters(t, e.client, "fragile")
				return len(d) == 1 && len(d[0].GetAttempts()) == n
			}, "dead letter with %d attempts", n)
		}
		replay := func(to string) {
			t.Helper()
			st, err := e.client.DeadLetters().ReplayDeadLetters(ctx, &switchyardv1.ReplayDeadLettersRequest{Trigger: "fragile", All: true, ToTrigger: to})
			require.NoError(t, err)
			for {
				m, err := st.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				if m.GetDone() {
					require.EqualValues(t, 1, m.GetReplayed())
				}
			}
		}
		dead(2)
		replay("") // round 1, same trigger: fails twice more
		dead(4)
		healthy.Store(true)
		replay("fragile-again") // round 2, another trigger: delivered
		testenv.Eventually(t, 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(calls) == 5
		}, "the third life's attempt")

		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, []call{
			{"fragile", 1, 0, "/test r1"},
			{"fragile", 2, 0, "/test r1"},
			{"fragile", 1, 1, "/test r1"},
			{"fragile", 2, 1, "/test r1"},
			{"fragile-again", 1, 2, "/test r1"},
		}, calls)
	})
}
