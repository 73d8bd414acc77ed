package server_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/server"
)

// TestREADMEDedup applies the README's dedup trigger and posts its event
// twice as the README's curl loop does: both answered 202, one delivery,
// the copy counted in the trigger's stats with the window in force.
func TestREADMEDedup(t *testing.T) {
	rec := &received{}
	fn := startFunction(t, recorder(rec))
	e := startServer(t, testenv.Embedded(t), nil)
	e.apply(t, strings.ReplaceAll(testenv.READMEBlock(t, "dedup-trigger"), "127.0.0.1:7070", fn))

	curl := testenv.READMEBlock(t, "dedup-curl")
	require.Contains(t, curl, "for i in 1 2; do")
	m := regexp.MustCompile(`-d '(\{[^']*)'`).FindStringSubmatch(curl)
	require.NotNil(t, m, "the README's curl body")
	for range 2 {
		st, body := e.post(t, "application/cloudevents+json", nil, []byte(m[1]))
		require.Equal(t, 202, st, "%v", body)
	}
	// Another event after the copy: once it is delivered, the copy would
	// have been too.
	st, _ := e.post(t, "application/cloudevents+json", nil, []byte(`{"specversion":"1.0","id":"pay-2","source":"/psp","type":"com.example.payment.captured"}`))
	require.Equal(t, 202, st)
	testenv.Eventually(t, 10*time.Second, func() bool { _, _, ok := rec.byID("pay-2"); return ok }, "pay-2 delivered")
	require.Equal(t, 2, rec.count(), "pay-1 delivered once")
	stats, err := e.client.TriggerStats(context.Background(), "payments")
	require.NoError(t, err)
	require.Len(t, stats, 1)
	require.EqualValues(t, 1, stats[0].GetDuplicates())
	require.EqualValues(t, 2, stats[0].GetEnqueued())
	require.Equal(t, 10*time.Minute, stats[0].GetDedupWindow().AsDuration())
}

// TestDedupWindowRefusedWithItsField: a window above the server's
// --max-dedup-window, or negative, is INVALID_ARGUMENT naming the field by
// its proto path, and nothing is stored.
func TestDedupWindowRefusedWithItsField(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), func(c *server.Config) { c.Router.MaxDedupWindow = time.Hour })
	ctx := context.Background()
	for name, w := range map[string]time.Duration{"above the server's maximum": 2 * time.Hour, "negative": -time.Second} {
		t.Run(name, func(t *testing.T) {
			tr := trigger.ToProto(trigger.Spec{Name: "d", Target: trigger.Target{GRPC: "127.0.0.1:1"},
				Delivery: trigger.Delivery{DedupWindow: &trigger.Duration{Duration: w}}})
			_, err := e.client.ApplyTrigger(ctx, tr)
			require.Equal(t, []string{"trigger.delivery.dedup_window"}, violations(t, err))
			_, err = e.client.Triggers().GetTrigger(ctx, &switchyardv1.GetTriggerRequest{Name: "d"})
			require.Equal(t, codes.NotFound, status.Code(err), "nothing stored")
		})
	}
}
