package trigger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/router/trigger"
)

func TestDedupWindowSpec(t *testing.T) {
	parse := func(t *testing.T, delivery string) trigger.Spec {
		t.Helper()
		specs, err := trigger.Parse([]byte("name: d\ntarget: {grpc: 'h:1'}\n" + delivery))
		require.NoError(t, err)
		require.Len(t, specs, 1)
		return specs[0]
	}
	for name, tc := range map[string]struct {
		delivery string
		want     *time.Duration // nil: unset
		server   time.Duration  // DedupWindowOr(10m)
	}{
		"unset: the server's default": {"", nil, 10 * time.Minute},
		"set":                         {"delivery: {dedup_window: 90s}\n", ptr(90 * time.Second), 90 * time.Second},
		"0: off":                      {"delivery: {dedup_window: 0s}\n", ptr(0), 0},
	} {
		t.Run(name, func(t *testing.T) {
			s := parse(t, tc.delivery)
			require.NoError(t, s.Validate())
			if tc.want == nil {
				require.Nil(t, s.Delivery.DedupWindow)
			} else {
				require.NotNil(t, s.Delivery.DedupWindow)
				require.Equal(t, *tc.want, s.Delivery.DedupWindow.Duration)
			}
			require.Equal(t, tc.server, s.Delivery.DedupWindowOr(10*time.Minute))
			// The API message keeps unset and 0 apart.
			back := trigger.FromProto(trigger.ToProto(s))
			require.Equal(t, s.Delivery.DedupWindow, back.Delivery.DedupWindow)
		})
	}
}

func TestDedupWindowRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		window time.Duration
		policy trigger.Policy
		msg    string
	}{
		"negative":               {-time.Second, trigger.Policy{}, "must not be negative"},
		"above every server's":   {25 * time.Hour, trigger.Policy{}, "must be at most 24h0m0s"},
		"above this server's":    {2 * time.Hour, trigger.Policy{MaxDedupWindow: time.Hour}, "this server allows at most 1h0m0s"},
		"within this server's":   {time.Hour, trigger.Policy{MaxDedupWindow: time.Hour}, ""},
		"0 whatever the maximum": {0, trigger.Policy{MaxDedupWindow: time.Hour}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			s := trigger.Spec{Name: "d", Target: trigger.Target{GRPC: "h:1"}}
			s.Delivery.DedupWindow = &trigger.Duration{Duration: tc.window}
			err := s.ValidateWith(tc.policy)
			_, cerr := trigger.CompileWith(s, tc.policy)
			if tc.msg == "" {
				require.NoError(t, err)
				require.NoError(t, cerr)
				return
			}
			for _, err := range []error{err, cerr} {
				var fe trigger.FieldErrors
				require.True(t, errors.As(err, &fe), "%v", err)
				require.Len(t, fe, 1)
				require.Equal(t, "delivery.dedup_window", fe[0].Path)
				require.Contains(t, fe[0].Msg, tc.msg)
			}
		})
	}
}

func ptr(d time.Duration) *time.Duration { return &d }
