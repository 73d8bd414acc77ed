package router

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/router/trigger"
)

// The backlog's contract: own changes apply at once; a figure read from the
// store applies only if no own change came between gen and observe.
func TestBacklogGenerations(t *testing.T) {
	tr := &trigger.Trigger{}
	tr.Spec.Delivery.MaxQueue = 3
	snap := &snapshot{triggers: map[string]*trigger.Trigger{"a": tr}}
	tests := map[string]struct {
		run  func(b *backlog)
		want int64 // a's estimate
	}{
		"accepted counts each match": {func(b *backlog) { b.accepted([][]string{{"a"}, {"a", "b"}}) }, 2},
		"a read applies": {func(b *backlog) {
			g := b.gen("a")
			b.observe("a", 5, g)
		}, 5},
		"a read overtaken by an own change is dropped": {func(b *backlog) {
			g := b.gen("a")
			b.accepted([][]string{{"a"}})
			b.observe("a", 5, g)
		}, 1},
		"queued takes the queue size and what left the log": {func(b *backlog) {
			b.accepted([][]string{{"a"}, {"a"}})
			b.queued(map[string]int64{"a": 4}, map[string]int64{"a": 2})
		}, 4},
		"the log count never goes negative": {func(b *backlog) {
			b.queued(map[string]int64{"a": 1}, map[string]int64{"a": 9})
		}, 1},
		"the sweep's log counts follow the same rule": {func(b *backlog) {
			gens := b.gens([]string{"a"})
			b.observeLogged(map[string]int64{"a": 7}, []string{"a"}, gens)
			stale := b.gens([]string{"a"})
			b.accepted([][]string{{"a"}})
			b.observeLogged(map[string]int64{"a": 100}, []string{"a"}, stale)
		}, 8},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := newBacklog()
			tc.run(b)
			b.mu.Lock()
			got := b.m["a"].total()
			b.mu.Unlock()
			require.Equal(t, tc.want, got)
			pe := b.atCap(snap, [][]string{{"gone", "a"}})
			if tc.want >= 3 {
				require.NotNil(t, pe)
				require.Equal(t, PushbackError{Trigger: "a", Undelivered: tc.want, MaxQueue: 3}, *pe)
			} else {
				require.Nil(t, pe, "below max_queue; a trigger not in the snapshot is not checked")
			}
		})
	}
}
