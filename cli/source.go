package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
)

func init() { extraCommands = append(extraCommands, newSourceCmd) }

func newSourceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "source",
		Aliases: []string{"sources"},
		Short:   "Inspect the sources (connectors) a switchyard server runs",
	}
	var (
		opts clientOptions
		out  outputFormat
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List sources with their state, last event, checkpoint and errors",
		Long: `List the sources of the server's configuration file with their state
(connecting, running, paused while a trigger's queue is full, retrying,
stopped, done), the events accepted, the last one's age, the position the
source has acknowledged (LSN, offset, stream id…) and the last error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return opts.withClient(func(c *sdk.Client) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
				defer cancel()
				res, err := c.Sources().ListSources(ctx, &switchyardv1.ListSourcesRequest{})
				if err != nil {
					return serverError("", err)
				}
				return printSources(cmd.OutOrStdout(), out, res.GetSources(), time.Now())
			})
		},
	}
	clientFlags(list, &opts)
	outputFlag(list, &out)
	cmd.AddCommand(list)
	return cmd
}

// sourceView is the json/yaml form of a SourceStatus: counts as numbers,
// times in RFC 3339, every field of the message under its proto name.
type sourceView struct {
	Name          string `json:"name"`
	Kind          string `json:"kind"`
	State         string `json:"state"`
	Events        int64  `json:"events"`
	Rejected      int64  `json:"rejected"`
	Errors        int64  `json:"errors"`
	LastEventTime string `json:"last_event_time,omitempty"`
	LastError     string `json:"last_error,omitempty"`
	LastErrorTime string `json:"last_error_time,omitempty"`
	Position      string `json:"position,omitempty"`
	Reconnects    int64  `json:"reconnects"`
	PausedReason  string `json:"paused_reason,omitempty"`
	NextFireTime  string `json:"next_fire_time,omitempty"`
}

func newSourceView(s *switchyardv1.SourceStatus) sourceView {
	return sourceView{
		Name: s.GetName(), Kind: s.GetKind(), State: s.GetState(),
		Events: s.GetEvents(), Rejected: s.GetRejected(), Errors: s.GetErrors(),
		LastEventTime: timestamp(s.GetLastEventTime()), LastError: s.GetLastError(), LastErrorTime: timestamp(s.GetLastErrorTime()),
		Position: s.GetPosition(), Reconnects: s.GetReconnects(), PausedReason: s.GetPausedReason(),
		NextFireTime: timestamp(s.GetNextFireTime()),
	}
}

func printSources(w io.Writer, format outputFormat, ss []*switchyardv1.SourceStatus, now time.Time) error {
	if format == formatJSON || format == formatYAML {
		views := make([]sourceView, len(ss))
		for i, s := range ss {
			views[i] = newSourceView(s)
		}
		if format == formatJSON {
			return writeJSON(w, views)
		}
		return writeYAML(w, views)
	}
	t := newTable(w, "NAME", "KIND", "STATE", "EVENTS", "LAST EVENT", "POSITION", "NEXT FIRE", "ERRORS", "LAST ERROR")
	for _, s := range ss {
		last := "-"
		if s.GetLastEventTime() != nil {
			last = shortDuration(now.Sub(s.GetLastEventTime().AsTime())) + " ago"
		}
		lastErr := s.GetLastError()
		if s.GetPausedReason() != "" {
			lastErr = "paused: " + s.GetPausedReason()
		}
		if len(lastErr) > 60 {
			lastErr = lastErr[:57] + "..."
		}
		next := "-"
		if nf := s.GetNextFireTime(); nf != nil {
			next = nf.AsTime().UTC().Format(time.RFC3339)
			if d := nf.AsTime().Sub(now); d > 0 {
				next += " (in " + shortDuration(d) + ")"
			}
		}
		t.row(s.GetName(), s.GetKind(), s.GetState(), fmt.Sprint(s.GetEvents()), last, dash(s.GetPosition()), next, fmt.Sprint(s.GetErrors()), dash(lastErr))
	}
	return t.flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
