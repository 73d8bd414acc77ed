package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/switchyard-io/switchyard/internal/logging"
	"github.com/switchyard-io/switchyard/internal/telemetry"
	"github.com/switchyard-io/switchyard/server"
)

func newServeCmd() *cobra.Command {
	var (
		cfg      server.Config
		logLevel string
		logFmt   string
		check    bool
		cpuProf  string
		memProf  string
		file     string
		gcPct    int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a switchyard instance (embedded store unless --redis-url is given)",
		Long: `Run a switchyard instance: HTTP ingest on --http-addr (POST /events, /healthz,
/readyz, /metrics) and the gRPC API on --grpc-addr.

Without --redis-url (or SWITCHYARD_REDIS_URL) it runs on an embedded in-process
store: state is kept in memory only, and sources that confirm what they read
(CDC, queues, webhooks) are refused unless --allow-volatile-sources. With a
Redis URL, any number of instances can share one Redis.

--config FILE reads the server settings and the sources to run from a YAML
file (keys in docs/config.md, sources in docs/connectors); flags given
explicitly take precedence over it.

Authentication is on when an identity is configured: the bootstrap admin token
(SWITCHYARD_ADMIN_TOKEN, or a file named by --admin-token-file), or the auth:
section of --config (API keys, JWT, mTLS). Create API keys with
"switchyard token create". Without any, every caller holds every permission,
so serve listens on 127.0.0.1 only and refuses another address unless
--insecure-no-auth is given. --check-config reports every security setting.

Tracing is off unless OTEL_TRACES_EXPORTER=otlp: spans are then exported over
OTLP (OTEL_EXPORTER_OTLP_PROTOCOL grpc or http/protobuf), configured by the
standard OTEL_* variables (endpoint, headers, sampler, service name); see the
README's Tracing section.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.RedisURL == "" {
				cfg.RedisURL = os.Getenv("SWITCHYARD_REDIS_URL")
			}
			cfg.Auth.ApplyEnv()
			tracing, err := telemetry.FromEnv(os.Getenv)
			if err != nil {
				return usageError(err)
			}
			cfg.Tracing = tracing
			if file != "" {
				fc, err := server.LoadFile(file)
				if err != nil {
					var pe *fs.PathError
					if errors.As(err, &pe) {
						return err // cannot be read
					}
					return usageError(err)
				}
				// Flags given explicitly win over the file.
				for name, dst := range map[string]*string{"http-addr": &cfg.HTTPAddr, "grpc-addr": &cfg.GRPCAddr} {
					if !cmd.Flags().Changed(name) {
						*dst = ""
					}
				}
				if !cmd.Flags().Changed("log-level") && fc.LogLevel != "" {
					logLevel = fc.LogLevel
				}
				if !cmd.Flags().Changed("log-format") && fc.LogFormat != "" {
					logFmt = fc.LogFormat
				}
				fc.Apply(&cfg)
			}
			log, err := newLogger(logLevel, logFmt)
			if err != nil {
				return err
			}
			cfg.Logger = log
			// An invalid configuration is invalid input (exit 2), whether
			// checked alone or before serving.
			if err := server.Check(cfg); err != nil {
				return usageError(err)
			}
			if check {
				fmt.Fprintln(cmd.OutOrStdout(), "configuration ok")
				printSecurityReport(cmd.OutOrStdout(), server.SecurityReport(cfg))
				return nil
			}
			// The Go default (GOGC=100) collects whenever the heap doubles;
			// a delivery allocates ~10 KiB of short-lived garbage, so at
			// thousands of events per second collection took ~10-15% of the
			// server's CPU (switchyard bench, GOGC 100 vs 200). GOGC, when
			// set, wins.
			if _, set := os.LookupEnv("GOGC"); !set && gcPct != 0 {
				debug.SetGCPercent(gcPct)
			}
			if cpuProf != "" {
				f, err := os.Create(cpuProf)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			if memProf != "" {
				defer func() {
					f, err := os.Create(memProf)
					if err != nil {
						log.Error("--memprofile", "err", err)
						return
					}
					defer f.Close()
					_ = pprof.Lookup("allocs").WriteTo(f, 0)
				}()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return server.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.HTTPAddr, "http-addr", "", "HTTP listen address (port 0 picks a free port; default "+server.DefaultHTTPAddr+" with authentication, "+server.LoopbackHTTPAddr+" without)")
	f.StringVar(&cfg.GRPCAddr, "grpc-addr", "", "gRPC listen address (port 0 picks a free port; default "+server.DefaultGRPCAddr+" with authentication, "+server.LoopbackGRPCAddr+" without)")
	f.StringVar(&cfg.Auth.AdminTokenFile, "admin-token-file", "", "file holding the bootstrap admin token (or set SWITCHYARD_ADMIN_TOKEN); turns authentication on")
	f.BoolVar(&cfg.InsecureNoAuth, "insecure-no-auth", false, "serve without authentication on a non-loopback address (logs a warning every minute)")
	tlsFlags(f, &cfg)
	f.StringVar(&cfg.RedisURL, "redis-url", "", "Redis URL (env SWITCHYARD_REDIS_URL): redis://[user:pass@]host:6379/0, rediss:// for TLS, redis+cluster://h1:7000,h2:7001 (Redis Cluster), redis+sentinel://s1:26379,s2:26379/mymaster[/db] (Sentinel); empty: embedded store")
	f.BoolVar(&cfg.RedisCluster, "redis-cluster", false, "read a redis:// or rediss:// --redis-url as the nodes of a Redis Cluster (as redis+cluster://h1:7000,h2:7001 is read)")
	f.StringVar(&cfg.AckAfter, "ack-after", "", "when a publish is answered: write (once the Redis master has it) or replicas=N (once N replicas have it too, Redis WAIT) (default write)")
	f.DurationVar(&cfg.Router.AckTimeout, "ack-timeout", 0, "how long a publish waits for the replicas --ack-after asks for; past it the answer is 503 with Retry-After (default 1s)")
	f.DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 0, "how long a shutdown keeps serving after turning unready (/readyz, gRPC health), so load balancers notice before the listeners close (default 0s)")
	f.Int64Var(&cfg.Limits.MaxEventBytes, "max-event-bytes", 0, "largest accepted event in bytes (default 1 MiB)")
	f.Int64Var(&cfg.Limits.MaxBatchBytes, "max-batch-bytes", 0, "largest accepted batch request in bytes (default 16 MiB)")
	f.StringVar(&cfg.Router.Prefix, "key-prefix", "", "prefix of every Redis key: letters, digits, '-', '_', '.' (default \"sy\")")
	f.StringVar(&cfg.Router.InstanceID, "instance-id", "", "name of this instance in the store (default hostname-pid)")
	f.IntVar(&cfg.Router.BreakerThreshold, "breaker-threshold", 0, "consecutive target failures that open a trigger's circuit breaker (default 5; -1 disables)")
	f.DurationVar(&cfg.Router.BreakerCooldown, "breaker-cooldown", 0, "first open period of a circuit breaker (default 1s, doubling up to 1m)")
	f.DurationVar(&cfg.Router.LeaseGrace, "lease-grace", 0, "added to a trigger's timeout to form an attempt's lease (default 5s)")
	f.Int64Var(&cfg.Router.DLQMaxEntries, "dlq-max-entries", 0, "dead letters kept per trigger before the oldest are evicted and counted (default 100000)")
	f.DurationVar(&cfg.Router.DLQMaxAge, "dlq-max-age", 0, "dead letters older than this are evicted and counted (default 336h)")
	f.DurationVar(&cfg.Router.DedupWindow, "dedup-window", 0, "dedup window of the triggers that set no delivery.dedup_window: a copy of an event (same source and id) queued for the trigger within it is answered success and not queued again (default 0: off)")
	f.DurationVar(&cfg.Router.MaxDedupWindow, "max-dedup-window", 0, "longest delivery.dedup_window a trigger may be given, at most 24h (default 1h)")
	f.DurationVar(&cfg.Router.TriggerSyncTimeout, "trigger-sync-timeout", 0, "how long a trigger change waits for every live instance to serve it before it answers anyway, naming those that lag (default 5s)")
	f.DurationVar(&cfg.Router.HeartbeatInterval, "heartbeat-interval", 0, "how often this instance renews its entry in the registry of instances; one silent for 3 intervals counts as gone; use the same on every instance (default 1s)")
	f.StringSliceVar(&cfg.Egress.AllowTargets, "allow-targets", nil, "target addresses opened although loopback, link-local (metadata), private, CGNAT or multicast: CIDRs, addresses, address:port or host:port, comma-separated (e.g. 10.1.0.0/16,fn.internal:443)")
	f.StringVar(&cfg.Egress.LoopbackTargets, "loopback-targets", "", "auto (loopback targets allowed while both listeners are on loopback), allow or deny (default auto)")
	f.BoolVar(&cfg.Egress.RequireTLS, "require-target-tls", false, "refuse plaintext targets (grpc host:port, http://); stored ones are dead-lettered TARGET_FORBIDDEN")
	f.StringVar(&cfg.Egress.CAFile, "target-ca-file", "", "CA certificates (PEM) trusted for targets' certificates instead of the system roots, unless a trigger names its own")
	f.StringVar(&cfg.Egress.CertFile, "target-cert-file", "", "client certificate (PEM) presented to TLS targets that ask for one (mTLS), unless a trigger names its own")
	f.StringVar(&cfg.Egress.KeyFile, "target-key-file", "", "private key (PEM) of --target-cert-file")
	f.StringVar(&cfg.Egress.SecretsDir, "secrets-dir", "", "directory with one file per secret triggers name in target.auth (SWITCHYARD_SECRET_<NAME> variables are read first)")
	f.BoolVar(&cfg.Router.UnaryInvoke, "unary-invoke", false, "call gRPC functions with unary FunctionService/Invoke only, never on an InvokeStream")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 0, "bound of the graceful shutdown (default 20s)")
	f.StringSliceVar(&cfg.Router.Metrics.HistogramTriggers, "metrics-trigger-histograms", nil, "triggers (at most 100, comma-separated) that get attempt-duration and publish-to-invoke histograms of their own in /metrics; the others share aggregate ones")
	f.DurationVar(&cfg.Router.Metrics.StoreReadTTL, "metrics-store-read-ttl", 0, "how long one batched read of every trigger's queue figures answers /metrics scrapes (default 5s)")
	f.StringVar(&logLevel, "log-level", server.DefaultLogLevel, "debug, info, warn or error")
	f.StringVar(&logFmt, "log-format", server.DefaultLogFormat, "json or text")
	f.BoolVar(&cfg.AllowVolatileSources, "allow-volatile-sources", false, "run sources that confirm what they read on the embedded store, accepting that a restart loses what they confirmed but did not deliver")
	f.BoolVar(&cfg.Router.AllowEvictingRedis, "allow-evicting-redis", false, "start although the Redis evicts any key when full (maxmemory-policy allkeys-*), which deletes queues silently")
	f.IntVar(&cfg.Router.MaxTriggers, "max-triggers", 0, "most triggers the store holds (default 50000; negative: no limit)")
	f.IntVar(&cfg.Router.MaxTriggersPerScope, "max-triggers-per-scope", 0, "most triggers under each trigger-name prefix scoping a caller (default 1000; negative: no limit)")
	f.BoolVar(&check, "check-config", false, "validate the configuration and exit")
	f.StringVar(&file, "config", "", "configuration file (YAML): server settings and the sources to run; see docs/config.md")
	f.IntVar(&gcPct, "gc-percent", 200, "Go GC target: collect when the heap grew by this % since the last collection (GOGC overrides; 0 keeps Go's default)")
	f.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile to this file until shutdown")
	_ = f.MarkHidden("cpuprofile")
	f.StringVar(&memProf, "memprofile", "", "write an allocation profile to this file at shutdown")
	_ = f.MarkHidden("memprofile")
	return cmd
}

// printSecurityReport writes one line per security setting, the ones that
// are off marked so.
func printSecurityReport(w io.Writer, settings []server.SecuritySetting) {
	for _, s := range settings {
		state := "on "
		if !s.On {
			state = "OFF"
		}
		fmt.Fprintf(w, "security: %s %s: %s\n", state, s.Name, s.Detail)
	}
}

func newLogger(level, format string) (*slog.Logger, error) {
	lv, err := server.ParseLogLevel(level)
	if err != nil {
		return nil, invalidf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	// Lines logged with a call's or a span's context carry its request,
	// trace and span ids (logging.Handler).
	switch strings.ToLower(format) {
	case "json":
		return slog.New(logging.NewHandler(slog.NewJSONHandler(os.Stderr, opts))), nil
	case "text":
		return slog.New(logging.NewHandler(slog.NewTextHandler(os.Stderr, opts))), nil
	}
	return nil, invalidf("--log-format: want json or text, got %q", format)
}
