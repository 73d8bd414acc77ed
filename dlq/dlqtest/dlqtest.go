// Package dlqtest is the conformance suite of dlq.Store: every
// implementation runs it (router/store on the embedded store, a real Redis
// and a Redis Cluster), and so does the dlq package's own logic (listing,
// the replayer, purge, stats, retention) against each of them.
package dlqtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/dlq"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// Harness is one fresh store under test and the two things the suite
// needs beyond dlq.Store: a way to make dead letters as the delivery path
// does, and a look into a trigger's queue.
type Harness struct {
	// Store holds nothing for the triggers the suite names.
	Store dlq.Store
	// Bury dead-letters one event per letter in trigger's queue, in order,
	// the way a failed delivery does (each Entry's Event and Letter; its ID
	// is ignored), and returns their entry ids, oldest first.
	Bury func(ctx context.Context, trigger string, letters []dlq.Entry) ([]string, error)
	// Queued returns the ids of the events waiting in trigger's queue
	// (claiming them is fine: the suite looks once per queue and state).
	Queued func(ctx context.Context, trigger string) ([]string, error)
}

// Run runs the suite; newHarness is called once per subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := map[string]func(t *testing.T, h Harness){
		"ListPagesAcrossTriggers": testList,
		"GetAndNotFound":          testGet,
		"EntriesIsTheWorkList":    testEntries,
		"ReplayIsIdempotent":      testReplay,
		"ReplayToAnotherTrigger":  testReplayTo,
		"ReplayerRateAndProgress": testReplayer,
		"ReplayerDryRun":          testDryRun,
		"Purge":                   testPurge,
		"StatsAndCounts":          testStats,
		"RetainCountsEvictions":   testRetain,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, newHarness(t)) })
	}
}

// Letter returns a dead letter's stored form: event i of trigger and its
// story with reason.
func Letter(t testing.TB, trigger string, i int, reason switchyardv1.DeadLetterReason) dlq.Entry {
	t.Helper()
	ev, err := proto.Marshal(&pb.CloudEvent{Id: fmt.Sprintf("%s-%d", trigger, i), Source: "/dlqtest", SpecVersion: "1.0", Type: "dlqtest.event"})
	require.NoError(t, err)
	story, err := proto.Marshal(&switchyardv1.DeadLetter{Trigger: trigger, Reason: reason, ReasonDetail: fmt.Sprintf("letter %d", i),
		Attempts: []*switchyardv1.Attempt{{Number: 1, Code: "UNAVAILABLE"}}})
	require.NoError(t, err)
	return dlq.Entry{Event: ev, Letter: story}
}

func bury(t *testing.T, h Harness, trigger string, n int, reason switchyardv1.DeadLetterReason) []string {
	t.Helper()
	letters := make([]dlq.Entry, n)
	for i := range letters {
		letters[i] = Letter(t, trigger, i, reason)
	}
	ids, err := h.Bury(context.Background(), trigger, letters)
	require.NoError(t, err)
	require.Len(t, ids, n)
	return ids
}

// nextMillisecond waits until the clock is past the millisecond of entry
// id, so that entries buried next die later than it (entry ids and age
// limits count in milliseconds).
func nextMillisecond(t *testing.T, id string) {
	t.Helper()
	at := dlq.EntryTime(id)
	require.False(t, at.IsZero(), "entry id %q", id)
	for !time.Now().After(at.Add(time.Millisecond)) {
		time.Sleep(time.Millisecond)
	}
}

func letterIDs(dls []*switchyardv1.DeadLetter) []string {
	out := make([]string, len(dls))
	for i, dl := range dls {
		out[i] = dl.GetId()
	}
	return out
}

func named(trigger string, ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = trigger + "/" + id
	}
	return out
}

func testList(t *testing.T, h Harness) {
	ctx := context.Background()
	a := bury(t, h, "a", 4, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS)
	b := bury(t, h, "b", 3, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE)
	all := append(named("a", a...), named("b", b...)...)

	got, err := h.Store.DLQTriggers(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a", "b"}, got)

	for size := 1; size <= 8; size++ {
		var seen []string
		req := dlq.ListRequest{Triggers: []string{"a", "b"}, Size: size}
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10, "size %d: paging does not end", size)
			page, err := dlq.List(ctx, h.Store, req)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page.Letters), size)
			seen = append(seen, letterIDs(page.Letters)...)
			if page.Next == (dlq.Cursor{}) {
				break
			}
			req.After = page.Next
		}
		require.Equal(t, all, seen, "size %d", size)
	}

	page, err := dlq.List(ctx, h.Store, dlq.ListRequest{Triggers: []string{"a", "b"}, Reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, Size: 2})
	require.NoError(t, err)
	require.Equal(t, named("b", b[:2]...), letterIDs(page.Letters), "the reason filter skips a's letters without counting them")
	dl := page.Letters[0]
	require.Equal(t, "b", dl.GetTrigger())
	require.Equal(t, "b-0", dl.GetEvent().GetId())
	require.Equal(t, dlq.EntryTime(b[0]).UnixMilli(), dl.GetDeadTime().AsTime().UnixMilli(), "a story without a dead time takes the entry's")

	nextMillisecond(t, a[len(a)-1])
	later := bury(t, h, "a", 2, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_AGE)
	page, err = dlq.List(ctx, h.Store, dlq.ListRequest{Triggers: []string{"a"}, Since: dlq.EntryTime(later[0])})
	require.NoError(t, err)
	require.Equal(t, named("a", later...), letterIDs(page.Letters), "since skips the older letters")
}

func testGet(t *testing.T, h Harness) {
	ctx := context.Background()
	ids := bury(t, h, "g", 1, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REJECTED)
	dl, err := dlq.Get(ctx, h.Store, "g", ids[0])
	require.NoError(t, err)
	require.Equal(t, "g/"+ids[0], dl.GetId())
	require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REJECTED, dl.GetReason())

	for _, id := range []string{dlq.NextID(ids[0]), "1-0", "not-an-id", "", "+", "-"} {
		_, err := h.Store.GetDLQ(ctx, "g", id)
		require.ErrorIs(t, err, dlq.ErrNotFound, "id %q", id)
	}
	_, err = h.Store.GetDLQ(ctx, "nothing-here", ids[0])
	require.ErrorIs(t, err, dlq.ErrNotFound)
}

func testEntries(t *testing.T, h Harness) {
	ctx := context.Background()
	ids, err := dlq.Entries(ctx, h.Store, "e")
	require.NoError(t, err)
	require.Empty(t, ids)
	want := bury(t, h, "e", 3, 0)
	last, err := h.Store.LastDLQID(ctx, "e")
	require.NoError(t, err)
	require.Equal(t, want[2], last)
	ids, err = dlq.Entries(ctx, h.Store, "e")
	require.NoError(t, err)
	require.Equal(t, want, ids)
}

func testReplay(t *testing.T, h Harness) {
	ctx := context.Background()
	ids := bury(t, h, "r", 3, 0)
	replayed, missing, err := h.Store.Replay(ctx, "r", []string{ids[0], ids[1], "9-9", "junk"}, time.Now())
	require.NoError(t, err)
	require.EqualValues(t, 2, replayed)
	require.EqualValues(t, 2, missing, "an absent entry and a malformed id are missing")
	// Again, as after a lost reply: nothing is queued twice.
	replayed, missing, err = h.Store.Replay(ctx, "r", []string{ids[0], ids[1]}, time.Now())
	require.NoError(t, err)
	require.EqualValues(t, 0, replayed)
	require.EqualValues(t, 2, missing)

	queued, err := h.Queued(ctx, "r")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{dlq.ReplayedID("r", ids[0]), dlq.ReplayedID("r", ids[1])}, queued)
	left, err := dlq.Entries(ctx, h.Store, "r")
	require.NoError(t, err)
	require.Equal(t, ids[2:], left)
}

func testReplayTo(t *testing.T, h Harness) {
	ctx := context.Background()
	ids := bury(t, h, "from", 2, 0)
	replayed, missing, err := h.Store.ReplayTo(ctx, "from", "to", []string{ids[0], ids[1], "9-9"}, time.Now())
	require.NoError(t, err)
	require.EqualValues(t, 2, replayed)
	require.EqualValues(t, 1, missing)
	replayed, _, err = h.Store.ReplayTo(ctx, "from", "to", ids, time.Now())
	require.NoError(t, err)
	require.EqualValues(t, 0, replayed, "the entries left the source queue")

	queued, err := h.Queued(ctx, "to")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{dlq.ReplayedID("from", ids[0]), dlq.ReplayedID("from", ids[1])}, queued)
	left, err := dlq.Entries(ctx, h.Store, "from")
	require.NoError(t, err)
	require.Empty(t, left)
}

func testReplayer(t *testing.T, h Harness) {
	ctx := context.Background()
	ids := bury(t, h, "rp", 7, 0)
	var woken []string
	var reports []dlq.Progress
	rp := dlq.Replayer{Store: h.Store, Wake: func(tr string) { woken = append(woken, tr) }, Chunk: 3, ReportEvery: time.Hour}
	err := rp.Run(ctx, dlq.ReplayRequest{From: "rp", All: true, Rate: 1000}, func(p dlq.Progress) error {
		reports = append(reports, p)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"rp", "rp", "rp"}, woken, "one wake-up per chunk of 3")
	require.NotEmpty(t, reports)
	require.Equal(t, dlq.Progress{Total: 7, Replayed: 7, Done: true}, reports[len(reports)-1])
	for _, p := range reports[:len(reports)-1] {
		require.False(t, p.Done)
	}
	queued, err := h.Queued(ctx, "rp")
	require.NoError(t, err)
	require.Len(t, queued, len(ids))

	// A report that fails ends the replay with its error.
	more := bury(t, h, "rp", 2, 0)
	stop := fmt.Errorf("client gone")
	err = (&dlq.Replayer{Store: h.Store, Chunk: 1, ReportEvery: time.Nanosecond}).Run(ctx, dlq.ReplayRequest{From: "rp", IDs: more}, func(dlq.Progress) error { return stop })
	require.ErrorIs(t, err, stop)
	left, err := dlq.Entries(ctx, h.Store, "rp")
	require.NoError(t, err)
	require.Equal(t, more[1:], left, "the replay stopped after the chunk it reported")

	// Waiting for the rate ends with the context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = (&dlq.Replayer{Store: h.Store}).Run(cctx, dlq.ReplayRequest{From: "rp", IDs: more[1:], Rate: 1}, func(dlq.Progress) error { return nil })
	var we *dlq.WaitError
	require.ErrorAs(t, err, &we)
}

func testDryRun(t *testing.T, h Harness) {
	ctx := context.Background()
	ids := bury(t, h, "dry", 2, 0)
	var reports []dlq.Progress
	req := dlq.ReplayRequest{From: "dry", To: "other", IDs: append(append([]string{}, ids...), "9-9"), DryRun: true}
	err := (&dlq.Replayer{Store: h.Store}).Run(ctx, req, func(p dlq.Progress) error {
		reports = append(reports, p)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []dlq.Progress{{Total: 3, Replayed: 2, Missing: 1, Done: true}}, reports)
	left, err := dlq.Entries(ctx, h.Store, "dry")
	require.NoError(t, err)
	require.Equal(t, ids, left, "a dry run changes nothing")
	queued, err := h.Queued(ctx, "other")
	require.NoError(t, err)
	require.Empty(t, queued)
}

func testPurge(t *testing.T, h Harness) {
	ctx := context.Background()
	old := bury(t, h, "p", 3, 0)
	nextMillisecond(t, old[len(old)-1])
	young := bury(t, h, "p", 3, 0)

	n, err := dlq.Purge(ctx, h.Store, dlq.PurgeRequest{Trigger: "p", IDs: []string{old[0], "9-9", "junk"}})
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "only the entry that existed counts")
	n, err = dlq.Purge(ctx, h.Store, dlq.PurgeRequest{Trigger: "p", Before: dlq.EntryTime(young[0])})
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	left, err := dlq.Entries(ctx, h.Store, "p")
	require.NoError(t, err)
	require.Equal(t, young, left)
	n, err = dlq.Purge(ctx, h.Store, dlq.PurgeRequest{Trigger: "p"})
	require.NoError(t, err)
	require.Zero(t, n, "no mode, nothing deleted")
	n, err = dlq.Purge(ctx, h.Store, dlq.PurgeRequest{Trigger: "p", All: true})
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	left, err = dlq.Entries(ctx, h.Store, "p")
	require.NoError(t, err)
	require.Empty(t, left)

	qs, err := dlq.Stats(ctx, h.Store, []string{"p"})
	require.NoError(t, err)
	require.Equal(t, dlq.Counts{Entries: 0, Added: 6, Evicted: 0}, qs[0].Counts, "purged entries are not evictions")
}

func testStats(t *testing.T, h Harness) {
	ctx := context.Background()
	ids := bury(t, h, "s", 2, 0)
	qs, err := dlq.Stats(ctx, h.Store, []string{"s", "none"})
	require.NoError(t, err)
	require.Len(t, qs, 2)
	require.Equal(t, "s", qs[0].Trigger)
	require.Equal(t, dlq.Counts{Entries: 2, Added: 2}, qs[0].Counts)
	require.Equal(t, dlq.EntryTime(ids[0]), qs[0].Oldest)
	require.Equal(t, dlq.QueueStats{Trigger: "none"}, qs[1], "a trigger without a queue reports zeros")
}

func testRetain(t *testing.T, h Harness) {
	ctx := context.Background()
	old := bury(t, h, "aged", 3, 0)
	nextMillisecond(t, old[len(old)-1])
	young := bury(t, h, "aged", 2, 0)
	bury(t, h, "full", 5, 0)
	bury(t, h, "kept", 2, 0)

	rs := []dlq.Retention{
		{Trigger: "aged", Before: dlq.EntryTime(young[0]), MaxEntries: 1},
		{Trigger: "full", MaxEntries: 2},
		{Trigger: "kept"},
	}
	var got []dlq.Evicted
	require.NoError(t, dlq.Retain(ctx, h.Store, rs, func(e dlq.Evicted) { got = append(got, e) }))
	require.Equal(t, []dlq.Evicted{
		{Trigger: "aged", Aged: 3, Capped: 1},
		{Trigger: "full", Capped: 3},
		{Trigger: "kept"},
	}, got, "the age limit first, then the size limit")

	left, err := dlq.Entries(ctx, h.Store, "aged")
	require.NoError(t, err)
	require.Equal(t, young[1:], left, "the oldest go first")
	qs, err := dlq.Stats(ctx, h.Store, []string{"aged", "full", "kept"})
	require.NoError(t, err)
	require.Equal(t, dlq.Counts{Entries: 1, Added: 5, Evicted: 4}, qs[0].Counts)
	require.Equal(t, dlq.Counts{Entries: 2, Added: 5, Evicted: 3}, qs[1].Counts)
	require.Equal(t, dlq.Counts{Entries: 2, Added: 2}, qs[2].Counts)

	// A policy resolved per trigger gives the same retention.
	pol := dlq.Policy{MaxEntries: 1, MaxAge: time.Hour}
	now := time.Now()
	require.Equal(t, dlq.Retention{Trigger: "full", Before: now.Add(-time.Hour), MaxEntries: 1}, pol.Retention("full", now))
	require.Equal(t, dlq.Retention{Trigger: "full", Before: now.Add(-time.Minute), MaxEntries: 7}, pol.For(7, time.Minute).Retention("full", now))
}
