package router

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/logging"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the decoded JSON lines whose msg has the prefix.
func (s *syncBuffer) lines(t *testing.T, prefix string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(s.b.String(), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) || strings.HasSuffix(msg, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// A failure repeated for every event logs a few lines per trigger and
// reason, then a summary line counting the others; another trigger logs on
// its own.
func TestRepeatedFailuresAreRateLimited(t *testing.T) {
	d, _ := testDispatcher(t, trigger.Target{GRPC: "127.0.0.1:1"}, delivery.Result{})
	var buf syncBuffer
	d.r.log = slog.New(slog.NewJSONHandler(&buf, nil))
	const every = 500 * time.Millisecond
	d.r.logLimit = logging.NewLimiter(every, 5)
	raw, err := proto.Marshal(event("e", "x"))
	require.NoError(t, err)
	dead := delivery.Result{Verdict: delivery.DeadNow, Reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, Code: "INVALID_ARGUMENT", Start: time.Now()}
	retry := delivery.Result{Verdict: delivery.Retry, Code: "UNAVAILABLE", Start: time.Now()}
	tr := d.trig.Load()
	start := time.Now()
	for range 1000 {
		d.decide(outcome{item: claimed(raw), res: dead}, tr, time.Now())
		d.decide(outcome{item: claimed(raw), res: retry}, tr, time.Now())
	}
	// The burst, and one more line per interval the loop took.
	most := 5 + int(time.Since(start)/every) + 1
	deadLines, retryLines := len(buf.lines(t, "event dead-lettered")), len(buf.lines(t, "attempt failed; retry scheduled"))
	require.GreaterOrEqual(t, deadLines, 5)
	require.LessOrEqual(t, deadLines, most)
	require.GreaterOrEqual(t, retryLines, 5)
	require.LessOrEqual(t, retryLines, most)

	other, _ := testDispatcher(t, trigger.Target{GRPC: "127.0.0.1:1"}, delivery.Result{})
	other.name = "other"
	other.r = d.r
	other.decide(outcome{item: claimed(raw), res: dead}, tr, time.Now())
	require.Len(t, buf.lines(t, "event dead-lettered"), deadLines+1, "another trigger has its own allowance")

	testenv.Eventually(t, 5*time.Second, func() bool {
		d.r.flushSuppressed()
		return len(buf.lines(t, "similar lines suppressed")) >= 2
	}, "summary lines")
	byLike := map[string]map[string]any{}
	for _, l := range buf.lines(t, "similar lines suppressed") {
		byLike[l["like"].(string)] = l
	}
	for like, c := range map[string]struct {
		reason string
		logged int
	}{"event dead-lettered": {"DEAD_LETTER_REASON_NON_RETRYABLE", deadLines}, "attempt failed; retry scheduled": {"UNAVAILABLE", retryLines}} {
		l := byLike[like]
		require.NotNil(t, l, like)
		require.Equal(t, "t", l["trigger"])
		require.Equal(t, c.reason, l["reason"])
		require.EqualValues(t, 1000-c.logged, l["suppressed"], "every line not logged is counted")
		require.Equal(t, strconv.Itoa(1000-c.logged)+" similar lines suppressed", l["msg"])
	}
}
