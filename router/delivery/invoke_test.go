package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An HTTP target learns a replay's round from Switchyard-Round, absent in
// an event's first life.
func TestInvokeHTTPSendsRound(t *testing.T) {
	got := make(chan http.Header, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer srv.Close()
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	ev := bench1KiB()
	for _, round := range []int{0, 3} {
		res := tg.Invoke(context.Background(), &Attempt{Trigger: "orders", URL: srv.URL, Event: ev, Number: 2, Round: round, Timeout: 10 * time.Second})
		require.Equal(t, Ack, res.Verdict, res.Message)
		h := <-got
		require.Equal(t, "2", h.Get("Switchyard-Attempt"))
		if round == 0 {
			require.NotContains(t, h, "Switchyard-Round")
		} else {
			require.Equal(t, "3", h.Get("Switchyard-Round"))
		}
	}
}
