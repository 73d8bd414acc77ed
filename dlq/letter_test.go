package dlq_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/dlq"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// An event's story through two lives: attempts added, buried, replayed
// (the story comes back as the history), a new life counted.
func TestHistoryAcrossLives(t *testing.T) {
	hist := dlq.History(nil)
	require.Zero(t, dlq.Round(nil, false))
	hist.Attempts = append(hist.Attempts, &switchyardv1.Attempt{Number: 1, Code: "UNAVAILABLE"})
	b, err := dlq.Encode(hist)
	require.NoError(t, err)
	require.Zero(t, dlq.Round(b, false), "a retry in the first life")

	hist = dlq.History(b)
	hist.Attempts = append(hist.Attempts, &switchyardv1.Attempt{Number: 2, Code: "UNAVAILABLE"})
	now := time.UnixMilli(1_700_000_000_000)
	letter, err := dlq.Bury(hist, dlq.Death{Trigger: "t", Target: "grpc://f", Reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS,
		Detail: "2 attempts failed", Time: now, TraceID: "abc"})
	require.NoError(t, err)
	require.Equal(t, 1, dlq.Round(letter, true), "replayed once: the second life")

	next := dlq.History(letter)
	require.EqualValues(t, 1, next.GetReplays())
	require.Nil(t, next.GetDeadTime())
	require.Zero(t, next.GetReason())
	require.Empty(t, next.GetReasonDetail())
	require.Len(t, next.GetAttempts(), 2, "the first life's attempts stay")
	b, err = dlq.Encode(next)
	require.NoError(t, err)
	require.Equal(t, 1, dlq.Round(b, true))

	got := &switchyardv1.DeadLetter{}
	require.NoError(t, proto.Unmarshal(letter, got))
	require.Equal(t, "t", got.GetTrigger())
	require.Equal(t, "grpc://f", got.GetTarget())
	require.Equal(t, "abc", got.GetTraceId())
	require.True(t, got.GetDeadTime().AsTime().Equal(now))

	require.Equal(t, 1, dlq.Round(nil, true), "a replayed event whose letter had no story")
	require.Empty(t, dlq.History([]byte{0xff, 0xff}).GetAttempts(), "an unreadable history is none")
}

// A target's message that is not UTF-8 does not cost the history.
func TestEncodeRepairsInvalidUTF8(t *testing.T) {
	hist := &switchyardv1.DeadLetter{ReasonDetail: "ok", Attempts: []*switchyardv1.Attempt{
		{Number: 1, Code: "HTTP 500", Message: "bad \xff\xfe body", StartTime: timestamppb.New(time.UnixMilli(1))},
	}}
	_, err := proto.Marshal(hist)
	require.Error(t, err, "the case Encode exists for")
	b, err := dlq.Encode(hist)
	require.NoError(t, err)
	got := &switchyardv1.DeadLetter{}
	require.NoError(t, proto.Unmarshal(b, got))
	require.Equal(t, "bad \uFFFD body", got.GetAttempts()[0].GetMessage())
	require.Equal(t, "bad \xff\xfe body", hist.Attempts[0].Message, "the caller's message is left as it was")
}

func TestDecodeCorrupt(t *testing.T) {
	tests := map[string]struct {
		entry dlq.Entry
		event bool
	}{
		"story": {dlq.Entry{ID: "1-0", Letter: []byte{0xff}}, false},
		"event": {dlq.Entry{ID: "1-0", Event: []byte{0xff}}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := dlq.Decode("t", tc.entry)
			var ce *dlq.CorruptError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.event, ce.Event)
			require.Contains(t, err.Error(), "dead letter t/1-0")
		})
	}
}

func TestPolicy(t *testing.T) {
	var p dlq.Policy
	p.SetDefaults()
	require.Equal(t, dlq.Policy{MaxEntries: dlq.DefaultMaxEntries, MaxAge: dlq.DefaultMaxAge}, p)
	require.NoError(t, p.Validate())
	require.Equal(t, dlq.Policy{MaxEntries: 5, MaxAge: dlq.DefaultMaxAge}, p.For(5, 0), "a trigger's limit wins; 0 keeps the server's")
	require.Equal(t, p, p.For(0, 0))

	tests := map[string]struct {
		p    dlq.Policy
		want string
	}{
		"negative entries": {dlq.Policy{MaxEntries: -1}, "max entries must not be negative"},
		"negative age":     {dlq.Policy{MaxAge: -time.Second}, "max age must not be negative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { require.ErrorContains(t, tc.p.Validate(), tc.want) })
	}
	require.Equal(t, dlq.Retention{Trigger: "t", MaxEntries: 3}, dlq.Policy{MaxEntries: 3}.Retention("t", time.Now()), "no age limit: no Before")
}

func TestEntryIDs(t *testing.T) {
	require.Equal(t, "5-1", dlq.NextID("5-0"))
	require.Equal(t, "junk", dlq.NextID("junk"))
	require.True(t, dlq.ValidEntryID("1764140000000-0"))
	for _, id := range []string{"", "-", "+", "1", "1-", "-1", "a-1", "1-0-0", "r1-0@t"} {
		require.False(t, dlq.ValidEntryID(id), id)
	}
	require.Equal(t, time.UnixMilli(1764140000000), dlq.EntryTime("1764140000000-3"))
	require.True(t, dlq.EntryTime("junk").IsZero())
	require.Equal(t, "r1-0@t", dlq.ReplayedID("t", "1-0"))
}
