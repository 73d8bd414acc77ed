package cli

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/switchyard-io/switchyard/bench"
)

func init() {
	extraCommands = append(extraCommands, newBenchCmd)
}

func newBenchCmd() *cobra.Command {
	var (
		o         bench.Options
		scenarios string
		rates     string
		profile   string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure end-to-end throughput and latency against a real Redis",
		Long: `Run an end-to-end benchmark and print its figures: one human line per
figure, then every figure as one JSON object on the last line of standard
output. Progress goes to standard error.

Unless --server is given, a switchyard server is started as a child process
(this binary, "serve" on 127.0.0.1 with a unique --key-prefix), its CPU and
peak RSS are read from /proc per scenario, and it is stopped at the end; every
Redis key the benchmark wrote is then deleted. Redis CPU comes from INFO cpu,
the benchmark's own CPU (publishers and the in-process sink function) from
getrusage.

Scenarios (they run in this order):
  raw-grpc     unary Invoke calls to the sink, C=16 and C=128 (the gRPC ceiling
               the ratios divide by), then the same requests as messages on
               one InvokeStream, 128 outstanding (the ceiling of streamed
               delivery)
  raw-redis    XADD (pipelined x64) -> XREADGROUP COUNT 64 -> XACK on a scratch stream
  single       one trigger; closed-loop gRPC PublishBatch publishers (pushback
               honoured); the function serves InvokeStream, so attempts are
               stream messages. Then the same with a function serving only
               unary Invoke (single/unary), then 64 keep-alive HTTP clients
               posting single events (single/http). Publishers pause while
               more than --window deliveries are owed, so delivered/s is a
               sustained rate (accepted ≈ delivered)
  tracing      single's gRPC and HTTP loads on this server (untraced) and on a
               second child server with tracing on (OTLP/gRPC to a receiver in
               the benchmark that counts spans, every publish sampled):
               delivered/s and server CPU per event side by side
  secure       single's gRPC and HTTP variants against a second child server
               with TLS on both listeners (a certificate made for the run)
               and authentication on (publishers send an API key that the
               bootstrap admin token created), its CPU per event beside
               single's (ratios secure_*); its own key prefix; needs the
               child server (no --server)
  fanout10     ten triggers matching every event
  dedup        single, then fanout10, with a dedup window on the triggers (unique
               ids: nothing caught), its figures beside single's and
               fanout10's: the cost of the (source, id) check per event
  latency      open loop at each --latency-rates rate, one trigger:
               scheduled send -> invoke p50/p99/p99.9
  isolation    trigger A at 1000/s with trigger B's function stalled (B at 1000/s too)
  triggers10k  10,000 triggers registered (one matching), then as single

Speed is measured here, never asserted: the figures depend on the machine.`,
		Example: `  switchyard bench --duration 5s --scenarios single,latency
  switchyard bench --duration 5s --scenarios single,latency --ack-after replicas=1
  switchyard bench --server 127.0.0.1:9090 --server-http 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scenarios != "" && scenarios != "all" {
				for _, s := range strings.Split(scenarios, ",") {
					if s = strings.TrimSpace(s); s != "" {
						o.Scenarios = append(o.Scenarios, s)
					}
				}
			}
			for _, s := range strings.Split(rates, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				r, err := strconv.Atoi(s)
				if err != nil || r <= 0 {
					return invalidf("--latency-rates: %q is not a positive number", s)
				}
				o.LatencyRates = append(o.LatencyRates, r)
			}
			if profile != "" {
				if o.Server != "" {
					return invalidf("--server-cpuprofile needs the child server (no --server)")
				}
				o.ServerArgs = append(o.ServerArgs, "--cpuprofile", profile)
			}
			o.Out, o.Log = cmd.OutOrStdout(), cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			_, err := bench.Run(ctx, o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.RedisURL, "redis-url", bench.DefaultRedisURL, "Redis to use (a real Redis: the benchmark measures its CPU)")
	f.StringVar(&o.AckAfter, "ack-after", "", "the child server's --ack-after: write (default) or replicas=N, for which the benchmark starts N replicas of its Redis; compare a run with each")
	f.DurationVar(&o.Duration, "duration", bench.DefaultDuration, "measured time per scenario (and per variant within one)")
	f.DurationVar(&o.Warmup, "warmup", bench.DefaultWarmup, "unmeasured time before each measurement")
	f.IntVar(&o.Payload, "payload", bench.DefaultPayload, "bytes of event data")
	f.StringVar(&scenarios, "scenarios", "all", "comma list of scenarios: "+strings.Join(bench.AllScenarios, ","))
	f.StringVar(&o.Server, "server", "", "gRPC address of a running server to target instead of starting one (its CPU and RSS are then not reported)")
	f.StringVar(&o.ServerHTTP, "server-http", "", "HTTP address of that server, for the HTTP variant of single")
	f.IntVar(&o.Concurrency, "concurrency", bench.DefaultConcurrency, "closed-loop gRPC publishers")
	f.IntVar(&o.Window, "window", bench.DefaultWindow, "deliveries owed (accepted, not yet delivered) beyond which closed-loop publishers pause; -1: none")
	f.IntVar(&o.HTTPClients, "http-clients", bench.DefaultHTTPClients, "keep-alive HTTP publishers of the HTTP variant")
	f.IntVar(&o.Batch, "batch", bench.DefaultBatch, "events per PublishBatch")
	f.StringVar(&rates, "latency-rates", joinInts(bench.DefaultLatencyRates), "comma list of open-loop rates (events/s) for the latency scenario")
	f.IntVar(&o.Triggers, "triggers", bench.DefaultTriggers, "triggers registered by triggers10k")
	f.DurationVar(&o.RegistrationTimeout, "registration-timeout", bench.DefaultRegistrationTimeout, "bound of the trigger registration of triggers10k (it then goes on with the triggers registered)")
	f.StringVar(&o.Executable, "exe", "", "switchyard binary to start as the server (default: this one)")
	f.StringVar(&profile, "server-cpuprofile", "", "write the child server's CPU profile to this file")
	_ = f.MarkHidden("exe")
	return cmd
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
