package server_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/server"
)

// TestREADMEDeliverAfterCurl runs the README's delayed publishes: the
// first arrives after its two seconds, the second waits (DELAYED).
func TestREADMEDeliverAfterCurl(t *testing.T) {
	rec := &received{}
	fn := startFunction(t, recorder(rec))
	e := startServer(t, testenv.Embedded(t), nil)
	e.apply(t, `{"name":"reminders","filter":{"attributes":{"type":"invoice.reminder"}},"target":{"grpc":"`+fn+`"}}`)
	script := strings.ReplaceAll(testenv.READMEBlock(t, "deliverafter-curl"), "localhost:8080", strings.TrimPrefix(e.http, "http://"))
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	require.NoError(t, cmd.Run(), out.String())
	require.Equal(t, 2, strings.Count(out.String(), `{"accepted":1,"routed":1}`), out.String())
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() == 1 }, "remind-1 delivered")
	require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "not before its time")
	_, _, ok := rec.byID("remind-1")
	require.True(t, ok)
	// The function has remind-1; its acknowledgement is recorded a moment
	// later (the completer may hold it to batch it with others).
	testenv.Eventually(t, 10*time.Second, func() bool { return stats(t, e.client, "reminders").GetUndelivered() == 1 }, "remind-1 acknowledged")
	st := stats(t, e.client, "reminders")
	require.EqualValues(t, 1, st.GetDelayed(), "remind-2 waits its hour")
	require.EqualValues(t, 1, st.GetUndelivered())
}

// TestREADMEScheduleConfig checks the README's schedule sources: valid on
// Redis, refused on the embedded store.
func TestREADMEScheduleConfig(t *testing.T) {
	file := testenv.READMEBlock(t, "schedule-config")
	var cfg server.Config
	loadREADMEConfig(t, file).Apply(&cfg)
	require.Len(t, cfg.Sources, 2)
	require.NoError(t, server.Check(cfg))
	cfg = server.Config{}
	loadREADMEConfig(t, strings.ReplaceAll(file, "redis_url:", "# redis_url:")).Apply(&cfg)
	require.ErrorIs(t, server.Check(cfg), server.ErrVolatileSource)
}
