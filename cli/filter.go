package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/spf13/cobra"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
)

func init() {
	extraCommands = append(extraCommands, newFilterCmd)
}

func newFilterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "filter",
		Short: "Work with trigger filters: test them against events",
	}
	cmd.AddCommand(newFilterTestCmd())
	return cmd
}

// filterVerdict is the verdict of one trigger's filter on one event, the
// -o json/yaml form of filter test.
type filterVerdict struct {
	Event   eventRef `json:"event"`
	Trigger string   `json:"trigger"`
	// Matched is what routing decides.
	Matched bool `json:"matched"`
	// Clauses are the filter's top-level conditions, scope included,
	// each with its verdict and reason (filter.Clause).
	Clauses []filter.Clause `json:"clauses"`
}

// eventRef names an event of the input.
type eventRef struct {
	At     string `json:"at"` // "events.json:3"
	ID     string `json:"id"`
	Source string `json:"source"`
	Type   string `json:"type"`
}

func newFilterTestCmd() *cobra.Command {
	var (
		opts     clientOptions
		out      outputFormat
		files    []string
		events   []string
		names    []string
		onServer bool
		recent   int
	)
	cmd := &cobra.Command{
		Use:   "test (-f FILE | --trigger NAME) [--event FILE] [--recent N]",
		Short: "Say whether triggers match events, and why not",
		Long: `Test trigger filters against events: for each event and each trigger, say
whether the trigger matches the event and, when not, which clauses fail and
why (the attribute missing, its value against the one wanted, what a CESQL or
CEL expression evaluated to or why it failed, how CEL saw the data). The
verdict is the router's: the same code decides.

The triggers come from trigger files (-f, as "trigger apply" reads them;
every trigger of the files is tested) and, with --trigger, from the server
(stored triggers, as the router matches with them, their event scope
included). Trigger files are tested offline, without a server, unless
--on-server sends them to the server's TriggerService.TestFilter, which
adds the scope your key would give them.

The events are CloudEvents in the JSON event format (structured mode): one
object per file, one per line (JSON Lines), or arrays of them (the batch
format), from --event files or, without --event, standard input. Each is
named by its file and line. --recent N adds the last N events the server's
archive kept (within your key's event scope; the archive must be on), named
"archive:<entry>"; with --recent, standard input is read only when --event -
says so.

Exit status: 0 once the triggers are tested, whatever they matched (use
-o json to act on the verdicts); 2 for an invalid trigger file or event; 4
when a --trigger does not exist.`,
		Example: `  switchyard filter test -f orders.yaml --event order.json
  cat events.jsonl | switchyard filter test -f orders.yaml -o json
  switchyard filter test --trigger orders --event orders.jsonl --server sy:9090
  switchyard filter test -f orders.yaml --recent 50`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 && len(names) == 0 {
				return invalidf("no trigger to test: pass -f FILE (a trigger file) or --trigger NAME (a stored trigger)")
			}
			if onServer && len(files) == 0 {
				return invalidf("--on-server sends the triggers of -f files; stored triggers (--trigger) are always tested on the server")
			}
			for _, n := range names {
				if err := trigger.CheckName(n); err != nil {
					return invalidf("--trigger %s: %v", n, err)
				}
			}
			var specs []loadedSpec
			if len(files) > 0 {
				tf, err := readTriggerFiles(cmd.InOrStdin(), files)
				if err != nil {
					return err
				}
				if err := tf.validate(); err != nil {
					return err
				}
				specs = tf.specs
			}
			if recent < 0 || recent > maxRecentEvents {
				return invalidf("--recent: want 1 to %d events, got %d", maxRecentEvents, recent)
			}
			var evs []loadedEvent
			var err error
			if recent == 0 || len(events) > 0 {
				if evs, err = readTestEvents(cmd.InOrStdin(), files, events); err != nil {
					return err
				}
			}
			if recent > 0 {
				err = opts.withClient(func(c *sdk.Client) error {
					archived, err := recentEvents(cmd.Context(), c, recent)
					evs = append(evs, archived...)
					return err
				})
				if err != nil {
					return err
				}
				if len(evs) == 0 {
					return &ExitError{Code: ExitNotFound, Err: errors.New("--recent: the archive holds no event you may read")}
				}
			}
			var verdicts []filterVerdict
			if len(names) == 0 && !onServer {
				verdicts, err = testOffline(specs, evs)
			} else {
				err = opts.withClient(func(c *sdk.Client) error {
					verdicts, err = testOnServer(cmd.Context(), c, specs, onServer, names, evs)
					return err
				})
			}
			if err != nil {
				return err
			}
			return printVerdicts(cmd.OutOrStdout(), out, verdicts)
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "trigger file (YAML or JSON; - for standard input); repeatable")
	cmd.Flags().StringArrayVar(&events, "event", nil, "events file (JSON event format: an object, one per line, or arrays; - for standard input); repeatable; default standard input")
	cmd.Flags().StringArrayVar(&names, "trigger", nil, "a stored trigger to test, on the server; repeatable")
	cmd.Flags().IntVar(&recent, "recent", 0, "also test the last N events of the server's archive (at most 1000)")
	cmd.Flags().BoolVar(&onServer, "on-server", false, "test the -f triggers on the server (its TestFilter, with your key's scope) instead of offline")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	_ = cmd.MarkFlagFilename("event", "json", "jsonl")
	return cmd
}

// readTestEvents reads the events to test: each --event file, or standard
// input when none is given (and no trigger file takes it).
// (--recent adds the archive's events: recentEvents.)
func readTestEvents(stdin io.Reader, triggerFiles, eventFiles []string) ([]loadedEvent, error) {
	if len(eventFiles) == 0 {
		for _, f := range triggerFiles {
			if f == "-" {
				return nil, invalidf("no events: standard input holds the trigger file, so pass --event FILE")
			}
		}
		eventFiles = []string{"-"}
	}
	for _, f := range eventFiles {
		if f != "-" {
			continue
		}
		for _, tf := range triggerFiles {
			if tf == "-" {
				return nil, invalidf("-f - and --event - cannot both read standard input")
			}
		}
	}
	return readEventFiles(stdin, eventFiles)
}

// maxRecentEvents bounds --recent (ListArchivedEvents' bound).
const maxRecentEvents = 1000

// recentEvents reads the last n archived events the caller may read,
// oldest first, each named "archive:<entry id>".
func recentEvents(ctx context.Context, c *sdk.Client, n int) ([]loadedEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.Archive().ListArchivedEvents(ctx, &switchyardv1.ListArchivedEventsRequest{Limit: int32(n)})
	if err != nil {
		return nil, serverError("archive", err)
	}
	got := resp.GetEvents()
	out := make([]loadedEvent, 0, len(got))
	for i := len(got) - 1; i >= 0; i-- {
		out = append(out, loadedEvent{where: "archive:" + got[i].GetId(), ev: got[i].GetEvent()})
	}
	return out, nil
}

// testOffline compiles the triggers of the files (as the server would,
// with the scope the file gives them, if any) and explains each event.
func testOffline(specs []loadedSpec, evs []loadedEvent) ([]filterVerdict, error) {
	compiled := make([]*trigger.Trigger, len(specs))
	for i, l := range specs {
		t, err := trigger.Compile(l.spec)
		if err != nil { // validated already; a scope that does not compile
			return nil, invalidf("%s: %v", l.where(), err)
		}
		compiled[i] = t
	}
	var out []filterVerdict
	in := filter.NewInput(nil)
	for _, e := range evs {
		for _, t := range compiled {
			in.Reset(e.ev)
			x := t.Explain(in)
			out = append(out, filterVerdict{Event: refOf(e), Trigger: t.Name(), Matched: x.Matched, Clauses: x.Clauses})
		}
	}
	return out, nil
}

// testOnServer asks the server's TestFilter for the stored triggers names
// and, with drafts, the triggers of the files, sending the events in
// batches the server accepts.
func testOnServer(ctx context.Context, c *sdk.Client, specs []loadedSpec, drafts bool, names []string, evs []loadedEvent) ([]filterVerdict, error) {
	type subject struct {
		name string
		req  func(evs []*pb.CloudEvent) *switchyardv1.TestFilterRequest
	}
	var subjects []subject
	if drafts {
		for _, l := range specs {
			p := trigger.ToProto(l.spec)
			subjects = append(subjects, subject{l.spec.Name, func(evs []*pb.CloudEvent) *switchyardv1.TestFilterRequest {
				return &switchyardv1.TestFilterRequest{Subject: &switchyardv1.TestFilterRequest_Trigger{Trigger: p}, Events: evs}
			}})
		}
	}
	for _, n := range names {
		subjects = append(subjects, subject{n, func(evs []*pb.CloudEvent) *switchyardv1.TestFilterRequest {
			return &switchyardv1.TestFilterRequest{Subject: &switchyardv1.TestFilterRequest_Name{Name: n}, Events: evs}
		}})
	}
	results := make([][]*switchyardv1.FilterResult, len(subjects))
	for i, s := range subjects {
		for start := 0; start < len(evs); start += router.DefaultMaxBatchEvents {
			batch := evs[start:min(start+router.DefaultMaxBatchEvents, len(evs))]
			pbs := make([]*pb.CloudEvent, len(batch))
			for j, e := range batch {
				pbs[j] = e.ev
			}
			resp, err := c.TestFilterProto(ctx, s.req(pbs))
			if err != nil {
				return nil, serverError("trigger/"+s.name, err)
			}
			if len(resp.GetResults()) != len(batch) {
				return nil, fmt.Errorf("trigger/%s: the server answered %d results for %d events", s.name, len(resp.GetResults()), len(batch))
			}
			results[i] = append(results[i], resp.GetResults()...)
		}
	}
	var out []filterVerdict
	for k, e := range evs {
		for i, s := range subjects {
			x := trigger.ExplanationFromProto(results[i][k])
			out = append(out, filterVerdict{Event: refOf(e), Trigger: s.name, Matched: x.Matched, Clauses: x.Clauses})
		}
	}
	return out, nil
}

func refOf(e loadedEvent) eventRef {
	return eventRef{At: e.where, ID: e.ev.GetId(), Source: e.ev.GetSource(), Type: e.ev.GetType()}
}

// printVerdicts renders the verdicts: -o json/yaml as a list of
// filterVerdict; the table one row per event and trigger, with a line per
// reason of a miss under it.
func printVerdicts(w io.Writer, format outputFormat, vs []filterVerdict) error {
	switch format {
	case formatJSON:
		if vs == nil {
			vs = []filterVerdict{}
		}
		return writeJSON(w, vs)
	case formatYAML:
		return writeYAML(w, vs)
	}
	tab := newTable(w, "EVENT", "ID", "TRIGGER", "MATCH", "WHY")
	for _, v := range vs {
		if v.Matched {
			tab.row(v.Event.At, v.Event.ID, v.Trigger, "yes", "")
			continue
		}
		var lines []string
		for _, c := range v.Clauses {
			if !c.Held {
				lines = appendWhy(lines, c, "")
			}
		}
		for i, l := range lines {
			if i == 0 {
				tab.row(v.Event.At, v.Event.ID, v.Trigger, "no", l)
			} else {
				tab.row("", "", "", "", l)
			}
		}
	}
	return tab.flush()
}

// appendWhy appends the lines explaining clause c's verdict: its own, then
// those of the causes behind it, indented (the failing parts of an all, the
// alternatives of an any, the clauses that made a not's filter match or
// miss).
func appendWhy(lines []string, c filter.Clause, indent string) []string {
	head := c.Path
	if c.Expression != "" {
		head += " (" + summarizeExpression(c.Expression, 40) + ")"
	}
	lines = append(lines, indent+head+": "+c.Reason)
	if len(indent) >= 16 {
		return lines // deep enough for a table; -o json has the rest
	}
	want := c.Held != (c.Kind == filter.KindNot)
	for _, sub := range c.Causes {
		if sub.Held == want {
			lines = appendWhy(lines, sub, indent+"  ")
		}
	}
	return lines
}

// summarizeExpression renders an expression on one line, cut to max runes.
func summarizeExpression(src string, max int) string {
	s := oneLine(src)
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}
