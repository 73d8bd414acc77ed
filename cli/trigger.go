package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/dlq"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
)

func init() {
	extraCommands = append(extraCommands, newTriggerCmd)
}

func newTriggerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "trigger",
		Aliases: []string{"triggers"},
		Short:   "Manage triggers: apply, list, get, delete, stats",
		Long: `Manage the triggers of a switchyard server.

A trigger file holds one or more triggers, as YAML documents separated by
"---" lines or as a JSON object or array:

  name: orders
  filter:
    attributes: {type: com.example.order.created}
  target:
    grpc: orders-fn:7070
  delivery:
    timeout: 5s
    max_attempts: 5

"trigger get NAME -o yaml" prints a trigger in this shape, so its output can be
edited and applied again.`,
	}
	cmd.AddCommand(newTriggerApplyCmd(), newTriggerListCmd(), newTriggerGetCmd(),
		newTriggerDeleteCmd(), newTriggerStatsCmd(), newTriggerSkipLaneCmd())
	return cmd
}

// loadedSpec is one trigger read from a trigger file.
type loadedSpec struct {
	file string // file name, "-" for stdin
	doc  trigger.Document
	spec trigger.Spec
}

// where names the place of the trigger's name in messages: "t.yaml:12".
func (l loadedSpec) where() string {
	return fmt.Sprintf("%s:%d", displayFile(l.file), l.doc.LineOf("name"))
}

// triggerFiles are the triggers of trigger files, with the problems found
// while reading them, each located as "file:line: path: message".
type triggerFiles struct {
	specs    []loadedSpec
	problems []string
}

// readTriggerFiles reads and decodes the trigger files ("-" is stdin). A
// file that cannot be read is an error; the problems of the others are
// collected, all of them.
func readTriggerFiles(stdin io.Reader, files []string) (*triggerFiles, error) {
	out := &triggerFiles{}
	stdinRead := false
	for _, f := range files {
		var data []byte
		var err error
		if f == "-" {
			if stdinRead {
				return nil, invalidf("-f -: standard input can be read only once")
			}
			stdinRead = true
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, err
		}
		docs, errs := trigger.Decode(data)
		out.add(f, errs)
		for _, d := range docs {
			out.specs = append(out.specs, loadedSpec{file: f, doc: d, spec: d.Spec})
		}
	}
	return out, nil
}

// add records the problems of file.
func (t *triggerFiles) add(file string, errs trigger.FileErrors) {
	for _, e := range errs {
		loc := displayFile(file)
		if e.Line > 0 {
			loc += ":" + strconv.Itoa(e.Line)
		}
		msg := e.Msg
		if e.Path != "" {
			msg = e.FieldError.Error()
		}
		t.problems = append(t.problems, loc+": "+msg)
	}
}

func displayFile(f string) string {
	if f == "-" {
		return "<stdin>"
	}
	return f
}

// validate checks every trigger client-side, plus the uniqueness of the
// names, and reports every problem of the files, one per line, located by
// file, line and field path.
func (t *triggerFiles) validate() error {
	seen := map[string]loadedSpec{}
	for _, l := range t.specs {
		t.add(l.file, l.doc.Validate())
		if l.spec.Name == "" || !trigger.ValidName(l.spec.Name) {
			continue
		}
		if first, dup := seen[l.spec.Name]; dup {
			t.problems = append(t.problems, fmt.Sprintf("%s: name: %q is also defined at %s", l.where(), l.spec.Name, first.where()))
			continue
		}
		seen[l.spec.Name] = l
	}
	if len(t.problems) == 0 {
		return nil
	}
	noun := "errors"
	if len(t.problems) == 1 {
		noun = "error"
	}
	return invalidf("invalid triggers, nothing applied (%d %s):\n  %s", len(t.problems), noun, strings.Join(t.problems, "\n  "))
}

// Values of trigger apply --dry-run.
const (
	dryRunNone   = "none"
	dryRunServer = "server"
	dryRunClient = "client"
)

func newTriggerApplyCmd() *cobra.Command {
	var (
		opts   clientOptions
		out    outputFormat
		files  []string
		dryRun string
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or replace the triggers of trigger files",
		Long: `Create or replace the triggers of one or more trigger files (-f - reads
standard input). Every file is read and every trigger validated first: if
anything is wrong, every problem (an unknown key, a value of the wrong type,
an invalid value, a name given twice) is printed as "FILE:LINE: path:
problem" and nothing is sent. Each trigger is then
applied and reported as "trigger/NAME created", "configured" (changed) or
"unchanged".

--dry-run asks the server what would change, and changes nothing: each
trigger goes through the checks of a real apply (validation, the server's
defaults and target policy, your permissions and scope) and is reported as
created, configured (replaced) or unchanged, with the fields a replacement
changes (BEFORE and AFTER as JSON values, "-" for unset). -o json prints
each trigger as it would be stored, with its changes. --dry-run=client only
validates the files, without contacting the server.`,
		Example: `  switchyard trigger apply -f orders.yaml
  switchyard trigger apply -f orders.yaml --dry-run
  switchyard trigger get orders -o yaml | switchyard trigger apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch dryRun {
			case dryRunNone, dryRunServer, dryRunClient:
			default:
				return invalidf("--dry-run=%s: want server (the default) or client", dryRun)
			}
			if len(files) == 0 {
				return invalidf("no trigger file: pass -f FILE (or -f - for standard input)")
			}
			tf, err := readTriggerFiles(cmd.InOrStdin(), files)
			if err != nil {
				return err
			}
			if err := tf.validate(); err != nil {
				return err
			}
			specs := tf.specs
			w := cmd.OutOrStdout()
			if dryRun == dryRunClient {
				for _, l := range specs {
					fmt.Fprintf(w, "trigger/%s valid (dry run)\n", l.spec.Name)
				}
				return nil
			}
			return opts.withClient(func(c *sdk.Client) error {
				if dryRun == dryRunServer {
					return dryRunSpecs(cmd.Context(), c, specs, out, w, cmd.ErrOrStderr())
				}
				return applySpecs(cmd.Context(), c, specs, out, w, cmd.ErrOrStderr())
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "trigger file (YAML or JSON; - for standard input); repeatable")
	cmd.Flags().StringVar(&dryRun, "dry-run", dryRunNone, "show what would change without changing anything (server); client: only validate the files, offline")
	cmd.Flags().Lookup("dry-run").NoOptDefVal = dryRunServer
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

// applyOutcome is what trigger apply did (or, in a dry run, would do) to
// one trigger: the -o json/yaml form.
type applyOutcome struct {
	Name string `json:"name"`
	// Result is created, configured (replaced) or unchanged.
	Result string `json:"result"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Generation is the trigger's generation after the apply.
	Generation int64 `json:"generation"`
	// Changes are the fields that differ from the trigger stored before
	// (every field set, for one created); values shown redacted.
	Changes []trigger.FieldChange `json:"changes,omitempty"`
	// Trigger is the trigger as stored (or as it would be), in the trigger
	// file shape.
	Trigger          trigger.Spec `json:"trigger"`
	LaggingInstances []string     `json:"lagging_instances,omitempty"`
}

// resultOf names what an apply did.
func resultOf(created, changed bool) string {
	switch {
	case created:
		return "created"
	case changed:
		return "configured"
	}
	return "unchanged"
}

// applyEach applies (or previews) specs one by one with call. With a
// single trigger its error is returned as is; with several, failures are
// printed on errOut and the others still sent, except when the server
// cannot be reached. It returns the outcomes of those that succeeded.
// notDone ends the message of failures: "applied", "checked (dry run)".
func applyEach(ctx context.Context, specs []loadedSpec, errOut io.Writer, notDone string, call func(loadedSpec) (applyOutcome, error)) ([]applyOutcome, error) {
	var outcomes []applyOutcome
	failed := 0
	for i, l := range specs {
		what := "trigger/" + l.spec.Name
		o, err := call(l)
		if err != nil {
			if len(specs) == 1 {
				return nil, serverError(what, err)
			}
			if errors.Is(err, sdk.ErrUnavailable) || errors.Is(err, sdk.ErrDryRunUnsupported) || status.Code(err) == codes.DeadlineExceeded || ctx.Err() != nil {
				return outcomes, fmt.Errorf("%w\n%d of %d triggers not %s", serverError(what, err), len(specs)-i, len(specs), notDone)
			}
			fmt.Fprintln(errOut, serverError(what, err))
			failed++
			continue
		}
		outcomes = append(outcomes, o)
	}
	if failed > 0 {
		return outcomes, fmt.Errorf("%d of %d triggers not %s", failed, len(specs), notDone)
	}
	return outcomes, nil
}

// applySpecs applies validated specs one by one (see applyEach) and
// reports each as "trigger/NAME created|configured|unchanged", or, with
// -o json/yaml, their outcomes.
func applySpecs(ctx context.Context, c *sdk.Client, specs []loadedSpec, format outputFormat, out, errOut io.Writer) error {
	outcomes, err := applyEach(ctx, specs, errOut, "applied", func(l loadedSpec) (applyOutcome, error) {
		resp, err := c.ApplyTrigger(ctx, trigger.ToProto(l.spec))
		if err != nil {
			return applyOutcome{}, err
		}
		o := applyOutcome{Name: l.spec.Name, Result: resultOf(resp.GetCreated(), resp.GetChanged()),
			Generation: resp.GetTrigger().GetGeneration(), Trigger: trigger.FromProto(resp.GetTrigger()), LaggingInstances: resp.GetLaggingInstances()}
		if format == formatTable {
			fmt.Fprintf(out, "trigger/%s %s\n", o.Name, o.Result)
		}
		warnLagging(errOut, "trigger/"+o.Name, o.LaggingInstances)
		return o, nil
	})
	if format != formatTable {
		if perr := printOutcomes(out, format, outcomes); perr != nil {
			return errors.Join(err, perr)
		}
	}
	return err
}

// warnLagging tells on errOut which instances had not confirmed a change
// when the server answered.
func warnLagging(errOut io.Writer, what string, lagging []string) {
	if len(lagging) == 0 {
		return
	}
	fmt.Fprintf(errOut, "warning: %s: not yet live on %d instance(s): %s (the change is stored; they apply it when they can)\n",
		what, len(lagging), strings.Join(lagging, ", "))
}

func newTriggerListCmd() *cobra.Command {
	var (
		opts clientOptions
		out  outputFormat
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List triggers",
		Long: `List every trigger, sorted by name. -o json prints a JSON array and -o yaml
YAML documents separated by "---", both in the trigger file shape, so the
output can be applied again with "trigger apply -f".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return opts.withClient(func(c *sdk.Client) error {
				ts, err := c.ListTriggers(cmd.Context())
				if err != nil {
					return serverError("", err)
				}
				if len(ts) == 0 && out == formatTable {
					fmt.Fprintln(cmd.ErrOrStderr(), "no triggers")
					return nil
				}
				return printTriggers(cmd.OutOrStdout(), out, ts, true, time.Now())
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	return cmd
}

func newTriggerGetCmd() *cobra.Command {
	var (
		opts clientOptions
		out  outputFormat
	)
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show one trigger",
		Long: `Show one trigger. -o json and -o yaml print it in the trigger file shape
(with its defaults filled in; the dead-letter retention fields a trigger
leaves to the server's settings stay unset, and the YAML names them in a
comment), so that

  switchyard trigger get orders -o yaml > orders.yaml
  switchyard trigger apply -f orders.yaml

round-trips. The YAML form starts with a comment giving the generation and the
creation and update times.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeTriggerNames(&opts),
		RunE: func(cmd *cobra.Command, args []string) error {
			return opts.withClient(func(c *sdk.Client) error {
				t, err := c.GetTrigger(cmd.Context(), args[0])
				if err != nil {
					return serverError("trigger/"+args[0], err)
				}
				return printTriggers(cmd.OutOrStdout(), out, []*switchyardv1.Trigger{t}, false, time.Now())
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	return cmd
}

func newTriggerDeleteCmd() *cobra.Command {
	var (
		opts  clientOptions
		purge bool
	)
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a trigger",
		Long: `Delete a trigger. Its undelivered events stay in the store and resume if a
trigger of the same name is created again, unless --purge is given, which also
deletes them and the trigger's dead letters.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeTriggerNames(&opts),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return opts.withClient(func(c *sdk.Client) error {
				resp, err := c.DeleteTrigger(cmd.Context(), name, purge)
				if err != nil {
					return serverError("trigger/"+name, err)
				}
				warnLagging(cmd.ErrOrStderr(), "trigger/"+name, resp.GetLaggingInstances())
				w := cmd.OutOrStdout()
				switch kept := resp.GetKeptEvents(); {
				case purge:
					fmt.Fprintf(w, "trigger/%s deleted (purged)\n", name)
				case kept > 0:
					fmt.Fprintf(w, "trigger/%s deleted (%d undelivered events kept; they resume if the trigger is created again)\n", name, kept)
				default:
					fmt.Fprintf(w, "trigger/%s deleted\n", name)
				}
				return nil
			})
		},
	}
	clientFlags(cmd, &opts)
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the trigger's undelivered events and dead letters")
	return cmd
}

func newTriggerStatsCmd() *cobra.Command {
	var (
		opts clientOptions
		out  outputFormat
	)
	cmd := &cobra.Command{
		Use:   "stats [NAME]",
		Short: "Show queue and delivery figures of triggers",
		Long: `Show the queue and delivery figures of one trigger, or of every trigger.

Columns: UNDELIVERED events accepted for the trigger and not yet delivered or
dead-lettered / max_queue (at max_queue publishers are pushed back, and the
pushback names the same figure); they are QUEUED waiting for an attempt (OLDEST
the age of the oldest of them), IN_FLIGHT (attempts running / max_concurrency),
waiting for a scheduled retry (RETRIES) or for the time their publisher asked
(DELAYED, the deliverafter extension), or accepted and not yet fanned out to
the queue (rarely more than a moment). DLQ entries in the dead-letter queue,
BREAKER circuit breaker state, DELIVERED events acknowledged, FAILED failed
attempts, DEAD events moved to the dead-letter queue, CONSUMERS the consumers
connected to a pull trigger (its IN_FLIGHT are the events leased to them).
An ordered trigger (delivery.ordering) also gets a line with its lanes: those
holding events, those blocked by a dead letter (on_dead: block) with the key
and the dead letter of each, and the events waiting behind an earlier one of
their key (counted in UNDELIVERED, not in QUEUED).`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeTriggerNames(&opts),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return opts.withClient(func(c *sdk.Client) error {
				st, err := c.TriggerStats(cmd.Context(), name)
				if err != nil {
					what := ""
					if name != "" {
						what = "trigger/" + name
					}
					return serverError(what, err)
				}
				if len(st) == 0 && out == formatTable {
					fmt.Fprintln(cmd.ErrOrStderr(), "no triggers")
					return nil
				}
				return printStats(cmd.OutOrStdout(), out, st, name != "")
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	return cmd
}

// completeTriggerNames completes trigger names from the server, best effort.
func completeTriggerNames(opts *clientOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		_ = opts.withClient(func(c *sdk.Client) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
			defer cancel()
			ts, err := c.ListTriggers(ctx)
			for _, t := range ts {
				names = append(names, t.GetName())
			}
			return err
		})
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// printTriggers renders triggers. json and yaml use the trigger file shape:
// for a list, a JSON array or "---"-separated YAML documents, for a single
// trigger one object; the YAML documents start with a comment carrying the
// output-only fields.
func printTriggers(w io.Writer, format outputFormat, ts []*switchyardv1.Trigger, list bool, now time.Time) error {
	switch format {
	case formatJSON:
		specs := make([]trigger.Spec, len(ts))
		for i, t := range ts {
			specs[i] = trigger.FromProto(t)
		}
		if !list && len(specs) == 1 {
			return writeJSON(w, specs[0])
		}
		return writeJSON(w, specs)
	case formatYAML:
		if len(ts) == 0 {
			_, err := io.WriteString(w, "[]\n")
			return err
		}
		for i, t := range ts {
			if i > 0 {
				if _, err := io.WriteString(w, "---\n"); err != nil {
					return err
				}
			}
			if _, err := io.WriteString(w, triggerMetaComment(t)); err != nil {
				return err
			}
			if err := writeYAML(w, trigger.FromProto(t)); err != nil {
				return err
			}
		}
		return nil
	}
	tab := newTable(w, "NAME", "TARGET", "FILTER", "MAX_CONC", "GEN", "AGE")
	for _, t := range ts {
		spec := trigger.FromProto(t)
		tab.row(spec.Name, spec.Target.String(), summarizeFilter(spec.Filter, 60),
			strconv.Itoa(spec.Delivery.MaxConcurrency), strconv.FormatInt(t.GetGeneration(), 10), age(t.GetCreateTime(), now))
	}
	return tab.flush()
}

// triggerMetaComment returns YAML comment lines with the output-only fields
// of t and the delivery fields that follow the server's settings, or "".
func triggerMetaComment(t *switchyardv1.Trigger) string {
	var parts []string
	if g := t.GetGeneration(); g != 0 {
		parts = append(parts, "generation "+strconv.FormatInt(g, 10))
	}
	if ts := t.GetCreateTime(); ts != nil {
		parts = append(parts, "created "+ts.AsTime().UTC().Format(time.RFC3339))
	}
	if ts := t.GetUpdateTime(); ts != nil {
		parts = append(parts, "updated "+ts.AsTime().UTC().Format(time.RFC3339))
	}
	var b strings.Builder
	if len(parts) > 0 {
		b.WriteString("# trigger/" + t.GetName() + ": " + strings.Join(parts, ", ") + "\n")
	}
	// These fields have no per-trigger default: unset, they follow the
	// server's settings, and stay unset when the file is applied again.
	var unset []string
	d := t.GetDelivery()
	if d.GetDeadLetterMaxEntries() == 0 {
		unset = append(unset, fmt.Sprintf("dead_letter_max_entries (--dlq-max-entries, default %d)", dlq.DefaultMaxEntries))
	}
	if d.GetDeadLetterMaxAge().AsDuration() == 0 {
		unset = append(unset, fmt.Sprintf("dead_letter_max_age (--dlq-max-age, default %s)", dlq.DefaultMaxAge))
	}
	if d.GetDedupWindow() == nil {
		unset = append(unset, "dedup_window (--dedup-window, default off)")
	}
	if len(unset) > 0 {
		b.WriteString("# unset, the server's setting applies: delivery." + strings.Join(unset, ", delivery.") + "\n")
	}
	return b.String()
}

// age renders the time since ts for tables, "-" when unknown.
func age(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil {
		return "-"
	}
	return shortDuration(now.Sub(ts.AsTime()))
}

// summarizeFilter renders a filter on one line for tables: "*" for the empty
// filter (every event), "type=a" for exact attributes, "type=a.*" for a
// prefix, "subject=*.png" for a suffix, cesql(...), cel(...), all(...),
// any(...) and not(...). The result is cut to max runes with "…".
func summarizeFilter(f filter.Spec, max int) string {
	s := filterSummary(f)
	if s == "" {
		s = "*"
	}
	if max > 1 && utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max-1]) + "…"
	}
	return s
}

func filterSummary(f filter.Spec) string {
	var parts []string
	for _, k := range sortedKeys(f.Attributes) {
		parts = append(parts, k+"="+f.Attributes[k])
	}
	for _, k := range sortedKeys(f.Prefix) {
		parts = append(parts, k+"="+f.Prefix[k]+"*")
	}
	for _, k := range sortedKeys(f.Suffix) {
		parts = append(parts, k+"=*"+f.Suffix[k])
	}
	if f.CESQL != "" {
		parts = append(parts, "cesql("+oneLine(f.CESQL)+")")
	}
	if f.CEL != "" {
		parts = append(parts, "cel("+oneLine(f.CEL)+")")
	}
	sub := func(op string, fs []filter.Spec) {
		if len(fs) == 0 {
			return
		}
		items := make([]string, len(fs))
		for i, s := range fs {
			items[i] = filterSummary(s)
			if items[i] == "" {
				items[i] = "*"
			}
		}
		parts = append(parts, op+"("+strings.Join(items, "; ")+")")
	}
	sub("all", f.All)
	sub("any", f.Any)
	if f.Not != nil {
		sub("not", []filter.Spec{*f.Not})
	}
	return strings.Join(parts, ", ")
}

// oneLine collapses runs of white space to single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// statsView is the json/yaml form of one TriggerStats: counts as JSON
// numbers, durations as Go duration strings, times in RFC 3339.
type statsView struct {
	Name                string `json:"name"`
	Undelivered         int64  `json:"undelivered"`
	MaxQueue            int64  `json:"max_queue"`
	Queued              int64  `json:"queued"`
	OldestAge           string `json:"oldest_age"`
	InFlight            int64  `json:"in_flight"`
	MaxConcurrency      int32  `json:"max_concurrency"`
	RetriesScheduled    int64  `json:"retries_scheduled"`
	Delayed             int64  `json:"delayed"`
	DeadLetters         int64  `json:"dead_letters"`
	Breaker             string `json:"breaker"`
	ConsecutiveFailures int64  `json:"consecutive_failures"`
	BreakerRetryTime    string `json:"breaker_retry_time,omitempty"`
	Enqueued            int64  `json:"enqueued"`
	Duplicates          int64  `json:"duplicates"`
	DedupWindow         string `json:"dedup_window,omitempty"`
	Delivered           int64  `json:"delivered"`
	FailedAttempts      int64  `json:"failed_attempts"`
	DeadLettered        int64  `json:"dead_lettered"`
	DeadLettersEvicted  int64  `json:"dead_letters_evicted"`
	Consumers           int32  `json:"consumers"`
	Leased              int64  `json:"leased"`
	// Ordered triggers only.
	LanesActive  int64             `json:"lanes_active,omitempty"`
	LanesBlocked int64             `json:"lanes_blocked,omitempty"`
	LaneWaiting  int64             `json:"lane_waiting,omitempty"`
	BlockedLanes []blockedLaneView `json:"blocked_lanes,omitempty"`
}

type blockedLaneView struct {
	Key          string `json:"key"`
	DeadLetterID string `json:"dead_letter_id"`
}

func newStatsView(s *switchyardv1.TriggerStats) statsView {
	v := statsView{
		Name:                s.GetName(),
		Undelivered:         s.GetUndelivered(),
		MaxQueue:            s.GetMaxQueue(),
		Queued:              s.GetQueued(),
		OldestAge:           s.GetOldestAge().AsDuration().String(),
		InFlight:            s.GetInFlight(),
		MaxConcurrency:      s.GetMaxConcurrency(),
		RetriesScheduled:    s.GetRetriesScheduled(),
		Delayed:             s.GetDelayed(),
		DeadLetters:         s.GetDeadLetters(),
		Breaker:             breakerName(s.GetBreaker()),
		ConsecutiveFailures: s.GetConsecutiveFailures(),
		Enqueued:            s.GetEnqueued(),
		Duplicates:          s.GetDuplicates(),
		Delivered:           s.GetDelivered(),
		FailedAttempts:      s.GetFailedAttempts(),
		DeadLettered:        s.GetDeadLettered(),
		DeadLettersEvicted:  s.GetDeadLettersEvicted(),
		Consumers:           s.GetConsumers(),
		Leased:              s.GetLeased(),
		LanesActive:         s.GetLanesActive(),
		LanesBlocked:        s.GetLanesBlocked(),
		LaneWaiting:         s.GetLaneWaiting(),
	}
	for _, b := range s.GetBlockedLanes() {
		v.BlockedLanes = append(v.BlockedLanes, blockedLaneView{Key: b.GetKey(), DeadLetterID: b.GetDeadLetterId()})
	}
	if w := s.GetDedupWindow(); w != nil {
		v.DedupWindow = w.AsDuration().String()
	}
	if t := s.GetBreakerRetryTime(); t != nil {
		v.BreakerRetryTime = t.AsTime().UTC().Format(time.RFC3339Nano)
	}
	return v
}

// breakerName renders a breaker state in lower case: closed, open,
// half-open, or "-" when not reported.
func breakerName(b switchyardv1.BreakerState) string {
	switch b {
	case switchyardv1.BreakerState_BREAKER_STATE_CLOSED:
		return "closed"
	case switchyardv1.BreakerState_BREAKER_STATE_OPEN:
		return "open"
	case switchyardv1.BreakerState_BREAKER_STATE_HALF_OPEN:
		return "half-open"
	case switchyardv1.BreakerState_BREAKER_STATE_UNSPECIFIED:
		return "-"
	}
	return b.String()
}

// printStats renders trigger stats; single prints one JSON/YAML object
// instead of a list.
func printStats(w io.Writer, format outputFormat, stats []*switchyardv1.TriggerStats, single bool) error {
	views := make([]statsView, len(stats))
	for i, s := range stats {
		views[i] = newStatsView(s)
	}
	switch format {
	case formatJSON:
		if single && len(views) == 1 {
			return writeJSON(w, views[0])
		}
		return writeJSON(w, views)
	case formatYAML:
		if single && len(views) == 1 {
			return writeYAML(w, views[0])
		}
		return writeYAML(w, views)
	}
	tab := newTable(w, "NAME", "UNDELIVERED", "QUEUED", "OLDEST", "IN_FLIGHT", "RETRIES", "DELAYED", "DLQ", "BREAKER", "DELIVERED", "FAILED", "DEAD", "CONSUMERS", "DUPLICATES")
	for _, s := range stats {
		oldest := "-"
		if s.GetQueued() > 0 || s.GetOldestAge().AsDuration() > 0 {
			oldest = shortDuration(s.GetOldestAge().AsDuration())
		}
		tab.row(s.GetName(),
			fmt.Sprintf("%d/%d", s.GetUndelivered(), s.GetMaxQueue()),
			strconv.FormatInt(s.GetQueued(), 10),
			oldest,
			fmt.Sprintf("%d/%d", s.GetInFlight(), s.GetMaxConcurrency()),
			strconv.FormatInt(s.GetRetriesScheduled(), 10),
			strconv.FormatInt(s.GetDelayed(), 10),
			strconv.FormatInt(s.GetDeadLetters(), 10),
			breakerName(s.GetBreaker()),
			strconv.FormatInt(s.GetDelivered(), 10),
			strconv.FormatInt(s.GetFailedAttempts(), 10),
			strconv.FormatInt(s.GetDeadLettered(), 10),
			strconv.Itoa(int(s.GetConsumers())),
			strconv.FormatInt(s.GetDuplicates(), 10))
	}
	if err := tab.flush(); err != nil {
		return err
	}
	return printLanes(w, stats)
}
