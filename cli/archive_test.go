package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/server"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now,
		"2026-12-01T00:00:00Z": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"2026-12-01":           time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"24h":                  now.Add(-24 * time.Hour),
		"-90m":                 now.Add(-90 * time.Minute),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"1.5d":                 now.Add(-36 * time.Hour),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "7x", "-d", "2026-13-01"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q) accepted", bad)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int32{"500": 500, "500/s": 500, "60/m": 1, "61/m": 2, "6000/m": 100} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-5/s", "fast", "5/h", "99999999999"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}

// startArchiveServer starts a server on the embedded store with the
// archive on, returning its gRPC address.
func startArchiveServer(t *testing.T) string {
	t.Helper()
	srv, err := server.New(t.Context(), server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler), Router: router.Config{Archive: router.ArchiveConfig{Retention: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv.GRPCAddr()
}

// TestArchiveCommands drives archive stats, filter test --recent, a dry
// and a real replay followed to their summary line, the listing and the
// refusals of bad flags against a real server.
func TestArchiveCommands(t *testing.T) {
	api := startArchiveServer(t)
	for _, id := range []string{"o1", "o2", "o3"} {
		mustRun(t, "", "publish", "--type", "com.example.order.created", "--source", "/shop/eu", "--subject", "eu-"+id, "--id", id,
			"--data", `{"total":150}`, "--server", api)
	}
	mustRun(t, "", "publish", "--type", "other", "--source", "/x", "--server", api)
	var st archiveStatsView
	if err := json.Unmarshal([]byte(mustRun(t, "", "archive", "stats", "-o", "json", "--server", api).out), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || st.Events != 4 {
		t.Fatalf("archive stats: %+v, want 4 events", st)
	}

	t.Chdir(t.TempDir())
	r := runCLI(t, filterTriggers, "filter", "test", "-f", "-", "--recent", "2", "--server", api)
	if r.e != nil {
		t.Fatal(r.e)
	}
	if !strings.Contains(r.out, "archive:") || !strings.Contains(r.out, "o3") || strings.Contains(r.out, " o2 ") {
		t.Fatalf("filter test --recent 2 tests the last two archived events:\n%s", r.out)
	}

	mustRun(t, filterTriggers, "trigger", "apply", "-f", "-", "--server", api)
	summary := regexp.MustCompile(`^replay r[0-9a-f]{16} succeeded in [^:]+: 4 archived events read \([^)]+\), 3 selected, (would queue|queued) 3 deliveries into trigger orders\n$`)
	out := mustRun(t, "", "archive", "replay", "--from", "1h", "--trigger", "orders", "--dry-run", "--server", api).out
	if !summary.MatchString(out) || !strings.Contains(out, "would queue") {
		t.Fatalf("dry run summary: %q", out)
	}
	prev := isTerminal
	isTerminal = func(any) bool { return true } // the progress bar's path
	t.Cleanup(func() { isTerminal = prev })
	out = mustRun(t, "", "archive", "replay", "--from", "1h", "--trigger", "orders", "--rate", "1000/s", "--server", api).out
	if !summary.MatchString(out) || strings.Contains(out, "would") {
		t.Fatalf("replay summary: %q", out)
	}
	id := regexp.MustCompile(`r[0-9a-f]{16}`).FindString(out)
	list := mustRun(t, "", "archive", "replays", "--server", api).out
	if !strings.Contains(list, id) || !strings.Contains(list, "(dry run)") || !strings.Contains(list, "100%") {
		t.Fatalf("archive replays:\n%s", list)
	}
	var views []replayView
	if err := json.Unmarshal([]byte(mustRun(t, "", "archive", "status", id, "-o", "json", "--server", api).out), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 || views[0].State != "succeeded" || views[0].Sent != 3 || views[0].Trigger != "orders" {
		t.Fatalf("archive status: %+v", views)
	}
	if out := mustRun(t, "", "archive", "cancel", id, "--server", api).out; !strings.Contains(out, "succeeded") {
		t.Fatalf("cancelling a finished replay leaves it as it was: %q", out)
	}

	for name, tc := range map[string]struct {
		args []string
		code int
		msg  string
	}{
		"no from":         {[]string{"--trigger", "orders"}, ExitInvalid, "--from is required"},
		"no destination":  {[]string{"--from", "1h"}, ExitInvalid, "--all-matching"},
		"both":            {[]string{"--from", "1h", "--trigger", "orders", "--all-matching"}, ExitInvalid, "exclude each other"},
		"bad rate":        {[]string{"--from", "1h", "--trigger", "orders", "--rate", "fast"}, ExitInvalid, "--rate"},
		"bad filter":      {[]string{"--from", "1h", "--trigger", "orders", "--filter", "type ="}, ExitInvalid, "spec.filter"},
		"unknown trigger": {[]string{"--from", "1h", "--trigger", "nope"}, ExitNotFound, "nope"},
		"from after to":   {[]string{"--from", "1h", "--to", "2h", "--all-matching"}, ExitInvalid, "spec.from"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, "", append([]string{"archive", "replay", "--server", api}, tc.args...)...)
			if ExitCode(r.e) != tc.code || r.e == nil || !strings.Contains(r.e.Error(), tc.msg) {
				t.Fatalf("exit %d (%v), want %d with %q", ExitCode(r.e), r.e, tc.code, tc.msg)
			}
		})
	}
	if r := runCLI(t, "", "archive", "status", "rffffffffffffffff", "--server", api); ExitCode(r.e) != ExitNotFound {
		t.Fatalf("status of a missing replay: exit %d (%v)", ExitCode(r.e), r.e)
	}
}
