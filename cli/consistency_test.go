package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// TestExitCodes runs commands against a real server and checks that every
// command exits as the root help says: 2 for invalid input (command line,
// files, events, names), 3 for pushback, 4 for not found, 1 otherwise.
func TestExitCodes(t *testing.T) {
	api := startDLQServer(t)
	fn := startFunction(t, func(context.Context, event.Event) (function.Result, error) {
		return function.Result{}, status.Error(codes.Unavailable, "not now")
	})
	mustRun(t, "name: full\ntarget: {grpc: '"+fn+"'}\ndelivery: {max_queue: 1, initial_backoff: 1h, max_backoff: 1h}\n",
		"trigger", "apply", "-f", "-", "--server", api)
	mustRun(t, "", "publish", "--type", "t", "--source", "/s", "--id", "1", "--server", api)
	dataFile := writeFile(t, "data", "x")

	cases := []struct {
		args []string
		code int
		msg  string // in the error
	}{
		{[]string{"bogus"}, ExitInvalid, `unknown command "bogus" for "switchyard"`},
		{[]string{"trigger", "aply"}, ExitInvalid, `unknown command "aply" for "switchyard trigger" (did you mean apply?)`},
		{[]string{"trigger", "get"}, ExitInvalid, "accepts 1 arg(s), received 0"},
		{[]string{"trigger", "list", "-o", "xml"}, ExitInvalid, "want table, json or yaml"},
		{[]string{"trigger", "list", "--bogus"}, ExitInvalid, "unknown flag: --bogus"},
		{[]string{"trigger", "apply", "--server", api}, ExitInvalid, "no trigger file"},
		{[]string{"publish", "--type", "t", "--server", api}, ExitInvalid, `required flag(s) "source" not set`},
		{[]string{"publish", "--type", "t", "--source", "/s", "--data", "x", "--data-file", dataFile, "--server", api}, ExitInvalid, "none of the others can be"},
		{[]string{"publish", "--type", "t", "--source", "/s", "--time", "yesterday", "--server", api}, ExitInvalid, "--time"},
		{[]string{"publish", "--type", "t", "--source", "/s", "--ext", "Bad=1", "--server", api}, ExitInvalid, "--ext"},
		{[]string{"publish", "--type", "t", "--source", "", "--server", api}, ExitInvalid, "invalid event"},
		{[]string{"publish", "--type", "t", "--source", "/s", "--id", "2", "--server", api}, ExitPushback, `trigger "full" has 1 undelivered event (max_queue 1)`},
		{[]string{"trigger", "get", "Bad_Name", "--server", api}, ExitInvalid, "INVALID_ARGUMENT"},
		{[]string{"trigger", "get", "nope", "--server", api}, ExitNotFound, "NOT_FOUND"},
		{[]string{"trigger", "delete", "nope", "--server", api}, ExitNotFound, "NOT_FOUND"},
		{[]string{"dlq", "show", "nope/1-0", "--server", api}, ExitNotFound, "NOT_FOUND"},
		{[]string{"dlq", "show", "a}:x/1-0", "--server", api}, ExitInvalid, "id: dead letter id"},
		{[]string{"dlq", "replay", "--trigger", "full", "--id", "1-0", "--all", "--server", api}, ExitInvalid, "cannot be used together"},
		{[]string{"dlq", "purge", "--trigger", "full", "--all", "--server", api}, ExitInvalid, "pass --yes"},
		{[]string{"sink", "--fail-first", "-1"}, ExitInvalid, "--fail-first"},
		{[]string{"serve", "--check-config", "--key-prefix", "a}:x"}, ExitInvalid, `key prefix "a}:x"`},
		{[]string{"serve", "--check-config", "--log-format", "xml"}, ExitInvalid, "--log-format"},
		{[]string{"serve", "--check-config", "--config", dataFile + ".missing"}, ExitFailure, "no such file"},
		{[]string{"trigger", "list", "--server", closedAddr(t), "--timeout", "2s"}, ExitFailure, ""},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(t, "", tc.args...)
			if got := ExitCode(r.e); got != tc.code {
				t.Errorf("exit code %d, want %d (err %v)", got, tc.code, r.e)
			}
			if r.e == nil || !strings.Contains(r.e.Error(), tc.msg) {
				t.Errorf("err = %v, want %q in it", r.e, tc.msg)
			}
		})
	}

	// A refusal whose message is its only violation is printed once.
	r := runCLI(t, "", "trigger", "get", "Bad_Name", "--server", api)
	if want := `trigger/Bad_Name: INVALID_ARGUMENT: name: "Bad_Name" is not a valid name`; r.e == nil ||
		!strings.HasPrefix(r.e.Error(), want) || strings.Contains(r.e.Error(), "\n") {
		t.Errorf("err = %v, want one line starting %q", r.e, want)
	}

	// The help documents them.
	r = mustRun(t, "", "--help")
	for _, want := range []string{"Exit status (every command):", "2  invalid input", "3  pushed back", "4  not found"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("root help lacks %q:\n%s", want, r.out)
		}
	}
	// A command that groups others prints its help, successfully.
	if r := mustRun(t, "", "dlq"); !strings.Contains(r.out, "Available Commands") {
		t.Errorf("dlq alone: %q", r.out)
	}

	// trigger stats names the figure the pushback named, the same way.
	r = mustRun(t, "", "trigger", "stats", "full", "-o", "json", "--server", api)
	var st statsView
	if err := json.Unmarshal([]byte(r.out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Undelivered != 1 || st.MaxQueue != 1 || st.Queued+st.InFlight+st.RetriesScheduled != 1 {
		t.Errorf("stats: %+v", st)
	}
	r = mustRun(t, "", "trigger", "stats", "full", "--server", api)
	if !strings.Contains(r.out, "UNDELIVERED") || !strings.Contains(r.out, "full   1/1 ") {
		t.Errorf("stats table:\n%s", r.out)
	}
}

// TestDLQShowTakesReplayIDs checks that dlq show takes the ids dlq replay
// takes (a bare entry with --trigger), and that the json view shows JSON
// data as JSON even when a newline ends it, while the table view keeps its
// bytes.
func TestDLQShowTakesReplayIDs(t *testing.T) {
	api := startDLQServer(t)
	fn := startFunction(t, func(context.Context, event.Event) (function.Result, error) {
		return function.Result{}, status.Error(codes.InvalidArgument, "no")
	})
	mustRun(t, "name: rejects\ntarget: {grpc: '"+fn+"'}\n", "trigger", "apply", "-f", "-", "--server", api)
	data := "{\"a\": [1, 2]}\n"
	mustRun(t, "", "publish", "--type", "t", "--source", "/s", "--id", "e1", "--data", data, "--server", api)
	var dls []deadLetterView
	waitFor(t, 10*time.Second, "the dead letter", func() bool {
		dls = dlqJSON(t, api)
		return len(dls) == 1
	})
	id := dls[0].ID
	trig, entry, _ := strings.Cut(id, "/")

	full := mustRun(t, "", "dlq", "show", id, "-o", "json", "--server", api)
	bare := mustRun(t, "", "dlq", "show", "--trigger", trig, entry, "-o", "json", "--server", api)
	if full.out != bare.out {
		t.Errorf("show %s and show --trigger %s %s differ:\n%s\n%s", id, trig, entry, full.out, bare.out)
	}
	var v deadLetterView
	if err := json.Unmarshal([]byte(full.out), &v); err != nil {
		t.Fatal(err)
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(v.Event, &ev); err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(ev["data"], &got); err != nil || !reflect.DeepEqual(got, map[string]any{"a": []any{1.0, 2.0}}) {
		t.Errorf("event data in -o json: %s (%v), want the JSON object", ev["data"], err)
	}
	if _, b64 := ev["data_base64"]; b64 {
		t.Errorf("JSON data shown as data_base64: %s", v.Event)
	}
	table := mustRun(t, "", "dlq", "show", id, "--server", api)
	if !strings.Contains(table.out, `"data_base64":"`+base64.StdEncoding.EncodeToString([]byte(data))+`"`) {
		t.Errorf("table view lost the data's bytes:\n%s", table.out)
	}

	r := runCLI(t, "", "dlq", "show", entry, "--server", api)
	if ExitCode(r.e) != ExitInvalid || !strings.Contains(r.e.Error(), "pass --trigger") {
		t.Errorf("bare entry without --trigger: %v", r.e)
	}
}

// TestListsPrintEmptyArrays checks that every -o json list prints [] when
// empty, and that source list prints times in RFC 3339.
func TestListsPrintEmptyArrays(t *testing.T) {
	api := startDLQServer(t)
	for _, args := range [][]string{
		{"trigger", "list"}, {"trigger", "stats"}, {"dlq", "list"}, {"dlq", "stats"}, {"source", "list"},
	} {
		for _, format := range []string{"json", "yaml"} {
			r := mustRun(t, "", append(args, "-o", format, "--server", api)...)
			if r.out != "[]\n" {
				t.Errorf("%v -o %s: %q, want []", args, format, r.out)
			}
		}
	}

	var b strings.Builder
	at := time.Date(2026, 12, 6, 10, 11, 12, 345e6, time.UTC)
	err := printSources(&b, formatJSON, []*switchyardv1.SourceStatus{{Name: "pg", Kind: "postgres", State: "running", Events: 3,
		LastEventTime: timestamppb.New(at), LastError: "boom", LastErrorTime: timestamppb.New(at)}}, at)
	if err != nil {
		t.Fatal(err)
	}
	want := `[
  {
    "name": "pg",
    "kind": "postgres",
    "state": "running",
    "events": 3,
    "rejected": 0,
    "errors": 0,
    "last_event_time": "2026-12-06T10:11:12.345Z",
    "last_error": "boom",
    "last_error_time": "2026-12-06T10:11:12.345Z",
    "reconnects": 0
  }
]
`
	if b.String() != want {
		t.Errorf("source list -o json:\n%s\nwant:\n%s", b.String(), want)
	}

	// Every field of the message has its place in the view.
	tags := map[string]bool{}
	vt := reflect.TypeFor[sourceView]()
	for i := range vt.NumField() {
		name, _, _ := strings.Cut(vt.Field(i).Tag.Get("json"), ",")
		tags[name] = true
	}
	fields := (&switchyardv1.SourceStatus{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if name := string(fields.Get(i).Name()); !tags[name] {
			t.Errorf("SourceStatus.%s is missing from source list -o json", name)
		}
	}
}

// TestTriggerGetYAMLNamesServerDefaults checks that trigger get -o yaml
// prints no "0s" for the dead-letter retention fields a trigger leaves to
// the server, says so in a comment, and still round-trips.
func TestTriggerGetYAMLNamesServerDefaults(t *testing.T) {
	api := startDLQServer(t)
	mustRun(t, "name: plain\ntarget: {grpc: 'h:1'}\n---\nname: kept\ntarget: {grpc: 'h:1'}\ndelivery: {dead_letter_max_age: 1h}\n",
		"trigger", "apply", "-f", "-", "--server", api)

	plain := mustRun(t, "", "trigger", "get", "plain", "-o", "yaml", "--server", api).out
	if strings.Contains(plain, "dead_letter") && !strings.Contains(plain, "# unset") || strings.Contains(plain, ": 0s") {
		t.Errorf("get -o yaml prints a server default as a value:\n%s", plain)
	}
	comment := "# unset, the server's setting applies: delivery.dead_letter_max_entries (--dlq-max-entries, default 100000), " +
		"delivery.dead_letter_max_age (--dlq-max-age, default 336h0m0s), delivery.dedup_window (--dedup-window, default off)\n"
	if !strings.Contains(plain, comment) {
		t.Errorf("no comment naming the server's settings:\n%s", plain)
	}
	kept := mustRun(t, "", "trigger", "get", "kept", "-o", "yaml", "--server", api).out
	if !strings.Contains(kept, "dead_letter_max_age: 1h0m0s\n") || strings.Contains(kept, "delivery.dead_letter_max_age (") {
		t.Errorf("a set retention field:\n%s", kept)
	}
	js := mustRun(t, "", "trigger", "get", "plain", "-o", "json", "--server", api).out
	if strings.Contains(js, "dead_letter") {
		t.Errorf("get -o json prints a server default as a value:\n%s", js)
	}
	for _, out := range []string{plain, kept, js} {
		if r := mustRun(t, out, "trigger", "apply", "-f", "-", "--server", api); !strings.HasSuffix(r.out, " unchanged\n") {
			t.Errorf("apply of get's output: %q\n%s", r.out, out)
		}
	}
}

// TestHelpRendersFlags checks flag help for artifacts: a backquoted word in
// a flag's usage becomes its value name.
func TestHelpRendersFlags(t *testing.T) {
	var bad []string
	var walk func(args []string)
	walk = func(args []string) {
		r := mustRun(t, "", append(args, "--help")...)
		inFlags := false
		for _, l := range strings.Split(r.out, "\n") {
			if strings.HasSuffix(l, "Flags:") {
				inFlags = true
			}
			l = strings.TrimSpace(l)
			if !inFlags || !strings.HasPrefix(l, "-") {
				continue
			}
			// "--flag type   usage": the value name is one word of letters.
			f := strings.Fields(l)
			for i, w := range f {
				if strings.HasPrefix(w, "--") && i+1 < len(f) && strings.ContainsAny(f[i+1], ":`") {
					bad = append(bad, strings.Join(args, " ")+": "+l)
				}
			}
		}
		root := NewRoot()
		cmd, _, err := root.Find(args)
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				walk(append(append([]string{}, args...), sub.Name()))
			}
		}
	}
	walk(nil)
	if len(bad) > 0 {
		t.Errorf("flag help with artifacts:\n%s", strings.Join(bad, "\n"))
	}
}
