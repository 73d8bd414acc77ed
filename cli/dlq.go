package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
)

func init() {
	extraCommands = append(extraCommands, newDLQCmd)
}

// maxDLQPageSize is the largest page ListDeadLetters returns.
const maxDLQPageSize = 1000

// isTerminal reports whether f (standard input or standard error of a
// command) is an interactive terminal. Tests replace it.
var isTerminal = func(f any) bool {
	fd, ok := f.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(fd.Fd()))
}

// newDLQCmd builds "dlq" and its subcommands.
func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "dlq",
		Aliases: []string{"deadletters", "dead-letters"},
		Short:   "Inspect, replay and purge dead letters",
		Long: `Inspect, replay and purge the dead-letter queues (DLQ): every trigger has
one, holding the events it could not deliver with the story of their attempts.

A dead letter is named "<trigger>/<entry>" (the ID column of "dlq list"), e.g.
orders/1764140000000-0. Replaying puts dead letters back into a trigger's queue
with fresh attempts; their earlier attempts stay in their history, numbered by
round (0 for the event's first life, n after its n-th replay).`,
		Example: `  switchyard dlq list --trigger orders --since 1h
  switchyard dlq show orders/1764140000000-0
  switchyard dlq replay --trigger orders --all --rate 50/s
  switchyard dlq purge --trigger orders --older-than 7d`,
	}
	cmd.AddCommand(newDLQListCmd(), newDLQShowCmd(), newDLQReplayCmd(), newDLQPurgeCmd(), newDLQStatsCmd())
	return cmd
}

// withDLQ runs f with the DeadLetterService client for the flags.
func (o *clientOptions) withDLQ(f func(switchyardv1.DeadLetterServiceClient) error) error {
	return o.withClient(func(c *sdk.Client) error { return f(c.DeadLetters()) })
}

// callContext returns a context bounded by --timeout for one unary call.
func (o *clientOptions) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.timeout)
}

// reasonNames are the CLI names of the dead-letter reasons.
var reasonNames = map[switchyardv1.DeadLetterReason]string{
	switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS:     "max-attempts",
	switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_AGE:          "max-age",
	switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE:    "non-retryable",
	switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REJECTED:         "rejected",
	switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID:    "reply-invalid",
	switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT:        "hop-limit",
	switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_TARGET_FORBIDDEN: "target-forbidden",
}

// reasonName renders a reason as the CLI names it ("non-retryable"), "-"
// when unspecified.
func reasonName(r switchyardv1.DeadLetterReason) string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	if r == switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_UNSPECIFIED {
		return "-"
	}
	return r.String()
}

// parseReason reads a --reason value: max-attempts, max-age, non-retryable,
// rejected, reply-invalid, hop-limit or target-forbidden, case-insensitive, with '_' accepted
// for '-' and the enum name ("DEAD_LETTER_REASON_MAX_AGE") accepted too.
func parseReason(s string) (switchyardv1.DeadLetterReason, error) {
	norm := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	norm = strings.TrimPrefix(norm, "dead-letter-reason-")
	for r, n := range reasonNames {
		if n == norm {
			return r, nil
		}
	}
	return 0, invalidf("unknown --reason %q: want max-attempts, max-age, non-retryable, rejected, reply-invalid, hop-limit or target-forbidden", s)
}

// parseAge reads a non-negative age: a Go duration ("90m", "1h30m") or a
// whole number of days ("7d").
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		days, ok := strings.CutSuffix(s, "d")
		n, nerr := strconv.ParseUint(days, 10, 16)
		if !ok || nerr != nil {
			return 0, invalidf("invalid duration %q: want e.g. 90s, 30m, 12h or 7d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	}
	if d < 0 {
		return 0, invalidf("invalid duration %q: must not be negative", s)
	}
	return d, nil
}

// parseSince reads --since: a duration back from now ("1h", "7d") or an
// RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
		return t, nil
	}
	d, err := parseAge(s)
	if err != nil {
		return time.Time{}, invalidf("invalid --since %q: want a duration (30m, 12h, 7d) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
	}
	return now.Add(-d), nil
}

// replayRate is the value of replay --rate: entries per second, given as
// "50" or "50/s"; 0 means no limit.
type replayRate float64

// String implements pflag.Value.
func (r *replayRate) String() string {
	if *r == 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(*r), 'f', -1, 64) + "/s"
}

// Set implements pflag.Value.
func (r *replayRate) Set(s string) error {
	num := strings.TrimSpace(s)
	num, _ = strings.CutSuffix(num, "/s")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Errorf("want entries per second such as 50 or 50/s (0 for no limit)")
	}
	*r = replayRate(v)
	return nil
}

// Type implements pflag.Value.
func (r *replayRate) Type() string { return "N/s" }

// splitDLQID splits "<trigger>/<entry>".
func splitDLQID(id string) (trigger, entry string, ok bool) {
	trigger, entry, ok = strings.Cut(id, "/")
	return trigger, entry, ok && trigger != "" && entry != ""
}

// resolveIDsTrigger checks --id values against --trigger: an id is
// "<trigger>/<entry>" or, with --trigger, a bare "<entry>". When trigger is
// empty, it is taken from the ids, which must then all name the same one.
func resolveIDsTrigger(trigger string, ids []string) (string, error) {
	inferredFrom := "" // the id that named the trigger, when --trigger is not given
	for _, id := range ids {
		t, _, ok := splitDLQID(id)
		switch {
		case !ok && strings.Contains(id, "/"), id == "":
			return "", invalidf("invalid dead letter id %q: want <trigger>/<entry> as printed by dlq list", id)
		case !ok && trigger == "":
			return "", invalidf("dead letter id %q has no trigger: pass --trigger or give <trigger>/<entry>", id)
		case !ok:
		case trigger == "":
			trigger, inferredFrom = t, id
		case t != trigger && inferredFrom != "":
			return "", invalidf("dead letters %s and %s belong to different triggers: give the ids of one trigger at a time", inferredFrom, id)
		case t != trigger:
			return "", invalidf("dead letter %s belongs to trigger %q, not %q", id, t, trigger)
		}
	}
	return trigger, nil
}

// plural returns "dead letter" or "dead letters" for n.
func plural(n int64) string {
	if n == 1 {
		return "dead letter"
	}
	return "dead letters"
}

// timestamp renders ts in RFC 3339 UTC with milliseconds, "" when unset.
func timestamp(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// preciseDuration renders an attempt duration: to the microsecond below a
// second, to the millisecond above.
func preciseDuration(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	v := d.AsDuration()
	if v < time.Second {
		return v.Round(time.Microsecond).String()
	}
	return v.Round(time.Millisecond).String()
}

// deadLetterView is the json/yaml form of a dead letter: times in RFC 3339,
// durations as Go duration strings, reasons by their CLI names, and the
// event in the CloudEvents JSON format.
type deadLetterView struct {
	ID           string          `json:"id"`
	Trigger      string          `json:"trigger"`
	Target       string          `json:"target,omitempty"`
	Reason       string          `json:"reason"`
	ReasonDetail string          `json:"reason_detail,omitempty"`
	DeadTime     string          `json:"dead_time,omitempty"`
	AcceptTime   string          `json:"accept_time,omitempty"`
	TraceID      string          `json:"trace_id,omitempty"`
	Replays      int32           `json:"replays"`
	Event        json.RawMessage `json:"event"`
	Attempts     []attemptView   `json:"attempts"`
}

// attemptView is the json/yaml form of an attempt.
type attemptView struct {
	Round      int32  `json:"round"`
	Number     int32  `json:"number"`
	StartTime  string `json:"start_time,omitempty"`
	Duration   string `json:"duration,omitempty"`
	Code       string `json:"code"`
	HTTPStatus int32  `json:"http_status,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	Message    string `json:"message,omitempty"`
}

// eventJSON renders an event in the CloudEvents JSON format
// (cloudevent.EncodeStructured, whose data is byte-exact); an event that
// format refuses falls back to its protobuf JSON mapping.
//
// Binary data that is UTF-8 text of a JSON or text/* content type (as the
// sdk and the binary HTTP mode store it) is rendered as text data, so that
// JSON data shows as JSON ("data":{...}, its bytes verbatim) and text as a
// JSON string rather than as data_base64; either decodes to the same bytes.
func eventJSON(ev *pb.CloudEvent) []byte {
	if ev == nil {
		return []byte("null")
	}
	if bin, ok := ev.GetData().(*pb.CloudEvent_BinaryData); ok && utf8.Valid(bin.BinaryData) && textualContentType(ev) {
		text := proto.Clone(ev).(*pb.CloudEvent)
		text.Data = &pb.CloudEvent_TextData{TextData: string(bin.BinaryData)}
		ev = text
	}
	if b, err := cloudevent.EncodeStructured(ev); err == nil {
		return b
	}
	b, err := protojson.Marshal(ev)
	if err != nil {
		return []byte("null")
	}
	return b
}

// eventViewJSON is eventJSON for the json and yaml views, which show JSON
// data as JSON even when white space surrounds it (a body ending with a
// newline): the views re-indent the whole document anyway, so they never
// kept the data's bytes. The table view keeps them (data_base64 then).
func eventViewJSON(ev *pb.CloudEvent) []byte {
	if ev == nil || !jsonContentType(ev) {
		return eventJSON(ev)
	}
	var data string
	switch d := ev.GetData().(type) {
	case *pb.CloudEvent_TextData:
		data = d.TextData
	case *pb.CloudEvent_BinaryData:
		data = string(d.BinaryData)
	default:
		return eventJSON(ev)
	}
	if t := strings.Trim(data, " \t\r\n"); len(t) < len(data) && json.Valid([]byte(t)) {
		trimmed := proto.Clone(ev).(*pb.CloudEvent)
		trimmed.Data = &pb.CloudEvent_TextData{TextData: t}
		ev = trimmed
	}
	return eventJSON(ev)
}

// jsonContentType reports whether the event's datacontenttype is absent
// (JSON implied) or JSON (application/json, +json).
func jsonContentType(ev *pb.CloudEvent) bool {
	ct, ok := cloudevent.Attribute(ev, cloudevent.AttrDataContentType)
	if !ok {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (strings.HasSuffix(mt, "/json") || strings.HasSuffix(mt, "+json"))
}

// newDeadLetterView converts a dead letter to its json/yaml form.
func newDeadLetterView(dl *switchyardv1.DeadLetter) deadLetterView {
	v := deadLetterView{
		ID:           dl.GetId(),
		Trigger:      dl.GetTrigger(),
		Target:       dl.GetTarget(),
		Reason:       reasonName(dl.GetReason()),
		ReasonDetail: dl.GetReasonDetail(),
		DeadTime:     timestamp(dl.GetDeadTime()),
		AcceptTime:   timestamp(dl.GetAcceptTime()),
		TraceID:      dl.GetTraceId(),
		Replays:      dl.GetReplays(),
		Event:        eventViewJSON(dl.GetEvent()),
		Attempts:     []attemptView{},
	}
	for _, a := range dl.GetAttempts() {
		av := attemptView{
			Round:      a.GetRound(),
			Number:     a.GetNumber(),
			StartTime:  timestamp(a.GetStartTime()),
			Code:       displayCode(a.GetCode()),
			HTTPStatus: a.GetHttpStatus(),
			Message:    a.GetMessage(),
		}
		if d := a.GetDuration(); d != nil {
			av.Duration = d.AsDuration().String()
		}
		if d := a.GetRetryAfter(); d != nil {
			av.RetryAfter = d.AsDuration().String()
		}
		v.Attempts = append(v.Attempts, av)
	}
	return v
}

// textualContentType reports whether the event's datacontenttype is absent
// (JSON implied), JSON (application/json, +json) or text/*.
func textualContentType(ev *pb.CloudEvent) bool {
	ct, ok := cloudevent.Attribute(ev, cloudevent.AttrDataContentType)
	if !ok {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "/json") || strings.HasSuffix(mt, "+json")
}

// displayCode renders an attempt's code with the canonical gRPC name
// ("INVALID_ARGUMENT") when it is given as a Go code name
// ("InvalidArgument"); other codes ("HTTP 503", "LEASE_EXPIRED") are kept.
func displayCode(s string) string {
	for c, name := range codeNames {
		if c.String() == s {
			return name
		}
	}
	return s
}

// eventSummary names an event in tables: "type (id)", cut to 60 runes.
func eventSummary(ev *pb.CloudEvent) string {
	if ev == nil {
		return "-"
	}
	s := ev.GetType() + " (" + ev.GetId() + ")"
	if r := []rune(s); len(r) > 60 {
		s = string(r[:59]) + "…"
	}
	return s
}

// printDeadLetters renders a page of dead letters.
func printDeadLetters(w io.Writer, format outputFormat, dls []*switchyardv1.DeadLetter, now time.Time) error {
	if format == formatJSON || format == formatYAML {
		views := make([]deadLetterView, len(dls))
		for i, dl := range dls {
			views[i] = newDeadLetterView(dl)
		}
		if format == formatJSON {
			return writeJSON(w, views)
		}
		return writeYAML(w, views)
	}
	tab := newTable(w, "ID", "TRIGGER", "EVENT", "REASON", "ATTEMPTS", "LAST CODE", "DEAD")
	for _, dl := range dls {
		last := "-"
		if as := dl.GetAttempts(); len(as) > 0 {
			last = displayCode(as[len(as)-1].GetCode())
		}
		tab.row(dl.GetId(), dl.GetTrigger(), eventSummary(dl.GetEvent()), reasonName(dl.GetReason()),
			strconv.Itoa(len(dl.GetAttempts())), last, age(dl.GetDeadTime(), now))
	}
	return tab.flush()
}

// newDLQListCmd builds "dlq list".
func newDLQListCmd() *cobra.Command {
	var (
		opts                          clientOptions
		out                           outputFormat
		trigger, since, reason, token string
		limit                         int
		allPages                      bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List dead letters, oldest first",
		Long: `List dead letters, oldest first, of one trigger (--trigger) or of every
trigger (sorted by trigger name).

Columns: ID to give to dlq show, replay and purge, TRIGGER, EVENT type and id,
REASON the event died (max-attempts, max-age, non-retryable, rejected; or
reply-invalid and hop-limit for a function's reply event that was refused,
kept instead of the event it answered, which was acknowledged),
ATTEMPTS made across all its rounds, LAST CODE answered, DEAD time since it
entered the queue.

--limit entries are printed per call; when more remain, the command to get the
next page is printed on standard error. --all-pages prints every page (in pages
of 1000 unless --limit is given).`,
		Example: `  switchyard dlq list --trigger orders --reason non-retryable
  switchyard dlq list --since 2026-01-02T15:00:00Z -o json
  switchyard dlq list --all-pages -o json | jq -r '.[].id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &switchyardv1.ListDeadLettersRequest{Trigger: trigger, PageToken: token}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				req.Since = timestamppb.New(t)
			}
			if reason != "" {
				r, err := parseReason(reason)
				if err != nil {
					return err
				}
				req.Reason = r
			}
			if limit < 1 || limit > maxDLQPageSize {
				return invalidf("--limit must be between 1 and %d, got %d", maxDLQPageSize, limit)
			}
			if allPages && token != "" {
				return invalidf("--page-token and --all-pages cannot be used together")
			}
			req.PageSize = int32(limit)
			if allPages && !cmd.Flags().Changed("limit") {
				req.PageSize = maxDLQPageSize
			}
			return opts.withDLQ(func(c switchyardv1.DeadLetterServiceClient) error {
				var dls []*switchyardv1.DeadLetter
				for {
					ctx, cancel := opts.callContext(cmd.Context())
					resp, err := c.ListDeadLetters(ctx, req)
					cancel()
					if err != nil {
						return serverError("", err)
					}
					dls = append(dls, resp.GetDeadLetters()...)
					req.PageToken = resp.GetNextPageToken()
					if !allPages || req.PageToken == "" {
						break
					}
				}
				if len(dls) == 0 && out == formatTable {
					fmt.Fprintln(cmd.ErrOrStderr(), "no dead letters")
				} else if err := printDeadLetters(cmd.OutOrStdout(), out, dls, time.Now()); err != nil {
					return err
				}
				if req.PageToken != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "more dead letters: add --page-token %s\n", req.PageToken)
				}
				return nil
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	cmd.Flags().StringVar(&trigger, "trigger", "", "only this trigger's dead letters")
	cmd.Flags().StringVar(&since, "since", "", "only entries dead since this time: a duration back from now (30m, 12h, 7d) or an RFC 3339 time")
	cmd.Flags().StringVar(&reason, "reason", "", "only entries dead for this reason: max-attempts, max-age, non-retryable, rejected, reply-invalid, hop-limit or target-forbidden")
	cmd.Flags().IntVar(&limit, "limit", 50, fmt.Sprintf("entries per page (1 to %d)", maxDLQPageSize))
	cmd.Flags().StringVar(&token, "page-token", "", "continue a previous listing (printed on standard error when more remain)")
	cmd.Flags().BoolVar(&allPages, "all-pages", false, "list every page")
	_ = cmd.RegisterFlagCompletionFunc("trigger", completeTriggerNames(&opts))
	_ = cmd.RegisterFlagCompletionFunc("reason", cobra.FixedCompletions(
		[]string{"max-attempts", "max-age", "non-retryable", "rejected", "reply-invalid", "hop-limit", "target-forbidden"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// newDLQShowCmd builds "dlq show".
func newDLQShowCmd() *cobra.Command {
	var (
		opts    clientOptions
		out     outputFormat
		trigger string
	)
	cmd := &cobra.Command{
		Use:   "show [--trigger NAME] ID",
		Short: "Show one dead letter with its event and attempts",
		Long: `Show one dead letter: why and when it died, the event in the CloudEvents JSON
format (its data byte for byte), and every delivery attempt, across replays:
ROUND is 0 for the event's first life and n after its n-th replay.

ID is given as to dlq replay and purge: "<trigger>/<entry>" as printed by dlq
list, or a bare "<entry>" with --trigger. -o json and -o yaml print the same
as an object, with the event as a JSON object whose JSON data shows as JSON.`,
		Example: `  switchyard dlq show orders/1764140000000-0
  switchyard dlq show --trigger orders 1764140000000-0
  switchyard dlq show orders/1764140000000-0 -o json | jq .event.data`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeDLQIDs(&opts),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			trig, err := resolveIDsTrigger(trigger, []string{id})
			if err != nil {
				return err
			}
			if _, _, ok := splitDLQID(id); !ok {
				id = trig + "/" + id
			}
			return opts.withDLQ(func(c switchyardv1.DeadLetterServiceClient) error {
				ctx, cancel := opts.callContext(cmd.Context())
				defer cancel()
				resp, err := c.GetDeadLetter(ctx, &switchyardv1.GetDeadLetterRequest{Id: id})
				if err != nil {
					return serverError("dead letter "+id, err)
				}
				return printDeadLetter(cmd.OutOrStdout(), out, resp.GetDeadLetter(), time.Now())
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	cmd.Flags().StringVar(&trigger, "trigger", "", "trigger of the dead letter, when ID is a bare entry")
	_ = cmd.RegisterFlagCompletionFunc("trigger", completeTriggerNames(&opts))
	return cmd
}

// printDeadLetter renders one dead letter; the table format is the readable
// view: metadata, event, attempts.
func printDeadLetter(w io.Writer, format outputFormat, dl *switchyardv1.DeadLetter, now time.Time) error {
	switch format {
	case formatJSON:
		return writeJSON(w, newDeadLetterView(dl))
	case formatYAML:
		return writeYAML(w, newDeadLetterView(dl))
	}
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	when := func(ts *timestamppb.Timestamp) string {
		if ts == nil {
			return "-"
		}
		return timestamp(ts) + " (" + age(ts, now) + " ago)"
	}
	reason := reasonName(dl.GetReason())
	if d := dl.GetReasonDetail(); d != "" {
		reason += ": " + d
	}
	meta := newTable(w, "ID:", dl.GetId())
	meta.row("Trigger:", orDash(dl.GetTrigger()))
	meta.row("Target:", orDash(dl.GetTarget()))
	meta.row("Reason:", reason)
	meta.row("Dead:", when(dl.GetDeadTime()))
	meta.row("Accepted:", when(dl.GetAcceptTime()))
	meta.row("Trace ID:", orDash(dl.GetTraceId()))
	meta.row("Replays:", strconv.Itoa(int(dl.GetReplays())))
	if err := meta.flush(); err != nil {
		return err
	}
	// The event goes out as EncodeStructured made it, untouched, so that its
	// data is byte-exact.
	if _, err := fmt.Fprintf(w, "\nEvent:\n%s\n\nAttempts:\n", eventJSON(dl.GetEvent())); err != nil {
		return err
	}
	if len(dl.GetAttempts()) == 0 {
		_, err := io.WriteString(w, "none\n")
		return err
	}
	tab := newTable(w, "ROUND", "#", "START", "DURATION", "CODE", "HTTP", "RETRY_AFTER", "MESSAGE")
	for _, a := range dl.GetAttempts() {
		httpStatus, retry := "-", "-"
		if a.GetHttpStatus() != 0 {
			httpStatus = strconv.Itoa(int(a.GetHttpStatus()))
		}
		if a.GetRetryAfter() != nil {
			retry = a.GetRetryAfter().AsDuration().String()
		}
		tab.row(strconv.Itoa(int(a.GetRound())), strconv.Itoa(int(a.GetNumber())), orDash(timestamp(a.GetStartTime())),
			preciseDuration(a.GetDuration()), orDash(displayCode(a.GetCode())), httpStatus, retry, orDash(a.GetMessage()))
	}
	return tab.flush()
}

// completeDLQIDs completes dead letter ids from the first page, best effort.
func completeDLQIDs(opts *clientOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var ids []string
		trigger, _, _ := strings.Cut(toComplete, "/")
		_ = opts.withDLQ(func(c switchyardv1.DeadLetterServiceClient) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
			defer cancel()
			req := &switchyardv1.ListDeadLettersRequest{PageSize: maxDLQPageSize}
			if strings.Contains(toComplete, "/") {
				req.Trigger = trigger
			}
			resp, err := c.ListDeadLetters(ctx, req)
			for _, dl := range resp.GetDeadLetters() {
				ids = append(ids, dl.GetId())
			}
			return err
		})
		return ids, cobra.ShellCompDirectiveNoFileComp
	}
}

// newDLQReplayCmd builds "dlq replay".
func newDLQReplayCmd() *cobra.Command {
	var (
		opts               clientOptions
		trigger, toTrigger string
		ids                []string
		all, dryRun        bool
		rate               replayRate
	)
	cmd := &cobra.Command{
		Use:   "replay --trigger NAME (--id ID... | --all)",
		Short: "Put dead letters back into a trigger's queue",
		Long: `Put dead letters of a trigger back into its queue (or, with --to-trigger,
into another trigger's) with fresh attempts. Their earlier attempts stay in
their history: if they die again, dlq show lists both rounds. Into an ordered
trigger, an event goes back into the lane of its key (with --to-trigger, the
key that trigger's ordering reads from the event): after the events of the
key queued before it, or first when its death blocks the lane.

Give the entries with --id (repeatable, or comma-separated; "<trigger>/<entry>"
as printed by dlq list, or a bare "<entry>"), or replay every entry present when
the command starts with --all. --rate limits the entries queued per second.
--dry-run only counts what would be replayed.

Progress is shown on standard error when it is a terminal. --timeout bounds the
wait for each progress report of the server (a dry run reports once, at the
end). An interrupted replay neither loses nor duplicates entries: run it again.

The last line printed is "replayed R of T dead letters into TRIGGER (M
missing)", M counting the entries no longer in the queue.`,
		Example: `  switchyard dlq replay --trigger orders --id orders/1764140000000-0
  switchyard dlq replay --trigger orders --all --rate 50/s
  switchyard dlq replay --trigger orders --all --to-trigger orders-v2 --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(ids) > 0 && all {
				return invalidf("--id and --all cannot be used together: give one of them")
			}
			if len(ids) == 0 && !all {
				return invalidf("nothing to replay: give --id ID (repeatable) or --all")
			}
			from, err := resolveIDsTrigger(trigger, ids)
			if err != nil {
				return err
			}
			if from == "" {
				return invalidf("--trigger is required: the trigger whose dead letters to replay")
			}
			req := &switchyardv1.ReplayDeadLettersRequest{
				Trigger: from, Ids: ids, All: all, ToTrigger: toTrigger, Rate: float64(rate), DryRun: dryRun,
			}
			return opts.withDLQ(func(c switchyardv1.DeadLetterServiceClient) error {
				return runReplay(cmd, c, req, opts.timeout)
			})
		},
	}
	clientFlags(cmd, &opts)
	cmd.Flags().StringVar(&trigger, "trigger", "", "trigger whose dead letters to replay (required unless the ids name it)")
	cmd.Flags().StringSliceVar(&ids, "id", nil, "dead letter to replay; repeatable")
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter of the trigger")
	cmd.Flags().StringVar(&toTrigger, "to-trigger", "", "queue the events for this trigger instead (default: --trigger)")
	cmd.Flags().Var(&rate, "rate", "entries per second, e.g. 50 or 50/s (default: no limit)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be replayed; change nothing")
	cmd.Flags().Lookup("timeout").Usage = "longest wait for the server's next progress report"
	_ = cmd.RegisterFlagCompletionFunc("trigger", completeTriggerNames(&opts))
	_ = cmd.RegisterFlagCompletionFunc("to-trigger", completeTriggerNames(&opts))
	return cmd
}

// runReplay streams a replay, showing a progress bar on a terminal, and
// prints the summary. The stream ends when no progress report comes for
// timeout (plus the time a rate-limited chunk takes), or on SIGINT/SIGTERM;
// the error then says how far the replay got.
func runReplay(cmd *cobra.Command, c switchyardv1.DeadLetterServiceClient, req *switchyardv1.ReplayDeadLettersRequest, timeout time.Duration) error {
	sigCtx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancelCause(sigCtx)
	defer cancel(nil)
	// The server reports after each chunk of entries; a rate-limited chunk
	// takes up to a second, or 1/rate below one entry per second.
	idle := timeout
	if r := req.GetRate(); r > 0 {
		idle += time.Duration(math.Max(1, 1/r) * float64(time.Second))
	}
	errStalled := fmt.Errorf("no progress report from the server for %v (--timeout)", idle)
	watchdog := time.AfterFunc(idle, func() { cancel(errStalled) })
	defer watchdog.Stop()

	into := req.GetToTrigger()
	if into == "" {
		into = req.GetTrigger()
	}
	stderr := cmd.ErrOrStderr()
	var bar *progressbar.ProgressBar
	defer func() {
		if bar != nil {
			_ = bar.Exit()
			fmt.Fprintln(stderr)
		}
	}()
	last := &switchyardv1.ReplayDeadLettersResponse{}
	seen := false
	stream, err := c.ReplayDeadLetters(ctx, req)
	for err == nil {
		var p *switchyardv1.ReplayDeadLettersResponse
		if p, err = stream.Recv(); err != nil {
			break
		}
		watchdog.Reset(idle)
		last, seen = p, true
		if bar == nil && !req.GetDryRun() && !p.GetDone() && isTerminal(stderr) {
			bar = progressbar.NewOptions64(p.GetTotal(),
				progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription("replaying into "+into),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		if bar != nil {
			_ = bar.Set64(p.GetReplayed() + p.GetMissing())
		}
		if p.GetDone() {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
		if !last.GetDone() {
			err = errors.New("the server ended the replay without a final report")
		}
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			err = cause
		}
		err = serverError("replay "+req.GetTrigger(), err)
		if seen {
			err = fmt.Errorf("%w\ninterrupted after %d of %d %s (%d missing); run the replay again to finish it",
				err, last.GetReplayed(), last.GetTotal(), plural(last.GetTotal()), last.GetMissing())
		}
		return err
	}
	if bar != nil {
		_ = bar.Finish()
		bar = nil
	}
	out := cmd.OutOrStdout()
	if req.GetDryRun() {
		fmt.Fprintf(out, "dry run: would replay %d of %d (%d missing)\n", last.GetReplayed(), last.GetTotal(), last.GetMissing())
		return nil
	}
	fmt.Fprintf(out, "replayed %d of %d %s into %s (%d missing)\n",
		last.GetReplayed(), last.GetTotal(), plural(last.GetTotal()), into, last.GetMissing())
	return nil
}

// newDLQPurgeCmd builds "dlq purge".
func newDLQPurgeCmd() *cobra.Command {
	var (
		opts             clientOptions
		trigger, olderAs string
		ids              []string
		all, yes         bool
	)
	cmd := &cobra.Command{
		Use:   "purge --trigger NAME (--id ID... | --older-than DURATION | --all)",
		Short: "Delete dead letters",
		Long: `Delete dead letters of a trigger: the given ones (--id, repeatable or
comma-separated), those dead for longer than --older-than (30m, 12h, 7d), or
all of them (--all).

Unless --yes is given, the command asks for confirmation on the terminal; when
standard input is not a terminal it refuses to purge without --yes.`,
		Example: `  switchyard dlq purge --trigger orders --older-than 7d
  switchyard dlq purge --trigger orders --all --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			modes := 0
			for _, set := range []bool{len(ids) > 0, olderAs != "", all} {
				if set {
					modes++
				}
			}
			if modes != 1 {
				return invalidf("give exactly one of --id ID (repeatable), --older-than DURATION and --all")
			}
			trig, err := resolveIDsTrigger(trigger, ids)
			if err != nil {
				return err
			}
			req := &switchyardv1.PurgeDeadLettersRequest{Trigger: trig, Ids: ids, All: all}
			if olderAs != "" {
				d, err := parseAge(olderAs)
				if err != nil {
					return fmt.Errorf("--older-than: %w", err)
				}
				req.OlderThan = durationpb.New(d)
			}
			if trig == "" {
				return invalidf("--trigger is required: the trigger whose dead letters to purge")
			}
			return opts.withDLQ(func(c switchyardv1.DeadLetterServiceClient) error {
				if !yes {
					if err := confirmPurge(cmd, c, &opts, req); err != nil {
						return err
					}
				}
				ctx, cancel := opts.callContext(cmd.Context())
				defer cancel()
				resp, err := c.PurgeDeadLetters(ctx, req)
				if err != nil {
					return serverError("purge "+trig, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "purged %d %s\n", resp.GetPurged(), plural(resp.GetPurged()))
				return nil
			})
		},
	}
	clientFlags(cmd, &opts)
	cmd.Flags().StringVar(&trigger, "trigger", "", "trigger whose dead letters to purge (required unless the ids name it)")
	cmd.Flags().StringSliceVar(&ids, "id", nil, "dead letter to delete; repeatable")
	cmd.Flags().StringVar(&olderAs, "older-than", "", "delete entries dead for longer than this (30m, 12h, 7d)")
	cmd.Flags().BoolVar(&all, "all", false, "delete every dead letter of the trigger")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	_ = cmd.RegisterFlagCompletionFunc("trigger", completeTriggerNames(&opts))
	return cmd
}

// errNotConfirmed is returned when the user does not confirm a purge.
var errNotConfirmed = errors.New("purge cancelled: nothing deleted")

// confirmPurge asks on the terminal before a purge; without a terminal on
// standard input it refuses, asking for --yes.
func confirmPurge(cmd *cobra.Command, c switchyardv1.DeadLetterServiceClient, opts *clientOptions, req *switchyardv1.PurgeDeadLettersRequest) error {
	in := cmd.InOrStdin()
	if !isTerminal(in) {
		return invalidf("refusing to purge without confirmation: standard input is not a terminal; pass --yes to confirm")
	}
	trig := req.GetTrigger()
	var question string
	switch {
	case len(req.GetIds()) > 0:
		n := int64(len(req.GetIds()))
		question = fmt.Sprintf("Delete %d %s of %s?", n, plural(n), trig)
	case req.GetOlderThan() != nil:
		question = fmt.Sprintf("Delete the dead letters of %s dead for longer than %v?", trig, req.GetOlderThan().AsDuration())
	default:
		question = fmt.Sprintf("Delete all dead letters of %s?", trig)
		if n, ok := dlqEntries(cmd.Context(), c, opts, trig); ok {
			if n == 0 {
				question = fmt.Sprintf("Delete all dead letters of %s (it holds none)?", trig)
			} else {
				question = fmt.Sprintf("Delete %d %s of %s?", n, plural(n), trig)
			}
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s [y/N] ", question)
	answer, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && answer == "" {
		fmt.Fprintln(cmd.ErrOrStderr())
		return errNotConfirmed
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}

// dlqEntries returns the number of entries in trigger's DLQ, if the server
// tells.
func dlqEntries(ctx context.Context, c switchyardv1.DeadLetterServiceClient, opts *clientOptions, trigger string) (int64, bool) {
	ctx, cancel := opts.callContext(ctx)
	defer cancel()
	resp, err := c.GetDeadLetterStats(ctx, &switchyardv1.GetDeadLetterStatsRequest{})
	if err != nil {
		return 0, false
	}
	for _, q := range resp.GetQueues() {
		if q.GetTrigger() == trigger {
			return q.GetEntries(), true
		}
	}
	return 0, false
}

// dlqStatsView is the json/yaml form of one DeadLetterQueueStats.
type dlqStatsView struct {
	Trigger    string `json:"trigger"`
	Entries    int64  `json:"entries"`
	OldestTime string `json:"oldest_time,omitempty"`
	Added      int64  `json:"added"`
	Evicted    int64  `json:"evicted"`
}

// newDLQStatsCmd builds "dlq stats".
func newDLQStatsCmd() *cobra.Command {
	var (
		opts clientOptions
		out  outputFormat
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Summarise the dead-letter queue of every trigger",
		Long: `Summarise the dead-letter queue of every trigger.

Columns: TRIGGER, ENTRIES held, OLDEST age of the oldest entry, ADDED entries
ever dead-lettered, EVICTED entries removed by retention (queue size or age
limits).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return opts.withDLQ(func(c switchyardv1.DeadLetterServiceClient) error {
				ctx, cancel := opts.callContext(cmd.Context())
				defer cancel()
				resp, err := c.GetDeadLetterStats(ctx, &switchyardv1.GetDeadLetterStatsRequest{})
				if err != nil {
					return serverError("", err)
				}
				qs := resp.GetQueues()
				if len(qs) == 0 && out == formatTable {
					fmt.Fprintln(cmd.ErrOrStderr(), "no dead-letter queues")
					return nil
				}
				return printDLQStats(cmd.OutOrStdout(), out, qs, time.Now())
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	return cmd
}

// printDLQStats renders DLQ statistics.
func printDLQStats(w io.Writer, format outputFormat, qs []*switchyardv1.DeadLetterQueueStats, now time.Time) error {
	if format == formatJSON || format == formatYAML {
		views := make([]dlqStatsView, len(qs))
		for i, q := range qs {
			views[i] = dlqStatsView{Trigger: q.GetTrigger(), Entries: q.GetEntries(), OldestTime: timestamp(q.GetOldestTime()),
				Added: q.GetAdded(), Evicted: q.GetEvicted()}
		}
		if format == formatJSON {
			return writeJSON(w, views)
		}
		return writeYAML(w, views)
	}
	tab := newTable(w, "TRIGGER", "ENTRIES", "OLDEST", "ADDED", "EVICTED")
	for _, q := range qs {
		oldest := "-"
		if q.GetEntries() > 0 {
			oldest = age(q.GetOldestTime(), now)
		}
		tab.row(q.GetTrigger(), strconv.FormatInt(q.GetEntries(), 10), oldest,
			strconv.FormatInt(q.GetAdded(), 10), strconv.FormatInt(q.GetEvicted(), 10))
	}
	return tab.flush()
}
