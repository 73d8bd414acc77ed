package router

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/dlq"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// The round sent with each attempt (InvokeRequest.round) is the round decide
// records for that attempt, through three lives of an event: failures and a
// death in each, replays in between (the replay script puts the dead
// letter back as the history and sets since).
func TestReplayRoundFollowsTheHistory(t *testing.T) {
	raw, err := proto.Marshal(&pb.CloudEvent{Id: "e-1", Source: "/s", SpecVersion: "1.0", Type: "t"})
	require.NoError(t, err)
	retry := delivery.Result{Verdict: delivery.Retry, Code: "UNAVAILABLE", Start: time.Now()}
	dead := delivery.Result{Verdict: delivery.DeadNow, Code: "INVALID_ARGUMENT", Start: time.Now()}
	d, inv := testDispatcher(t, trigger.Target{GRPC: "127.0.0.1:1"}, retry)
	tr := d.trig.Load()

	it := claimed(raw)
	var letter []byte
	for life, results := range [][]delivery.Result{{retry, dead}, {retry, dead}, {dead}} {
		if life > 0 { // replayed
			it = store.Claimed{ID: dlq.ReplayedID("t", "1-0"), Attempt: 1, Event: raw, History: letter, Since: time.Now()}
		}
		for i, res := range results {
			inv.res = res
			d.attempt(tr, it)
			o := <-d.results
			require.Equal(t, life, inv.got[len(inv.got)-1].Round, "life %d, attempt %d", life, it.Attempt)
			rt, dl := d.decide(o, tr, time.Now())
			if i < len(results)-1 {
				require.NotNil(t, rt)
				it.Attempt++
				it.History = rt.History
				continue
			}
			require.NotNil(t, dl)
			letter = dl.Letter
		}
	}
	final := &switchyardv1.DeadLetter{}
	require.NoError(t, proto.Unmarshal(letter, final))
	require.EqualValues(t, 2, final.GetReplays())
	var rounds []int32
	for _, a := range final.GetAttempts() {
		rounds = append(rounds, a.GetRound())
	}
	require.Equal(t, []int32{0, 0, 1, 1, 2}, rounds, "the rounds decide recorded")
}

func TestReplayRound(t *testing.T) {
	letter := func(m *switchyardv1.DeadLetter) []byte {
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		return b
	}
	now := time.Now()
	attempts := []*switchyardv1.Attempt{{Number: 1, Code: "UNAVAILABLE", Message: "x"}, {Number: 2, Round: 1}}
	for name, c := range map[string]struct {
		it   store.Claimed
		want int
	}{
		"first attempt":              {store.Claimed{}, 0},
		"retry in the first life":    {store.Claimed{History: letter(&switchyardv1.DeadLetter{Attempts: attempts[:1]})}, 0},
		"first replay, attempt 1":    {store.Claimed{History: letter(&switchyardv1.DeadLetter{Attempts: attempts, DeadTime: timestamppb.New(now), Trigger: "t"}), Since: now}, 1},
		"first replay, a retry":      {store.Claimed{History: letter(&switchyardv1.DeadLetter{Attempts: attempts, Replays: 1}), Since: now}, 1},
		"third replay, attempt 1":    {store.Claimed{History: letter(&switchyardv1.DeadLetter{Replays: 2, DeadTime: timestamppb.New(now)}), Since: now}, 3},
		"replay of an empty letter":  {store.Claimed{Since: now}, 1},
		"replays written twice":      {store.Claimed{History: append(letter(&switchyardv1.DeadLetter{Replays: 5}), letter(&switchyardv1.DeadLetter{Replays: 2})...)}, 2},
		"replays with a wrong type":  {store.Claimed{History: []byte{0x5a, 0x01, 0x07}}, 0}, // field 11 as bytes: unknown to proto.Unmarshal
		"truncated after dead_time":  {store.Claimed{History: []byte{0x42, 0x00, 0x58}}, 1},
		"negative replays (int32)":   {store.Claimed{History: letter(&switchyardv1.DeadLetter{Replays: -1, DeadTime: timestamppb.New(now)})}, 0},
		"unknown fields are skipped": {store.Claimed{History: append([]byte{0xf8, 0x3f, 0x01, 0x0b, 0x0c}, letter(&switchyardv1.DeadLetter{Replays: 4})...)}, 4},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, c.want, replayRound(c.it))
		})
	}
}

// replayRound reads what proto.Unmarshal reads, and never panics.
func FuzzReplayRound(f *testing.F) {
	for _, m := range []*switchyardv1.DeadLetter{
		{},
		{Replays: 3},
		{Replays: 1, DeadTime: timestamppb.Now(), Attempts: []*switchyardv1.Attempt{{Number: 1, Round: 1}}},
		{Trigger: "t", Reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS, Replays: -7},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b[:len(b)/2], true)
	}
	f.Fuzz(func(t *testing.T, history []byte, replayed bool) {
		it := store.Claimed{History: history}
		if replayed {
			it.Since = time.UnixMilli(1)
		}
		got := replayRound(it)
		m := &switchyardv1.DeadLetter{}
		if proto.Unmarshal(history, m) != nil {
			return
		}
		want := int(m.GetReplays())
		if m.GetDeadTime() != nil {
			want++
		}
		if want == 0 && replayed {
			want = 1
		}
		require.Equal(t, want, got)
	})
}
