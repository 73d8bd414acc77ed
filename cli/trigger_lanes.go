package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
)

func newTriggerSkipLaneCmd() *cobra.Command {
	var (
		opts clientOptions
		key  string
	)
	cmd := &cobra.Command{
		Use:   "skip-lane NAME --key KEY",
		Short: "Unblock a lane of an ordered trigger without replaying its dead letter",
		Long: `Unblock the lane of one ordering key of an ordered trigger whose dead letter
stopped it (delivery.ordering.on_dead: block): the lane's next event is
delivered, and the dead letter stays in the dead-letter queue. To deliver the
dead event instead, first in its lane, replay it: switchyard dlq replay NAME
--id ID. "trigger stats NAME" lists the blocked lanes with their dead letters.
The default lane (events without a key) is --key "".`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeTriggerNames(&opts),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !cmd.Flags().Changed("key") {
				return usageError(errors.New("--key is required (use --key \"\" for the default lane)"))
			}
			return opts.withClient(func(c *sdk.Client) error {
				if err := c.SkipLane(cmd.Context(), name, key); err != nil {
					return serverError("trigger/"+name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "trigger/%s lane %s unblocked\n", name, strconv.Quote(key))
				return nil
			})
		},
	}
	clientFlags(cmd, &opts)
	cmd.Flags().StringVar(&key, "key", "", "the lane's ordering key, as trigger stats shows it")
	return cmd
}

// printLanes writes a line per ordered trigger with lanes, after the stats
// table, and one per blocked lane.
func printLanes(w io.Writer, stats []*switchyardv1.TriggerStats) error {
	for _, s := range stats {
		if s.GetLanesActive() == 0 && s.GetLanesBlocked() == 0 {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s: lanes %d active, %d blocked; %d events wait behind an earlier one of their key\n",
			s.GetName(), s.GetLanesActive(), s.GetLanesBlocked(), s.GetLaneWaiting()); err != nil {
			return err
		}
		for _, b := range s.GetBlockedLanes() {
			if _, err := fmt.Fprintf(w, "  blocked: key %s by dead letter %s (replay it, or: switchyard trigger skip-lane %s --key %s)\n",
				strconv.Quote(b.GetKey()), b.GetDeadLetterId(), s.GetName(), strconv.Quote(b.GetKey())); err != nil {
				return err
			}
		}
	}
	return nil
}
