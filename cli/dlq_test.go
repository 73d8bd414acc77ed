package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

// setTerminal makes isTerminal report v for the rest of the test. Tests that
// call it must not run in parallel.
func setTerminal(t *testing.T, v bool) {
	t.Helper()
	old := isTerminal
	isTerminal = func(any) bool { return v }
	t.Cleanup(func() { isTerminal = old })
}

// startDLQServer runs a real server with the embedded store and returns its
// gRPC address.
func startDLQServer(t *testing.T) string {
	t.Helper()
	srv, err := server.New(t.Context(), server.Config{
		HTTPAddr: "127.0.0.1:0",
		GRPCAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.DiscardHandler),
	})
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

// startFunction serves h with sdk/function on a local port and returns its
// address.
func startFunction(t *testing.T, h function.Handler) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- function.ServeListener(ctx, lis, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("function: %v", err)
		}
	})
	return lis.Addr().String()
}

// recorder is a function handler that acknowledges and records events.
type recorder struct {
	mu  sync.Mutex
	evs []event.Event
}

func (r *recorder) handle(_ context.Context, ev event.Event) (function.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return function.Result{}, nil
}

func (r *recorder) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// dlqJSON runs "dlq list --all-pages -o json" with extra args.
func dlqJSON(t *testing.T, api string, args ...string) []deadLetterView {
	t.Helper()
	r := runCLI(t, "", append([]string{"dlq", "list", "--all-pages", "-o", "json", "--server", api}, args...)...)
	if r.e != nil {
		t.Fatalf("dlq list: %v", r.e)
	}
	var dls []deadLetterView
	if err := json.Unmarshal([]byte(r.out), &dls); err != nil {
		t.Fatalf("dlq list -o json: %v\n%s", err, r.out)
	}
	return dls
}

// eventIDs returns the ids of the events of dead letters, sorted.
func eventIDs(t *testing.T, dls []deadLetterView) []string {
	t.Helper()
	var ids []string
	for _, dl := range dls {
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(dl.Event, &ev); err != nil {
			t.Fatalf("event of %s: %v", dl.ID, err)
		}
		ids = append(ids, ev.ID)
	}
	slices.Sort(ids)
	return ids
}

func letterIDs(dls []deadLetterView) []string {
	ids := make([]string, len(dls))
	for i, dl := range dls {
		ids[i] = dl.ID
	}
	return ids
}

// findEvent returns the dead letter of the event with the given id.
func findEvent(t *testing.T, dls []deadLetterView, id string) deadLetterView {
	t.Helper()
	for _, dl := range dls {
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(dl.Event, &ev); err == nil && ev.ID == id {
			return dl
		}
	}
	t.Fatalf("no dead letter for event %s", id)
	return deadLetterView{}
}

func mustRun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := runCLI(t, stdin, args...)
	if r.e != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.e, r.out, r.err)
	}
	return r
}

// TestDLQEndToEnd drives the dlq commands against a real server: a trigger
// whose function answers INVALID_ARGUMENT fills its dead-letter queue, which
// is then listed, shown, replayed (dry, into an acknowledging trigger, into
// itself) and purged.
func TestDLQEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	api := startDLQServer(t)
	var rejected sync.Mutex
	rejectedCalls := 0
	failing := startFunction(t, func(context.Context, event.Event) (function.Result, error) {
		rejected.Lock()
		rejectedCalls++
		rejected.Unlock()
		return function.Result{}, status.Error(codes.InvalidArgument, "order total is negative")
	})
	acks := &recorder{}
	acking := startFunction(t, acks.handle)

	triggers := `name: failing
filter: {attributes: {type: com.example.order}}
target: {grpc: "` + failing + `"}
---
name: fixed
filter: {attributes: {type: com.example.never}}
target: {grpc: "` + acking + `"}
`
	mustRun(t, triggers, "trigger", "apply", "-f", "-", "--server", api)

	client, err := sdk.New(sdk.Config{Address: api})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// Data with insignificant white space and non-ASCII, to check that
	// show prints it byte for byte.
	const jsonData = `{"total": -5,  "note":"<größe>"}`
	datas := map[string][]byte{
		"ev-1": []byte(jsonData),
		"ev-2": []byte(`{"total":-1}`),
		"ev-3": {0x00, 0xff, 0x10},
	}
	for _, id := range []string{"ev-1", "ev-2", "ev-3"} {
		ev := event.New()
		ev.SetID(id)
		ev.SetSource("/shop")
		ev.SetType("com.example.order")
		ct := "application/json"
		if id == "ev-3" {
			ct = "application/octet-stream"
		}
		if err := ev.SetData(ct, datas[id]); err != nil {
			t.Fatal(err)
		}
		if err := client.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}

	var dls []deadLetterView
	waitFor(t, 10*time.Second, "3 dead letters", func() bool {
		dls = dlqJSON(t, api)
		return len(dls) == 3
	})
	if got := eventIDs(t, dls); !slices.Equal(got, []string{"ev-1", "ev-2", "ev-3"}) {
		t.Fatalf("dead events %v", got)
	}
	for _, dl := range dls {
		if dl.Trigger != "failing" || !strings.HasPrefix(dl.ID, "failing/") || dl.Reason != "non-retryable" ||
			dl.Replays != 0 || len(dl.Attempts) != 1 || dl.Attempts[0].Code != "INVALID_ARGUMENT" ||
			dl.Attempts[0].Message != "order total is negative" || dl.Target != "grpc://"+failing {
			t.Errorf("dead letter %+v", dl)
		}
	}
	firstIDs := letterIDs(dls)

	t.Run("list table", func(t *testing.T) {
		r := mustRun(t, "", "dlq", "list", "--server", api)
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "ID TRIGGER EVENT REASON ATTEMPTS LAST CODE DEAD" {
			t.Fatalf("table:\n%s", r.out)
		}
		for i, l := range lines[1:] {
			f := strings.Fields(l)
			if f[0] != firstIDs[i] || f[1] != "failing" || f[2] != "com.example.order" || !strings.HasPrefix(f[3], "(ev-") ||
				f[4] != "non-retryable" || f[5] != "1" || f[6] != "INVALID_ARGUMENT" {
				t.Errorf("row %q", l)
			}
		}
		if r.err != "" {
			t.Errorf("stderr %q", r.err)
		}
	})

	t.Run("list paging and filters", func(t *testing.T) {
		r := mustRun(t, "", "dlq", "list", "--trigger", "failing", "--limit", "2", "-o", "json", "--server", api)
		var page []deadLetterView
		if err := json.Unmarshal([]byte(r.out), &page); err != nil || len(page) != 2 {
			t.Fatalf("page 1: %v %s", err, r.out)
		}
		token, ok := strings.CutPrefix(strings.TrimSpace(r.err), "more dead letters: add --page-token ")
		if !ok || token == "" {
			t.Fatalf("no page token hint: %q", r.err)
		}
		r = mustRun(t, "", "dlq", "list", "--trigger", "failing", "--limit", "2", "--page-token", token, "-o", "json", "--server", api)
		var page2 []deadLetterView
		if err := json.Unmarshal([]byte(r.out), &page2); err != nil || len(page2) != 1 || r.err != "" {
			t.Fatalf("page 2: %v %s %q", err, r.out, r.err)
		}
		if got := letterIDs(append(page, page2...)); !slices.Equal(got, firstIDs) {
			t.Errorf("pages %v, want %v", got, firstIDs)
		}
		if got := dlqJSON(t, api, "--limit", "1"); !slices.Equal(letterIDs(got), firstIDs) {
			t.Errorf("--all-pages --limit 1: %v", letterIDs(got))
		}
		if got := dlqJSON(t, api, "--since", "1h", "--reason", "non_retryable"); len(got) != 3 {
			t.Errorf("--since 1h: %d entries", len(got))
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		if got := dlqJSON(t, api, "--since", future); len(got) != 0 {
			t.Errorf("--since %s: %d entries", future, len(got))
		}
		r = mustRun(t, "", "dlq", "list", "--reason", "max-attempts", "--server", api)
		if r.out != "" || r.err != "no dead letters\n" {
			t.Errorf("--reason max-attempts: %q %q", r.out, r.err)
		}
		if got := dlqJSON(t, api, "--trigger", "fixed"); len(got) != 0 {
			t.Errorf("fixed has %d dead letters", len(got))
		}
	})

	ev1 := findEvent(t, dls, "ev-1")
	t.Run("show", func(t *testing.T) {
		r := mustRun(t, "", "dlq", "show", ev1.ID, "--server", api)
		for _, want := range []string{
			"ID:         " + ev1.ID + "\n",
			"Trigger:    failing\n",
			"Target:     grpc://" + failing + "\n",
			"Reason:     non-retryable: grpc://" + failing + " answered ",
			"Replays:    0\n",
			"\nEvent:\n{\"specversion\":\"1.0\",\"id\":\"ev-1\",\"source\":\"/shop\",\"type\":\"com.example.order\",\"datacontenttype\":\"application/json\",\"data\":" + jsonData + "}\n",
			"\nAttempts:\nROUND   #   START",
			"INVALID_ARGUMENT   -      -             order total is negative\n",
		} {
			if !strings.Contains(r.out, want) {
				t.Errorf("show lacks %q:\n%s", want, r.out)
			}
		}
		for _, l := range []string{"Dead:", "Accepted:"} {
			if !strings.Contains(r.out, "\n"+l) || !strings.Contains(r.out, " ago)\n") {
				t.Errorf("show lacks %s:\n%s", l, r.out)
			}
		}

		ev3 := findEvent(t, dls, "ev-3")
		r = mustRun(t, "", "dlq", "show", ev3.ID, "--server", api)
		if !strings.Contains(r.out, `"data_base64":"AP8Q"}`) {
			t.Errorf("binary data:\n%s", r.out)
		}

		r = mustRun(t, "", "dlq", "show", ev1.ID, "-o", "yaml", "--server", api)
		if !strings.Contains(r.out, "reason: non-retryable\n") || !strings.Contains(r.out, "code: INVALID_ARGUMENT\n") {
			t.Errorf("show -o yaml:\n%s", r.out)
		}

		r = runCLI(t, "", "dlq", "show", "failing/1-0", "--server", api)
		if r.e == nil || !strings.Contains(r.e.Error(), "dead letter failing/1-0: NOT_FOUND") {
			t.Errorf("show unknown: %v", r.e)
		}
	})

	t.Run("stats", func(t *testing.T) {
		r := mustRun(t, "", "dlq", "stats", "--server", api)
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "TRIGGER ENTRIES OLDEST ADDED EVICTED" {
			t.Fatalf("stats:\n%s", r.out)
		}
		if f := strings.Fields(lines[1]); f[0] != "failing" || f[1] != "3" || f[3] != "3" || f[4] != "0" {
			t.Errorf("failing row %q", lines[1])
		}
		if f := strings.Fields(lines[2]); !slices.Equal(f, []string{"fixed", "0", "-", "0", "0"}) {
			t.Errorf("fixed row %q", lines[2])
		}
		r = mustRun(t, "", "dlq", "stats", "-o", "json", "--server", api)
		var st []dlqStatsView
		if err := json.Unmarshal([]byte(r.out), &st); err != nil || len(st) != 2 || st[0].Entries != 3 || st[0].OldestTime == "" || st[1].OldestTime != "" {
			t.Errorf("stats -o json: %v %s", err, r.out)
		}
	})

	t.Run("replay dry run", func(t *testing.T) {
		r := mustRun(t, "", "dlq", "replay", "--trigger", "failing", "--all", "--dry-run", "--server", api)
		if r.out != "dry run: would replay 3 of 3 (0 missing)\n" {
			t.Errorf("dry run: %q", r.out)
		}
		r = mustRun(t, "", "dlq", "replay", "--id", firstIDs[0], "--id", "failing/1-0", "--to-trigger", "fixed", "--dry-run", "--server", api)
		if r.out != "dry run: would replay 1 of 2 (1 missing)\n" {
			t.Errorf("dry run with a missing id: %q", r.out)
		}
		if got := letterIDs(dlqJSON(t, api)); !slices.Equal(got, firstIDs) {
			t.Errorf("dry run changed the queue: %v", got)
		}
	})

	ev2 := findEvent(t, dls, "ev-2")
	t.Run("replay into another trigger", func(t *testing.T) {
		r := mustRun(t, "", "dlq", "replay", "--id", ev2.ID, "--to-trigger", "fixed", "--rate", "50/s", "--server", api)
		if r.out != "replayed 1 of 1 dead letter into fixed (0 missing)\n" {
			t.Errorf("replay: %q", r.out)
		}
		waitFor(t, 10*time.Second, "the replayed event delivered", func() bool { return len(acks.events()) > 0 })
		got := acks.events()
		if len(got) != 1 || got[0].ID() != "ev-2" || string(got[0].Data()) != string(datas["ev-2"]) {
			t.Fatalf("delivered %v", got)
		}
		left := dlqJSON(t, api, "--trigger", "failing")
		if ids := eventIDs(t, left); !slices.Equal(ids, []string{"ev-1", "ev-3"}) {
			t.Errorf("left in the DLQ: %v", ids)
		}
		// Replaying it again finds nothing.
		r = mustRun(t, "", "dlq", "replay", "--trigger", "failing", "--id", strings.TrimPrefix(ev2.ID, "failing/"), "--to-trigger", "fixed", "--server", api)
		if r.out != "replayed 0 of 1 dead letter into fixed (1 missing)\n" {
			t.Errorf("second replay: %q", r.out)
		}
	})

	t.Run("replay all into the failing trigger", func(t *testing.T) {
		rejected.Lock()
		callsBefore := rejectedCalls
		rejected.Unlock()
		r := mustRun(t, "", "dlq", "replay", "--trigger", "failing", "--all", "--rate", "100", "--server", api)
		if r.out != "replayed 2 of 2 dead letters into failing (0 missing)\n" {
			t.Errorf("replay: %q", r.out)
		}
		var back []deadLetterView
		waitFor(t, 10*time.Second, "the replayed events dead again", func() bool {
			back = dlqJSON(t, api)
			return len(back) == 2 && back[0].Replays == 1 && back[1].Replays == 1
		})
		if ids := eventIDs(t, back); !slices.Equal(ids, []string{"ev-1", "ev-3"}) {
			t.Fatalf("back in the DLQ: %v", ids)
		}
		rejected.Lock()
		if rejectedCalls != callsBefore+2 {
			t.Errorf("the failing function got %d calls, want 2", rejectedCalls-callsBefore)
		}
		rejected.Unlock()
		again := findEvent(t, back, "ev-1")
		if slices.Contains(firstIDs, again.ID) {
			t.Errorf("the dead letter kept its id %s", again.ID)
		}
		r = mustRun(t, "", "dlq", "show", again.ID, "-o", "json", "--server", api)
		var dl deadLetterView
		if err := json.Unmarshal([]byte(r.out), &dl); err != nil {
			t.Fatalf("%v\n%s", err, r.out)
		}
		if dl.Replays != 1 || len(dl.Attempts) != 2 {
			t.Fatalf("history: %+v", dl)
		}
		for i, a := range dl.Attempts {
			if a.Round != int32(i) || a.Number != 1 || a.Code != "INVALID_ARGUMENT" || a.StartTime == "" || a.Duration == "" {
				t.Errorf("attempt %d: %+v", i, a)
			}
		}
		if dl.AcceptTime == "" || dl.AcceptTime != ev1.AcceptTime || dl.DeadTime <= ev1.DeadTime {
			t.Errorf("times: accepted %s (first life %s), dead %s (first life %s)", dl.AcceptTime, ev1.AcceptTime, dl.DeadTime, ev1.DeadTime)
		}
		var evt struct {
			Data json.RawMessage `json:"data"`
		}
		var data bytes.Buffer
		if err := json.Unmarshal(dl.Event, &evt); err != nil || json.Compact(&data, evt.Data) != nil || data.String() != `{"total":-5,"note":"<größe>"}` {
			t.Errorf("event data %s: %v", evt.Data, err)
		}
		r = mustRun(t, "", "dlq", "show", again.ID, "--server", api)
		if !strings.Contains(r.out, "Replays:    1\n") || !strings.Contains(r.out, "\n0       1   ") || !strings.Contains(r.out, "\n1       1   ") {
			t.Errorf("show after replay:\n%s", r.out)
		}
		// The old ids are gone.
		r = mustRun(t, "", "dlq", "replay", "--trigger", "failing", "--id", firstIDs[0], "--dry-run", "--server", api)
		if r.out != "dry run: would replay 0 of 1 (1 missing)\n" {
			t.Errorf("old id: %q", r.out)
		}
	})

	t.Run("purge", func(t *testing.T) {
		r := mustRun(t, "", "dlq", "purge", "--trigger", "failing", "--older-than", "1h", "--yes", "--server", api)
		if r.out != "purged 0 dead letters\n" {
			t.Errorf("purge --older-than 1h: %q", r.out)
		}
		r = runCLI(t, "", "dlq", "purge", "--trigger", "failing", "--all", "--server", api)
		if r.e == nil || !strings.Contains(r.e.Error(), "pass --yes") || r.out != "" {
			t.Errorf("purge without --yes: %v %q", r.e, r.out)
		}
		if n := len(dlqJSON(t, api)); n != 2 {
			t.Fatalf("%d dead letters after refused purges, want 2", n)
		}
		r = mustRun(t, "", "dlq", "purge", "--trigger", "failing", "--all", "--yes", "--server", api)
		if r.out != "purged 2 dead letters\n" {
			t.Errorf("purge --all: %q", r.out)
		}
		r = mustRun(t, "", "dlq", "list", "--server", api)
		if r.out != "" || r.err != "no dead letters\n" {
			t.Errorf("list after purge: %q %q", r.out, r.err)
		}
		var st []dlqStatsView
		r = mustRun(t, "", "dlq", "stats", "-o", "json", "--server", api)
		if err := json.Unmarshal([]byte(r.out), &st); err != nil || st[0].Trigger != "failing" || st[0].Entries != 0 || st[0].Added != 5 {
			t.Errorf("stats after purge: %v %s", err, r.out)
		}
	})
}

// TestDLQPurgeConfirmation answers the purge question on a (simulated)
// terminal.
func TestDLQPurgeConfirmation(t *testing.T) {
	f := &fakeDLQ{stats: []*switchyardv1.DeadLetterQueueStats{{Trigger: "orders", Entries: 12}}}
	api := startFakeDLQ(t, f)
	setTerminal(t, true)

	for _, tc := range []struct {
		name, stdin string
		args        []string
		question    string
		purged      bool
	}{
		{"all counted, no", "n\n", []string{"--all"}, "Delete 12 dead letters of orders? [y/N] ", false},
		{"all counted, empty answer", "\n", []string{"--all"}, "Delete 12 dead letters of orders? [y/N] ", false},
		{"all counted, end of input", "", []string{"--all"}, "Delete 12 dead letters of orders? [y/N] \n", false},
		{"all counted, yes", "YES\n", []string{"--all"}, "Delete 12 dead letters of orders? [y/N] ", true},
		{"ids", "y\n", []string{"--id", "orders/1-0,orders/2-0"}, "Delete 2 dead letters of orders? [y/N] ", true},
		{"one id, trigger from the id", "y", []string{"--id", "orders/1-0"}, "Delete 1 dead letter of orders? [y/N] ", true},
		{"older than", "y\n", []string{"--older-than", "7d"}, "Delete the dead letters of orders dead for longer than 168h0m0s? [y/N] ", true},
		{"all of an unknown queue", "y\n", []string{"--trigger", "other", "--all"}, "Delete all dead letters of other? [y/N] ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.purges())
			args := append([]string{"dlq", "purge", "--server", api}, tc.args...)
			if !slices.Contains(tc.args, "--trigger") && !slices.Contains(tc.args, "--id") {
				args = append(args, "--trigger", "orders")
			}
			r := runCLI(t, tc.stdin, args...)
			if r.err != tc.question {
				t.Errorf("question %q, want %q", r.err, tc.question)
			}
			purged := len(f.purges()) > before
			if purged != tc.purged {
				t.Fatalf("purged = %v (%v)", purged, r.e)
			}
			if tc.purged && (r.e != nil || r.out != "purged 3 dead letters\n") {
				t.Errorf("purge: %v %q", r.e, r.out)
			}
			if !tc.purged && (!errors.Is(r.e, errNotConfirmed) || r.out != "") {
				t.Errorf("declined purge: %v %q", r.e, r.out)
			}
		})
	}
	got := f.purges()
	if len(got) != 5 || !slices.Equal(got[1].GetIds(), []string{"orders/1-0", "orders/2-0"}) || got[1].GetTrigger() != "orders" ||
		got[2].GetTrigger() != "orders" || got[3].GetOlderThan().AsDuration() != 7*24*time.Hour || !got[4].GetAll() {
		t.Errorf("purge requests %v", got)
	}

	// --yes does not ask.
	r := runCLI(t, "", "dlq", "purge", "--server", api, "--trigger", "orders", "--all", "-y")
	if r.e != nil || r.err != "" || r.out != "purged 3 dead letters\n" {
		t.Errorf("--yes: %v %q %q", r.e, r.err, r.out)
	}
}

// fakeDLQ is a scripted DeadLetterService.
type fakeDLQ struct {
	switchyardv1.UnimplementedDeadLetterServiceServer
	mu    sync.Mutex
	stats []*switchyardv1.DeadLetterQueueStats
	purge []*switchyardv1.PurgeDeadLettersRequest
	// progress is streamed by ReplayDeadLetters, then replayErr returned;
	// with hang set, the stream then waits for the client to go away.
	progress  []*switchyardv1.ReplayDeadLettersResponse
	replayErr error
	hang      bool
	replays   []*switchyardv1.ReplayDeadLettersRequest
	lists     []*switchyardv1.ListDeadLettersRequest
}

func (f *fakeDLQ) ListDeadLetters(_ context.Context, req *switchyardv1.ListDeadLettersRequest) (*switchyardv1.ListDeadLettersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, req)
	return &switchyardv1.ListDeadLettersResponse{}, nil
}

func (f *fakeDLQ) GetDeadLetterStats(context.Context, *switchyardv1.GetDeadLetterStatsRequest) (*switchyardv1.GetDeadLetterStatsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &switchyardv1.GetDeadLetterStatsResponse{Queues: f.stats}, nil
}

func (f *fakeDLQ) PurgeDeadLetters(_ context.Context, req *switchyardv1.PurgeDeadLettersRequest) (*switchyardv1.PurgeDeadLettersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.purge = append(f.purge, req)
	return &switchyardv1.PurgeDeadLettersResponse{Purged: 3}, nil
}

func (f *fakeDLQ) ReplayDeadLetters(req *switchyardv1.ReplayDeadLettersRequest, stream grpc.ServerStreamingServer[switchyardv1.ReplayDeadLettersResponse]) error {
	f.mu.Lock()
	f.replays = append(f.replays, req)
	progress, rerr, hang := f.progress, f.replayErr, f.hang
	f.mu.Unlock()
	for _, p := range progress {
		if err := stream.Send(p); err != nil {
			return err
		}
	}
	if hang {
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	return rerr
}

func (f *fakeDLQ) purges() []*switchyardv1.PurgeDeadLettersRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.purge)
}

func startFakeDLQ(t *testing.T, f *fakeDLQ) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	switchyardv1.RegisterDeadLetterServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// TestDLQReplayProgress checks the progress bar on a (simulated) terminal,
// its absence otherwise, and the request sent.
func TestDLQReplayProgress(t *testing.T) {
	f := &fakeDLQ{progress: []*switchyardv1.ReplayDeadLettersResponse{
		{Total: 250, Replayed: 100},
		{Total: 250, Replayed: 199, Missing: 1},
		{Total: 250, Replayed: 248, Missing: 2, Done: true},
	}}
	api := startFakeDLQ(t, f)
	args := []string{"dlq", "replay", "--server", api, "--trigger", "orders", "--all", "--to-trigger", "orders-v2", "--rate", "12.5/s"}

	r := runCLI(t, "", args...)
	if r.e != nil || r.out != "replayed 248 of 250 dead letters into orders-v2 (2 missing)\n" || r.err != "" {
		t.Fatalf("no terminal: %v %q %q", r.e, r.out, r.err)
	}
	f.mu.Lock()
	req := f.replays[0]
	f.mu.Unlock()
	if req.GetTrigger() != "orders" || !req.GetAll() || req.GetToTrigger() != "orders-v2" || req.GetRate() != 12.5 || req.GetDryRun() || len(req.GetIds()) != 0 {
		t.Errorf("request %v", req)
	}

	setTerminal(t, true)
	r = runCLI(t, "", args...)
	if r.e != nil || r.out != "replayed 248 of 250 dead letters into orders-v2 (2 missing)\n" {
		t.Fatalf("terminal: %v %q", r.e, r.out)
	}
	if !strings.Contains(r.err, "replaying into orders-v2") || !strings.Contains(r.err, "(100/250") {
		t.Errorf("no progress bar on stderr: %q", r.err)
	}

	// A failing stream reports how far it got.
	f.mu.Lock()
	f.progress = f.progress[:1]
	f.replayErr = status.Error(codes.Unavailable, "store down")
	f.mu.Unlock()
	r = runCLI(t, "", args...)
	if r.e == nil || r.e.Error() != "replay orders: UNAVAILABLE: store down\ninterrupted after 100 of 250 dead letters (0 missing); run the replay again to finish it" || r.out != "" {
		t.Errorf("failing stream: %v %q", r.e, r.out)
	}
	if !strings.HasSuffix(r.err, "\n") {
		t.Errorf("the bar's line is not ended: %q", r.err)
	}

	// A stream without its final report is an error.
	f.mu.Lock()
	f.replayErr = nil
	f.mu.Unlock()
	r = runCLI(t, "", args...)
	if r.e == nil || !strings.Contains(r.e.Error(), "without a final report") {
		t.Errorf("truncated stream: %v", r.e)
	}

	// A silent server is given up after --timeout.
	f.mu.Lock()
	f.hang = true
	f.mu.Unlock()
	start := time.Now()
	r = runCLI(t, "", "dlq", "replay", "--server", api, "--trigger", "orders", "--all", "--timeout", "300ms")
	if r.e == nil || !strings.Contains(r.e.Error(), "no progress report from the server for 300ms") || !strings.Contains(r.e.Error(), "interrupted after 100 of 250") {
		t.Errorf("stalled stream: %v", r.e)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// TestDLQFlagValidation checks that bad flag combinations are refused
// before any call: the server address is closed, so a call would fail with
// UNAVAILABLE instead.
func TestDLQFlagValidation(t *testing.T) {
	addr := closedAddr(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "--reason", "bogus"}, `unknown --reason "bogus": want max-attempts, max-age, non-retryable, rejected, reply-invalid, hop-limit or target-forbidden`},
		{[]string{"list", "--limit", "0"}, "--limit must be between 1 and 1000, got 0"},
		{[]string{"list", "--limit", "1001"}, "--limit must be between 1 and 1000, got 1001"},
		{[]string{"list", "--page-token", "x", "--all-pages"}, "--page-token and --all-pages cannot be used together"},
		{[]string{"list", "--since", "yesterday"}, `invalid --since "yesterday"`},
		{[]string{"list", "--since", "-1h"}, `invalid --since "-1h"`},
		{[]string{"list", "-o", "xml"}, `unknown output format "xml"`},
		{[]string{"list", "extra"}, `unknown command "extra"`},
		{[]string{"show"}, "accepts 1 arg(s), received 0"},
		{[]string{"show", "1-0"}, `dead letter id "1-0" has no trigger: pass --trigger or give <trigger>/<entry>`},
		{[]string{"show", "--trigger", "a", "b/1-0"}, `dead letter b/1-0 belongs to trigger "b", not "a"`},
		{[]string{"show", "a/"}, `invalid dead letter id "a/": want <trigger>/<entry>`},
		{[]string{"show", "orders/"}, `invalid dead letter id "orders/"`},
		{[]string{"replay", "--trigger", "t"}, "nothing to replay: give --id ID (repeatable) or --all"},
		{[]string{"replay", "--trigger", "t", "--all", "--id", "t/1-0"}, "--id and --all cannot be used together"},
		{[]string{"replay", "--all"}, "--trigger is required"},
		{[]string{"replay", "--id", "1-0"}, `dead letter id "1-0" has no trigger: pass --trigger or give <trigger>/<entry>`},
		{[]string{"replay", "--trigger", "a", "--id", "b/1-0"}, `dead letter b/1-0 belongs to trigger "b", not "a"`},
		{[]string{"replay", "--id", "a/1-0", "--id", "b/1-0"}, "dead letters a/1-0 and b/1-0 belong to different triggers"},
		{[]string{"replay", "--trigger", "t", "--id", "/1-0"}, `invalid dead letter id "/1-0"`},
		{[]string{"replay", "--trigger", "t", "--all", "--rate", "fast"}, `invalid argument "fast" for "--rate" flag: want entries per second such as 50 or 50/s`},
		{[]string{"replay", "--trigger", "t", "--all", "--rate", "-1/s"}, `invalid argument "-1/s" for "--rate" flag`},
		{[]string{"replay", "--trigger", "t", "--all", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"purge", "--trigger", "t"}, "give exactly one of --id ID (repeatable), --older-than DURATION and --all"},
		{[]string{"purge", "--trigger", "t", "--all", "--older-than", "1h"}, "give exactly one of"},
		{[]string{"purge", "--trigger", "t", "--all", "--id", "t/1-0"}, "give exactly one of"},
		{[]string{"purge", "--trigger", "t", "--older-than", "1x"}, `--older-than: invalid duration "1x"`},
		{[]string{"purge", "--trigger", "t", "--older-than", "-2h"}, `--older-than: invalid duration "-2h": must not be negative`},
		{[]string{"purge", "--all", "--yes"}, "--trigger is required"},
		{[]string{"purge", "--trigger", "a", "--id", "b/1-0", "--yes"}, `belongs to trigger "b", not "a"`},
		{[]string{"purge", "--trigger", "t", "--all"}, "refusing to purge without confirmation: standard input is not a terminal; pass --yes to confirm"},
		{[]string{"stats", "x"}, `unknown command "x"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(t, "", append(append([]string{"dlq"}, tc.args...), "--server", addr)...)
			if r.e == nil || !strings.Contains(r.e.Error(), tc.want) {
				t.Errorf("err = %v, want %q", r.e, tc.want)
			}
			if code := ExitCode(r.e); code != ExitInvalid {
				t.Errorf("exit code %d, want %d", code, ExitInvalid)
			}
			if r.out != "" {
				t.Errorf("stdout %q", r.out)
			}
		})
	}
	// With a valid command line, the closed address is what fails.
	r := runCLI(t, "", "dlq", "stats", "--server", addr)
	if r.e == nil || !strings.Contains(r.e.Error(), "UNAVAILABLE") {
		t.Errorf("stats against a closed address: %v", r.e)
	}
}

func TestDLQParsers(t *testing.T) {
	for in, want := range map[string]switchyardv1.DeadLetterReason{
		"max-attempts":                switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS,
		"MAX_AGE":                     switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_AGE,
		" Non-Retryable ":             switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE,
		"DEAD_LETTER_REASON_REJECTED": switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REJECTED,
		"reply-invalid":               switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID,
		"HOP_LIMIT":                   switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT,
	} {
		if got, err := parseReason(in); err != nil || got != want {
			t.Errorf("parseReason(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "unspecified", "max"} {
		if _, err := parseReason(in); err == nil {
			t.Errorf("parseReason(%q) accepted", in)
		}
	}

	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "1h30m": 90 * time.Minute, "7d": 7 * 24 * time.Hour, "0": 0, "0d": 0} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "-1d", "-1s", "7days", "1w"} {
		if _, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) accepted", in)
		}
	}

	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"1h":                          now.Add(-time.Hour),
		"2d":                          now.Add(-48 * time.Hour),
		"2026-01-01T00:00:00Z":        time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		"2026-01-01T01:00:00.5+01:00": time.Date(2026, 1, 1, 0, 0, 0, 5e8, time.UTC),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v", in, got, err)
		}
	}

	for in, want := range map[string]replayRate{"50": 50, "50/s": 50, " 0.5/s": 0.5, "0": 0} {
		var r replayRate
		if err := r.Set(in); err != nil || r != want {
			t.Errorf("rate %q = %v, %v", in, r, err)
		}
	}
	for _, in := range []string{"", "/s", "-1", "NaN", "+Inf", "50/m", "fast"} {
		var r replayRate
		if err := r.Set(in); err == nil {
			t.Errorf("rate %q accepted", in)
		}
	}
	r := replayRate(12.5)
	if r.String() != "12.5/s" {
		t.Errorf("String = %q", r.String())
	}

	for _, tc := range []struct {
		trigger string
		ids     []string
		want    string
		err     string
	}{
		{"t", nil, "t", ""},
		{"", []string{"a/1-0", "a/2-0"}, "a", ""},
		{"a", []string{"1-0", "a/2-0"}, "a", ""},
		{"", []string{"1-0"}, "", "has no trigger"},
		{"", []string{"a/1-0", "2-0"}, "a", ""},
		{"", []string{""}, "", "invalid dead letter id"},
		{"a", []string{"a/"}, "", "invalid dead letter id"},
	} {
		got, err := resolveIDsTrigger(tc.trigger, tc.ids)
		if got != tc.want && tc.err == "" || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("resolveIDsTrigger(%q, %q) = %q, %v", tc.trigger, tc.ids, got, err)
		}
	}
}

// TestDLQPrintDeadLetter checks the readable view against a fixed dead
// letter, including attempts with HTTP status and retry-after.
func TestDLQPrintDeadLetter(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-d)) }
	dl := &switchyardv1.DeadLetter{
		Id: "web/1767366240000-0", Trigger: "web", Target: "https://example.com/hook",
		Event: &pb.CloudEvent{Id: "e1", Source: "/s", SpecVersion: "1.0", Type: "t",
			Attributes: map[string]*pb.CloudEventAttributeValue{"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "text/plain"}}},
			Data:       &pb.CloudEvent_TextData{TextData: "  hello\tworld "}},
		Reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS, ReasonDetail: "2 attempts failed; last: HTTP 503",
		DeadTime: ts(5 * time.Minute), AcceptTime: ts(time.Hour), TraceId: "4bf92f3577b34da6a3ce929d0e0e4736",
		Attempts: []*switchyardv1.Attempt{
			{Number: 1, StartTime: ts(10 * time.Minute), Duration: durationpb.New(1234567 * time.Nanosecond), Code: "HTTP 503", HttpStatus: 503, Message: "busy", RetryAfter: durationpb.New(2 * time.Second)},
			{Number: 2, StartTime: ts(5 * time.Minute), Duration: durationpb.New(2500 * time.Millisecond), Code: "HTTP 503", HttpStatus: 503},
		},
	}
	var b strings.Builder
	if err := printDeadLetter(&b, formatTable, dl, now); err != nil {
		t.Fatal(err)
	}
	want := `ID:         web/1767366240000-0
Trigger:    web
Target:     https://example.com/hook
Reason:     max-attempts: 2 attempts failed; last: HTTP 503
Dead:       2026-01-02T14:59:05.000Z (5m ago)
Accepted:   2026-01-02T14:04:05.000Z (1h ago)
Trace ID:   4bf92f3577b34da6a3ce929d0e0e4736
Replays:    0

Event:
{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"text/plain","data":"  hello\tworld "}

Attempts:
ROUND   #   START                      DURATION   CODE       HTTP   RETRY_AFTER   MESSAGE
0       1   2026-01-02T14:54:05.000Z   1.235ms    HTTP 503   503    2s            busy
0       2   2026-01-02T14:59:05.000Z   2.5s       HTTP 503   503    -             -
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := printDeadLetters(&b, formatTable, []*switchyardv1.DeadLetter{dl}, now); err != nil {
		t.Fatal(err)
	}
	wantList := `ID                    TRIGGER   EVENT    REASON         ATTEMPTS   LAST CODE   DEAD
web/1767366240000-0   web       t (e1)   max-attempts   2          HTTP 503    5m
`
	if b.String() != wantList {
		t.Errorf("list got:\n%s\nwant:\n%s", b.String(), wantList)
	}

	b.Reset()
	if err := printDeadLetter(&b, formatJSON, dl, now); err != nil {
		t.Fatal(err)
	}
	var v deadLetterView
	if err := json.Unmarshal([]byte(b.String()), &v); err != nil {
		t.Fatal(err)
	}
	if v.Reason != "max-attempts" || v.DeadTime != "2026-01-02T14:59:05.000Z" || v.Attempts[0].RetryAfter != "2s" || v.Attempts[0].HTTPStatus != 503 ||
		v.Attempts[0].Duration != "1.234567ms" || v.TraceID != dl.TraceId || !strings.Contains(string(v.Event), `"data": "  hello\tworld "`) {
		t.Errorf("json view %+v", v)
	}
}

func TestDLQEventJSON(t *testing.T) {
	ct := func(s string) map[string]*pb.CloudEventAttributeValue {
		return map[string]*pb.CloudEventAttributeValue{"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}}
	}
	base := `{"specversion":"1.0","id":"1","source":"/s","type":"t"`
	for _, tc := range []struct {
		name  string
		attrs map[string]*pb.CloudEventAttributeValue
		data  []byte
		want  string
	}{
		{"json bytes verbatim", ct("application/json"), []byte(`{"a": [1, 2]}`), `,"datacontenttype":"application/json","data":{"a": [1, 2]}}`},
		{"no content type", nil, []byte(`[1,2]`), `,"data":[1,2]}`},
		{"+json", ct("application/vnd.x+json; charset=utf-8"), []byte(`"s"`), `,"datacontenttype":"application/vnd.x+json; charset=utf-8","data":"s"}`},
		{"json type, not json", ct("application/json"), []byte(`a b`), `,"datacontenttype":"application/json","data_base64":"YSBi"}`},
		{"text", ct("text/plain"), []byte("x\ty\n"), `,"datacontenttype":"text/plain","data":"x\ty\n"}`},
		{"octet-stream", ct("application/octet-stream"), []byte("abc"), `,"datacontenttype":"application/octet-stream","data_base64":"YWJj"}`},
		{"invalid utf-8", ct("text/plain"), []byte{0xff}, `,"datacontenttype":"text/plain","data_base64":"/w=="}`},
	} {
		ev := &pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: "t", Attributes: tc.attrs,
			Data: &pb.CloudEvent_BinaryData{BinaryData: tc.data}}
		if got := string(eventJSON(ev)); got != base+tc.want {
			t.Errorf("%s: got %s", tc.name, got)
		}
		if _, ok := ev.GetData().(*pb.CloudEvent_BinaryData); !ok {
			t.Errorf("%s: the event was changed", tc.name)
		}
	}
	for in, want := range map[string]string{"InvalidArgument": "INVALID_ARGUMENT", "Unavailable": "UNAVAILABLE", "UNAVAILABLE": "UNAVAILABLE",
		"HTTP 503": "HTTP 503", "LEASE_EXPIRED": "LEASE_EXPIRED", "3": "3"} {
		if got := displayCode(in); got != want {
			t.Errorf("displayCode(%q) = %q", in, got)
		}
	}
}
