package router

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
)

// TestMain stops the Redis Cluster the tests share (testenv.All).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestDeliveryOnEveryBackend: two instances deliver every event published
// to triggers spread over the store (on the cluster, over every master),
// whether queued directly (one trigger) or through the ingest log (several),
// with concurrent publishers so that one commit holds several triggers'
// writes (one transaction per hash slot on the cluster).
func TestDeliveryOnEveryBackend(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		invs := []*countingInvoker{{seen: map[string]int{}}, {seen: map[string]int{}}}
		rs := make([]*Router, 2)
		for i := range rs {
			rs[i] = startRouter(t, b.Client, b.Prefix, func(_ *Config, inv *delivery.Invoker) { *inv = invs[i] })
		}
		const solos, fans, per = 6, 3, 40
		for i := range solos {
			_, _, err := rs[0].PutTrigger(t.Context(), testTrigger(fmt.Sprintf("solo-%d", i), fmt.Sprintf("solo-%d", i)), store.PutApply, 0)
			require.NoError(t, err)
		}
		for i := range fans {
			_, _, err := rs[1].PutTrigger(t.Context(), testTrigger(fmt.Sprintf("fan-%d", i), "fan"), store.PutApply, 0)
			require.NoError(t, err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, solos+1)
		for i := range solos {
			wg.Go(func() {
				for j := range per {
					ev := event(fmt.Sprintf("s%d-%d", i, j), fmt.Sprintf("solo-%d", i))
					if _, err := rs[j%2].Publish(t.Context(), []*pb.CloudEvent{ev}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Go(func() {
			for j := range per {
				if _, err := rs[j%2].Publish(t.Context(), []*pb.CloudEvent{event(fmt.Sprintf("f-%d", j), "fan")}); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		delivered := func(trigger string, ids []string) int {
			return invs[0].count(trigger, ids...) + invs[1].count(trigger, ids...)
		}
		ids := func(f string) []string {
			out := make([]string, per)
			for j := range out {
				out[j] = fmt.Sprintf(f, j)
			}
			return out
		}
		testenv.Eventually(t, 30*time.Second, func() bool {
			for i := range solos {
				if delivered(fmt.Sprintf("solo-%d", i), ids(fmt.Sprintf("s%d-%%d", i))) < per {
					return false
				}
			}
			for i := range fans {
				if delivered(fmt.Sprintf("fan-%d", i), ids("f-%d")) < per {
					return false
				}
			}
			return true
		}, "every event delivered to every trigger it matched")
	})
}
