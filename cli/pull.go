package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"

	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
)

func init() {
	extraCommands = append(extraCommands, newPullCmd)
}

// errNacked is the reason a --nack answer records.
var errNacked = errors.New("nacked by switchyard pull")

func newPullCmd() *cobra.Command {
	var (
		o       clientOptions
		trig    string
		maxN    int
		ack     bool
		nack    bool
		drainTO time.Duration
	)
	cmd := &cobra.Command{
		Use:   "pull --trigger T [--max N] [--ack | --nack]",
		Short: "Pull events of a pull trigger and print them",
		Long: `Consume the pull trigger T (target: {pull: {}}) and print one JSON line per
event received, as switchyard sink does (attributes, extensions, data,
attempt, trigger, idempotency_key, the lease deadline as "deadline",
received_at, and the answer: "OK" for an ack, "RETRY" for a nack).

Each event is acknowledged (--ack, the default), or answered with a retry
(--nack: the attempt counts, and the event comes again after the trigger's
backoff). One event at a time. With --max N the command stops after N
events; otherwise on SIGINT or SIGTERM, after answering the event in hand.

Several consumers of one trigger compete for its events: what this one
prints, the others do not get. Needs the consumer role on the trigger when
authentication is on. Exit status 4 when the trigger does not exist (or is
not one the credentials may consume), 1 when it is not a pull trigger.`,
		Example: `  switchyard pull --trigger jobs --max 10
  switchyard pull --trigger jobs --nack --max 1     # look at the next event and leave it for later`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxN < 0 {
				return invalidf("--max must not be negative, got %d", maxN)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			s := &sink{out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), now: time.Now}
			var mu sync.Mutex
			n := 0
			h := func(hctx context.Context, ev event.Event) error {
				received := s.now()
				info, _ := function.FromContext(hctx)
				line := sinkLineOf(ev, info, received, nil)
				var answer error
				if nack {
					answer = function.RetryAfter(0, errNacked)
					line.Answer = "RETRY"
				}
				if err := s.print(line); err != nil {
					// Not printed: leave it for another attempt.
					return sdk.Release(err)
				}
				mu.Lock()
				n++
				if maxN > 0 && n >= maxN {
					cancel()
				}
				mu.Unlock()
				return answer
			}
			return o.withClient(func(c *sdk.Client) error {
				return c.Subscribe(ctx, trig, h, sdk.SubscribeOptions{Concurrency: 1, Consumer: "switchyard-cli", DrainTimeout: drainTO})
			})
		},
	}
	clientFlags(cmd, &o)
	f := cmd.Flags()
	f.StringVar(&trig, "trigger", "", "the pull trigger to consume (required)")
	f.IntVar(&maxN, "max", 0, "stop after this many events (0: until interrupted)")
	f.BoolVar(&ack, "ack", false, "acknowledge each event (the default)")
	f.BoolVar(&nack, "nack", false, "answer each event with a retry (the attempt counts)")
	f.DurationVar(&drainTO, "drain-timeout", 10*time.Second, "on interrupt, how long the event in hand may take to be answered")
	_ = cmd.MarkFlagRequired("trigger")
	cmd.MarkFlagsMutuallyExclusive("ack", "nack")
	return cmd
}
