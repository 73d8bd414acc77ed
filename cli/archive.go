package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
)

func init() {
	extraCommands = append(extraCommands, newArchiveCmd)
}

// newArchiveCmd builds "archive" and its subcommands.
func newArchiveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Inspect the event archive and replay archived events",
		Long: `The archive keeps every accepted event, matched by a trigger or not, for
the server's archive_retention or up to its archive_max_bytes (it is off
unless one is set). "archive replay" sends archived events again: into one
trigger (a new function backfilled with last week's events) or into every
current trigger that matches them. A replay is a job the servers run and
resume after a crash; the events it sends carry the extension
switchyardreplay (the job's id).`,
	}
	cmd.AddCommand(newArchiveStatsCmd(), newArchiveReplayCmd(), newArchiveStatusCmd(), newArchiveListCmd(), newArchiveCancelCmd())
	return cmd
}

func archiveCall(o *clientOptions, f func(context.Context, switchyardv1.ArchiveServiceClient) error) error {
	return o.withClient(func(c *sdk.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return f(ctx, c.Archive())
	})
}

// archiveStatsView is the -o json/yaml form of archive stats.
type archiveStatsView struct {
	Enabled        bool   `json:"enabled"`
	Retention      string `json:"retention,omitempty"`
	MaxBytes       int64  `json:"maxBytes,omitempty"`
	Events         int64  `json:"events"`
	Oldest         string `json:"oldest,omitempty"`
	Newest         string `json:"newest,omitempty"`
	MemoryBytes    int64  `json:"memoryBytes"`
	RunningReplays int32  `json:"runningReplays"`
}

func newArchiveStatsCmd() *cobra.Command {
	var (
		opts clientOptions
		out  outputFormat
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show what the archive holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return archiveCall(&opts, func(ctx context.Context, c switchyardv1.ArchiveServiceClient) error {
				resp, err := c.GetArchiveStats(ctx, &switchyardv1.GetArchiveStatsRequest{})
				if err != nil {
					return serverError("archive", err)
				}
				st := resp.GetStats()
				v := archiveStatsView{Enabled: st.GetEnabled(), MaxBytes: st.GetMaxBytes(), Events: st.GetEvents(),
					MemoryBytes: st.GetMemoryBytes(), RunningReplays: st.GetRunningReplays()}
				if st.GetRetention() != nil {
					v.Retention = st.GetRetention().AsDuration().String()
				}
				if st.GetOldestTime() != nil {
					v.Oldest = st.GetOldestTime().AsTime().UTC().Format(time.RFC3339Nano)
					v.Newest = st.GetNewestTime().AsTime().UTC().Format(time.RFC3339Nano)
				}
				switch out {
				case formatJSON:
					return writeJSON(cmd.OutOrStdout(), v)
				case formatYAML:
					return writeYAML(cmd.OutOrStdout(), v)
				}
				w := cmd.OutOrStdout()
				if !v.Enabled {
					_, err := fmt.Fprintln(w, "archive: off (the server sets archive_retention or archive_max_bytes to keep events)")
					return err
				}
				tab := newTable(w, "EVENTS", "OLDEST", "NEWEST", "MEMORY", "RETENTION", "MAX BYTES", "REPLAYS RUNNING")
				mem := "-"
				if v.MemoryBytes >= 0 {
					mem = strconv.FormatInt(v.MemoryBytes, 10)
				}
				tab.row(strconv.FormatInt(v.Events, 10), dash(v.Oldest), dash(v.Newest), mem, dash(v.Retention),
					strconv.FormatInt(v.MaxBytes, 10), strconv.Itoa(int(v.RunningReplays)))
				return tab.flush()
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	return cmd
}

func newArchiveReplayCmd() *cobra.Command {
	var (
		opts                        clientOptions
		from, to, filter, into      string
		rate                        string
		allMatching, dryRun, detach bool
	)
	cmd := &cobra.Command{
		Use:   "replay --from TIME [--to TIME] (--trigger NAME | --all-matching) [--filter CESQL] [--rate 500/s] [--dry-run]",
		Short: "Send archived events again, in order, into a trigger or the matching triggers",
		Long: `Replay the events the archive kept that were accepted from --from up to
--to (default: now), in the order they were accepted, either into one trigger
(--trigger: the events its filter and scope match, e.g. to backfill a new
function) or into every current trigger that matches each event
(--all-matching, among the triggers your key may see). --filter adds a CESQL
condition on the events. Replayed events keep their id and carry the
extension switchyardreplay, the replay's id; they are queued like published
events (retries, dead letters, each trigger's max_queue).

A replay runs on the servers, not in this command: a server that dies
mid-way has its replay taken over by another (or by itself once restarted)
from the last batch it queued, so no event is skipped and at most one batch
is sent twice. This command follows it with a progress bar (on a terminal)
and prints a summary line; Ctrl-C or --detach leaves it running (see
"archive status", "archive cancel"). --dry-run counts what would be sent
and sends nothing.

TIME is RFC 3339 (2026-12-01T00:00:00Z), a date (2026-12-01, UTC), "now",
or a duration ago (90m, 24h, 7d).

Exit status: 0 when the replay succeeded (or was left running); 1 when it
failed or was cancelled; 2 for invalid flags or a spec the server refused;
4 when the trigger does not exist.`,
		Example: `  switchyard archive replay --from 7d --trigger new-fn
  switchyard archive replay --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z --all-matching --filter "type = 'order.created'" --dry-run
  switchyard archive replay --from 24h --trigger audit --rate 100/s --detach`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			spec := &switchyardv1.ReplaySpec{Filter: filter, DryRun: dryRun}
			if from == "" {
				return invalidf("--from is required: where the replay starts (a time, or a duration ago such as 24h)")
			}
			f, err := parseWhen(from, now)
			if err != nil {
				return invalidf("--from: %v", err)
			}
			spec.From = timestamppb.New(f)
			if to != "" {
				t, err := parseWhen(to, now)
				if err != nil {
					return invalidf("--to: %v", err)
				}
				spec.To = timestamppb.New(t)
			}
			switch {
			case into != "" && allMatching:
				return invalidf("--trigger and --all-matching exclude each other: replay into one trigger, or into every matching one")
			case into != "":
				if err := trigger.CheckName(into); err != nil {
					return invalidf("--trigger %s: %v", into, err)
				}
				spec.Destination = &switchyardv1.ReplaySpec_Trigger{Trigger: into}
			case allMatching:
				spec.Destination = &switchyardv1.ReplaySpec_AllMatching{AllMatching: true}
			default:
				return invalidf("say where the events go: --trigger NAME or --all-matching")
			}
			if rate != "" {
				r, err := parseRate(rate)
				if err != nil {
					return invalidf("--rate: %v", err)
				}
				spec.Rate = r
			}
			return opts.withClient(func(c *sdk.Client) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
				resp, err := c.Archive().StartReplay(ctx, &switchyardv1.StartReplayRequest{Spec: spec})
				cancel()
				if err != nil {
					return serverError("replay", err)
				}
				job := resp.GetReplay()
				if detach {
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "replay %s started; follow it with: switchyard archive status %s --wait\n", job.GetId(), job.GetId())
					return err
				}
				return followReplay(cmd, c.Archive(), job)
			})
		},
	}
	clientFlags(cmd, &opts)
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "start of the window: RFC 3339 time, date, or duration ago (24h, 7d)")
	f.StringVar(&to, "to", "", "end of the window (excluded; default now)")
	f.StringVar(&into, "trigger", "", "replay into this trigger (the events its filter matches)")
	f.BoolVar(&allMatching, "all-matching", false, "replay into every current trigger matching each event")
	f.StringVar(&filter, "filter", "", "CESQL condition the events must satisfy too")
	f.StringVar(&rate, "rate", "", "events per second at most, N or N/s or N/m (default 500/s)")
	f.BoolVar(&dryRun, "dry-run", false, "count what would be sent; send nothing")
	f.BoolVar(&detach, "detach", false, "start the replay and return; do not follow it")
	return cmd
}

// followReplay polls a job until it ends, drawing a progress bar on a
// terminal's standard error, then prints its summary line. An interrupt
// stops following (the job goes on).
func followReplay(cmd *cobra.Command, c switchyardv1.ArchiveServiceClient, job *switchyardv1.Replay) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stderr := cmd.ErrOrStderr()
	var bar *progressbar.ProgressBar
	if isTerminal(stderr) {
		desc := "replaying " + job.GetId()
		if job.GetSpec().GetDryRun() {
			desc = "counting " + job.GetId()
		}
		bar = progressbar.NewOptions(1000, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription(desc),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	finish := func() {
		if bar != nil {
			_ = bar.Exit()
			fmt.Fprintln(stderr)
			bar = nil
		}
	}
	defer finish()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	id := job.GetId()
	for job.GetState() == "running" {
		select {
		case <-ctx.Done():
			finish()
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "replay %s goes on on the server: switchyard archive status %s --wait, or archive cancel %s\n", id, id, id)
			return err
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := c.GetReplay(cctx, &switchyardv1.GetReplayRequest{Id: id})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return serverError("replay/"+id, err)
		}
		job = resp.GetReplay()
		if bar != nil {
			_ = bar.Set(int(job.GetProgress() * 1000))
		}
	}
	finish()
	if _, err := fmt.Fprintln(cmd.OutOrStdout(), replaySummary(job)); err != nil {
		return err
	}
	if job.GetState() != "succeeded" {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("replay %s %s", id, job.GetState())}
	}
	return nil
}

// replaySummary is the one line that says what a replay did.
func replaySummary(j *switchyardv1.Replay) string {
	s := j.GetSpec()
	where := "the matching triggers"
	if t := s.GetTrigger(); t != "" {
		where = "trigger " + t
	}
	var took string
	if j.GetFinishTime() != nil && j.GetCreateTime() != nil {
		took = " in " + j.GetFinishTime().AsTime().Sub(j.GetCreateTime().AsTime()).Round(time.Millisecond).String()
	}
	window := s.GetFrom().AsTime().UTC().Format(time.RFC3339) + " to " + s.GetTo().AsTime().UTC().Format(time.RFC3339)
	verb := "queued"
	if s.GetDryRun() {
		verb = "would queue"
	}
	line := fmt.Sprintf("replay %s %s%s: %d archived events read (%s), %d selected, %s %d deliveries into %s",
		j.GetId(), j.GetState(), took, j.GetScanned(), window, j.GetMatched(), verb, j.GetSent(), where)
	if j.GetError() != "" {
		line += ": " + j.GetError()
	}
	return line
}

// replayView is the -o json/yaml form of a replay job.
type replayView struct {
	ID          string  `json:"id"`
	State       string  `json:"state"`
	From        string  `json:"from"`
	To          string  `json:"to"`
	Trigger     string  `json:"trigger,omitempty"`
	AllMatching bool    `json:"allMatching,omitempty"`
	Filter      string  `json:"filter,omitempty"`
	Rate        int32   `json:"rate,omitempty"`
	DryRun      bool    `json:"dryRun,omitempty"`
	CreatedBy   string  `json:"createdBy,omitempty"`
	Scanned     int64   `json:"scanned"`
	Matched     int64   `json:"matched"`
	Sent        int64   `json:"sent"`
	Progress    float64 `json:"progress"`
	Position    string  `json:"position,omitempty"`
	Created     string  `json:"created,omitempty"`
	Finished    string  `json:"finished,omitempty"`
	Error       string  `json:"error,omitempty"`
}

func viewOf(j *switchyardv1.Replay) replayView {
	s := j.GetSpec()
	ts := func(t *timestamppb.Timestamp) string {
		if t == nil {
			return ""
		}
		return t.AsTime().UTC().Format(time.RFC3339Nano)
	}
	return replayView{ID: j.GetId(), State: j.GetState(), From: ts(s.GetFrom()), To: ts(s.GetTo()), Trigger: s.GetTrigger(),
		AllMatching: s.GetAllMatching(), Filter: s.GetFilter(), Rate: s.GetRate(), DryRun: s.GetDryRun(), CreatedBy: s.GetCreatedBy(),
		Scanned: j.GetScanned(), Matched: j.GetMatched(), Sent: j.GetSent(), Progress: j.GetProgress(), Position: ts(j.GetPosition()),
		Created: ts(j.GetCreateTime()), Finished: ts(j.GetFinishTime()), Error: j.GetError()}
}

func printReplays(w io.Writer, format outputFormat, jobs []*switchyardv1.Replay) error {
	views := make([]replayView, len(jobs))
	for i, j := range jobs {
		views[i] = viewOf(j)
	}
	switch format {
	case formatJSON:
		return writeJSON(w, views)
	case formatYAML:
		return writeYAML(w, views)
	}
	tab := newTable(w, "ID", "STATE", "INTO", "FROM", "TO", "PROGRESS", "READ", "SELECTED", "SENT")
	for _, v := range views {
		into := v.Trigger
		if v.AllMatching {
			into = "(all matching)"
		}
		if v.DryRun {
			into += " (dry run)"
		}
		tab.row(v.ID, v.State, into, v.From, v.To, fmt.Sprintf("%.0f%%", v.Progress*100),
			strconv.FormatInt(v.Scanned, 10), strconv.FormatInt(v.Matched, 10), strconv.FormatInt(v.Sent, 10))
	}
	return tab.flush()
}

func newArchiveStatusCmd() *cobra.Command {
	var (
		opts clientOptions
		out  outputFormat
		wait bool
	)
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a replay's progress (--wait follows it to its end)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return opts.withClient(func(c *sdk.Client) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
				resp, err := c.Archive().GetReplay(ctx, &switchyardv1.GetReplayRequest{Id: args[0]})
				cancel()
				if err != nil {
					return serverError("replay/"+args[0], err)
				}
				if wait {
					return followReplay(cmd, c.Archive(), resp.GetReplay())
				}
				return printReplays(cmd.OutOrStdout(), out, []*switchyardv1.Replay{resp.GetReplay()})
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the replay until it ends, then print its summary line")
	return cmd
}

func newArchiveListCmd() *cobra.Command {
	var (
		opts clientOptions
		out  outputFormat
	)
	cmd := &cobra.Command{
		Use:   "replays",
		Short: "List the replays (the 100 most recent), newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return archiveCall(&opts, func(ctx context.Context, c switchyardv1.ArchiveServiceClient) error {
				resp, err := c.ListReplays(ctx, &switchyardv1.ListReplaysRequest{})
				if err != nil {
					return serverError("replays", err)
				}
				return printReplays(cmd.OutOrStdout(), out, resp.GetReplays())
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	return cmd
}

func newArchiveCancelCmd() *cobra.Command {
	var opts clientOptions
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Stop a running replay (what it queued stays queued)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return archiveCall(&opts, func(ctx context.Context, c switchyardv1.ArchiveServiceClient) error {
				resp, err := c.CancelReplay(ctx, &switchyardv1.CancelReplayRequest{Id: args[0]})
				if err != nil {
					return serverError("replay/"+args[0], err)
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), replaySummary(resp.GetReplay()))
				return err
			})
		},
	}
	clientFlags(cmd, &opts)
	return cmd
}

// parseWhen reads a point in time: RFC 3339, a date (UTC midnight), "now",
// or a duration ago ("90m", "24h", "7d", "-24h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d := strings.TrimPrefix(s, "-")
	if days, ok := strings.CutSuffix(d, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err == nil && n >= 0 {
			return now.Add(-time.Duration(n * 24 * float64(time.Hour))), nil
		}
	}
	if v, err := time.ParseDuration(d); err == nil && v >= 0 {
		return now.Add(-v), nil
	}
	return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-12-01T00:00:00Z), a date (2026-12-01), now, or a duration ago (24h, 7d); got %q", s)
}

// parseRate reads events per second: "500", "500/s", "6000/m" (rounded
// up to whole events per second).
func parseRate(s string) (int32, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.ParseInt(num, 10, 32)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive number of events, as 500/s or 6000/m; got %q", s)
	}
	switch unit {
	case "", "s":
	case "m":
		n = (n + 59) / 60
	default:
		return 0, errors.New("the unit is /s or /m, got /" + unit)
	}
	return int32(n), nil
}
