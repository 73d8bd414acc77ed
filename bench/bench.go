package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
)

// Scenario names, in the order they run. triggers10k runs last whatever the
// order given, so that its ten thousand triggers (whose removal through the
// API is slow) do not weigh on the other scenarios.
const (
	RawGRPC     = "raw-grpc"
	RawRedis    = "raw-redis"
	Single      = "single"
	Tracing     = "tracing"
	Secure      = "secure"
	Fanout10    = "fanout10"
	Dedup       = "dedup"
	Latency     = "latency"
	Isolation   = "isolation"
	Triggers10k = "triggers10k"
)

// AllScenarios lists every scenario in running order.
var AllScenarios = []string{RawGRPC, RawRedis, Single, Tracing, Secure, Fanout10, Dedup, Latency, Isolation, Triggers10k}

// Defaults of Options.
const (
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
	DefaultDuration    = 10 * time.Second
	DefaultWarmup      = 2 * time.Second
	DefaultPayload     = 1024
	DefaultConcurrency = 4
	DefaultHTTPClients = 64
	DefaultTriggers    = 10_000
	DefaultBatch       = 100
	// DefaultRegistrationTimeout bounds the registration of triggers10k.
	DefaultRegistrationTimeout = 15 * time.Minute
)

// DefaultLatencyRates are the open-loop rates of the latency scenario.
var DefaultLatencyRates = []int{1000, 200}

// DefaultWindow is the default Options.Window: deliveries owed (accepted, not
// yet delivered) beyond which closed-loop publishers pause.
const DefaultWindow = 10_000

// Options configures Run. Zero fields take the defaults above.
type Options struct {
	// RedisURL is the Redis the benchmark (and the server it starts) uses.
	RedisURL string
	// Duration is the measured time of each scenario (and of each variant
	// within one); Warmup runs before it, unmeasured.
	Duration, Warmup time.Duration
	// Payload is the size of each event's data in bytes.
	Payload int
	// Scenarios to run (AllScenarios when empty).
	Scenarios []string
	// Server is the gRPC address of a running server to target; empty starts
	// one as a child process (Executable serve …). Server CPU and memory are
	// reported only for a child.
	Server string
	// ServerHTTP is the HTTP address of that server, for the HTTP variant of
	// single (skipped when Server is set and ServerHTTP is not).
	ServerHTTP string
	// Concurrency is the number of closed-loop gRPC publishers.
	Concurrency int
	// HTTPClients is the number of keep-alive HTTP publishers.
	HTTPClients int
	// Batch is the number of events per PublishBatch.
	Batch int
	// Window bounds the deliveries the closed-loop publishers keep owed:
	// they pause while accepted events not yet delivered exceed it, so the
	// throughput scenarios measure a sustained rate (accepted ≈ delivered)
	// rather than ingest racing ahead of delivery into a growing backlog.
	// Negative: no window (publishers stop only at pushback).
	Window int
	// LatencyRates are the open-loop rates (events/s) of the latency scenario.
	LatencyRates []int
	// Triggers is the number of triggers registered by triggers10k, and
	// RegistrationTimeout bounds their registration (the scenario goes on
	// with those registered by then and reports it).
	Triggers            int
	RegistrationTimeout time.Duration
	// Executable is the switchyard binary to start (os.Executable() when empty).
	Executable string
	// AckAfter is the child server's --ack-after ("" or "write", or
	// "replicas=N": the benchmark then starts N replicas of its Redis for
	// the run, so that each mode's cost shows in the same scenarios).
	AckAfter string
	// ServerArgs are added to the child's serve command line.
	ServerArgs []string
	// Out receives one human line per figure and the JSON report as the
	// last line. Log receives progress and the server's warnings.
	Out, Log io.Writer
}

func (o *Options) setDefaults() {
	if o.RedisURL == "" {
		o.RedisURL = DefaultRedisURL
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.Payload == 0 {
		o.Payload = DefaultPayload
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = AllScenarios
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.HTTPClients == 0 {
		o.HTTPClients = DefaultHTTPClients
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if len(o.LatencyRates) == 0 {
		o.LatencyRates = DefaultLatencyRates
	}
	if o.Triggers == 0 {
		o.Triggers = DefaultTriggers
	}
	if o.RegistrationTimeout == 0 {
		o.RegistrationTimeout = DefaultRegistrationTimeout
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
}

func (o *Options) validate() error {
	var errs []error
	for _, s := range o.Scenarios {
		if !slices.Contains(AllScenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q (want %s)", s, strings.Join(AllScenarios, ", ")))
		}
	}
	if o.Duration < 0 || o.Payload < 0 || o.Concurrency < 0 || o.HTTPClients < 0 || o.Batch < 0 || o.Triggers < 0 {
		errs = append(errs, errors.New("durations, sizes and counts must not be negative"))
	}
	if o.Batch > 1000 {
		errs = append(errs, errors.New("batch: at most 1000 events"))
	}
	for _, r := range o.LatencyRates {
		if r <= 0 {
			errs = append(errs, fmt.Errorf("latency rate %d: must be positive", r))
		}
	}
	if _, err := redis.ParseURL(o.RedisURL); err != nil {
		errs = append(errs, fmt.Errorf("redis url: %w", err))
	}
	if n, err := ackReplicas(o.AckAfter); err != nil {
		errs = append(errs, err)
	} else if n > 0 && o.Server != "" {
		errs = append(errs, errors.New("--ack-after configures the child server: not with --server"))
	}
	return errors.Join(errs...)
}

// Report is the benchmark's result, printed as one JSON line.
type Report struct {
	Start     time.Time          `json:"start"`
	Config    ReportConfig       `json:"config"`
	Scenarios Scenarios          `json:"scenarios"`
	Ratios    map[string]float64 `json:"ratios"`
	// DrainS is, per step, how long the server took after the step's
	// triggers were deleted until a probe event published then was
	// delivered (its ingest log worked off).
	DrainS   map[string]float64 `json:"drain_s,omitempty"`
	Errors   []string           `json:"errors,omitempty"`
	ElapsedS float64            `json:"elapsed_s"`
}

// ReportConfig records how the figures were taken.
type ReportConfig struct {
	DurationS    float64 `json:"duration_s"`
	WarmupS      float64 `json:"warmup_s"`
	PayloadBytes int     `json:"payload_bytes"`
	Concurrency  int     `json:"concurrency"`
	Window       int     `json:"window"`
	Batch        int     `json:"batch"`
	HTTPClients  int     `json:"http_clients"`
	LatencyRates []int   `json:"latency_rates"`
	Triggers     int     `json:"triggers10k_count"`
	ServerMode   string  `json:"server_mode"` // "child" or "external"
	// KeyPrefix starts every Redis key the benchmark wrote (the child
	// server's keys included); all are deleted at the end.
	KeyPrefix    string `json:"key_prefix,omitempty"`
	CPUs         int    `json:"cpus"`
	GoVersion    string `json:"go_version"`
	RedisVersion string `json:"redis_version,omitempty"`
	LoadAvg      string `json:"loadavg_start,omitempty"`
	// AckAfter is the child server's --ack-after; Replicas how many
	// replicas of Redis the benchmark started for it.
	AckAfter string `json:"ack_after"`
	Replicas int    `json:"redis_replicas_started,omitempty"`
}

// Scenarios holds each scenario's figures (nil when not run).
type Scenarios struct {
	RawGRPC  *RawGRPCResult    `json:"raw-grpc,omitempty"`
	RawRedis *RawRedisResult   `json:"raw-redis,omitempty"`
	Single   *ThroughputResult `json:"single,omitempty"`
	Tracing  *TracingResult    `json:"tracing,omitempty"`
	// Secure is single (gRPC, and HTTP in Secure.HTTP) against a server
	// with TLS and authentication on.
	Secure   *ThroughputResult `json:"secure,omitempty"`
	Fanout10 *ThroughputResult `json:"fanout10,omitempty"`
	// Dedup is single with a dedup window on the trigger (Dedup.Fanout:
	// fanout10's ten triggers with one).
	Dedup       *ThroughputResult `json:"dedup,omitempty"`
	Triggers10k *ThroughputResult `json:"triggers10k,omitempty"`
	Latency     []*LatencyResult  `json:"latency,omitempty"`
	Isolation   *IsolationResult  `json:"isolation,omitempty"`
}

// env is what the scenarios share.
type env struct {
	opt     Options
	rep     *Report
	rdb     *redis.Client
	tgt     *target
	client  *sdk.Client
	events  switchyardv1.EventServiceClient
	sinkA   *sink
	sinkB   *sink
	sinkU   *sink // serves unary Invoke only
	runID   string
	exe     string // the switchyard binary of child servers
	prefix  string // Redis key prefix of everything the benchmark writes
	payload []byte
	http    *http.Client
	token   string // bearer token the HTTP publishers send, if any
	drains  int
}

// Run runs the scenarios and prints their figures to o.Out, the JSON report
// last. A scenario that fails is reported in Errors and the others still
// run; Run returns an error only when nothing could run.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	e := &env{opt: o, runID: randomHex(3)}
	e.prefix = "sybench-" + e.runID
	e.payload = []byte(strings.Repeat("x", o.Payload))
	e.rep = &Report{Start: start.UTC(), Ratios: map[string]float64{}, DrainS: map[string]float64{}, Config: ReportConfig{
		DurationS: o.Duration.Seconds(), WarmupS: o.Warmup.Seconds(), PayloadBytes: o.Payload,
		Concurrency: o.Concurrency, Window: o.Window, Batch: o.Batch, HTTPClients: o.HTTPClients, LatencyRates: o.LatencyRates,
		Triggers: o.Triggers, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvg: loadAvg(),
		KeyPrefix: e.prefix,
	}}

	ropt, _ := redis.ParseURL(o.RedisURL)
	ropt.PoolSize = max(ropt.PoolSize, 16)
	e.rdb = redis.NewClient(ropt)
	defer e.rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := e.rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("redis at %s: %w (the benchmark needs a real Redis)", o.RedisURL, err)
	}
	if info, err := e.rdb.Info(ctx, "server").Result(); err == nil {
		e.rep.Config.RedisVersion = infoField(info, "redis_version")
	}

	if e.sinkA, err = startSink(false); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	defer e.sinkA.stop()
	if e.sinkB, err = startSink(false); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	defer e.sinkB.stop()
	if e.sinkU, err = startSink(true); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	defer e.sinkU.stop()

	needServer := slices.ContainsFunc(o.Scenarios, func(s string) bool { return s != RawGRPC && s != RawRedis })
	e.rep.Config.AckAfter = cmp.Or(o.AckAfter, "write")
	if n, _ := ackReplicas(o.AckAfter); n > 0 && needServer {
		e.logf("starting %d replica(s) of %s for --ack-after %s", n, ropt.Addr, o.AckAfter)
		rs, err := startReplicas(ctx, ropt.Addr, n)
		if err != nil {
			return nil, fmt.Errorf("--ack-after %s: %w", o.AckAfter, err)
		}
		defer rs.stop()
		e.rep.Config.Replicas = n
	}
	if needServer {
		if err := e.connect(ctx); err != nil {
			e.cleanupRedis()
			return nil, err
		}
		defer e.disconnect()
	} else {
		e.rep.Config.ServerMode = "none"
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = o.HTTPClients
	tr.MaxConnsPerHost = o.HTTPClients
	tr.DisableCompression = true
	e.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()

	for _, name := range AllScenarios {
		if !slices.Contains(o.Scenarios, name) || ctx.Err() != nil {
			continue
		}
		if e.tgt != nil && !e.tgt.alive() {
			e.fail(name, errors.New("the server process has exited"))
			break
		}
		e.logf("== %s", name)
		if err := e.runScenario(ctx, name); err != nil {
			e.fail(name, err)
		}
	}
	e.ratios()
	e.rep.ElapsedS = round3(time.Since(start).Seconds())
	b, err := json.Marshal(e.rep)
	if err != nil {
		return e.rep, err
	}
	fmt.Fprintf(o.Out, "%s\n", b)
	return e.rep, nil
}

func (e *env) runScenario(ctx context.Context, name string) error {
	switch name {
	case RawGRPC:
		return e.rawGRPC(ctx)
	case RawRedis:
		return e.rawRedis(ctx)
	case Single:
		return e.single(ctx)
	case Tracing:
		return e.tracing(ctx)
	case Secure:
		return e.secure(ctx)
	case Fanout10:
		return e.fanout10(ctx)
	case Dedup:
		return e.dedup(ctx)
	case Triggers10k:
		return e.triggers10k(ctx)
	case Latency:
		return e.latency(ctx)
	case Isolation:
		return e.isolation(ctx)
	}
	return fmt.Errorf("unknown scenario %q", name)
}

// connect starts the child server (or takes the given one) and opens the
// client connection.
func (e *env) connect(ctx context.Context) error {
	o := e.opt
	if o.Server != "" {
		e.tgt = &target{grpcAddr: o.Server, httpAddr: o.ServerHTTP}
		e.rep.Config.ServerMode = "external"
	} else {
		exe := o.Executable
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return fmt.Errorf("finding the switchyard binary: %w", err)
			}
		}
		e.exe = exe
		// Untraced, whatever the environment says: the tracing scenario
		// starts a traced server of its own beside this one.
		t, err := startChild(ctx, exe, e.childArgs(e.prefix), []string{"OTEL_TRACES_EXPORTER=none"}, o.Log)
		if err != nil {
			return err
		}
		e.tgt = t
		e.rep.Config.ServerMode = "child"
		e.logf("server pid %d grpc %s http %s", t.pid(), t.grpcAddr, t.httpAddr)
	}
	c, err := sdk.New(sdk.Config{Address: e.tgt.grpcAddr, Timeout: 30 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}})
	if err != nil {
		e.tgt.stop(25 * time.Second)
		return err
	}
	e.client = c
	e.events = c.Events()
	return nil
}

// childArgs is the command line of a child server using key prefix.
func (e *env) childArgs(prefix string) []string {
	// --log-level info, not warn: the "switchyard serving" line with the
	// addresses is logged at info; startChild drops the other info lines.
	args := append([]string{"serve", "--redis-url", e.opt.RedisURL, "--key-prefix", prefix,
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--log-level", "info", "--log-format", "json"}, e.opt.ServerArgs...)
	if e.opt.AckAfter != "" {
		args = append(args, "--ack-after", e.opt.AckAfter)
	}
	return args
}

// disconnect stops the child (letting it write a profile) and drops every
// key the benchmark wrote.
func (e *env) disconnect() {
	if e.client != nil {
		_ = e.client.Close()
	}
	if e.tgt != nil && e.tgt.proc != nil {
		e.tgt.stop(25 * time.Second)
	}
	e.cleanupRedis()
}

// cleanupRedis deletes every key under the benchmark's prefix.
func (e *env) cleanupRedis() { e.cleanupPrefix(e.prefix) }

// cleanupPrefix deletes every key under prefix.
func (e *env) cleanupPrefix(prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iter := e.rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	var n int
	flush := func() {
		if len(keys) > 0 {
			n += len(keys)
			_ = e.rdb.Unlink(ctx, keys...).Err()
			keys = keys[:0]
		}
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) >= 500 {
			flush()
		}
	}
	flush()
	if err := iter.Err(); err != nil {
		e.logf("cleanup: scan %s:*: %v", prefix, err)
	} else {
		e.logf("cleanup: %d keys under %s: deleted", n, prefix)
	}
}

func (e *env) fail(name string, err error) {
	msg := fmt.Sprintf("%s: %v", name, err)
	e.rep.Errors = append(e.rep.Errors, msg)
	fmt.Fprintf(e.opt.Out, "%-12s FAILED: %v\n", name, err)
}

// printf writes a human line of figures.
func (e *env) printf(format string, a ...any) { fmt.Fprintf(e.opt.Out, format+"\n", a...) }

// logf writes progress.
func (e *env) logf(format string, a ...any) {
	fmt.Fprintf(e.opt.Log, "bench: "+format+"\n", a...)
}

func (e *env) ratios() {
	s := e.rep.Scenarios
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return round3(a / b)
	}
	if s.Single != nil && s.Secure != nil {
		// What TLS and authentication cost: throughput and CPU per event
		// against plaintext.
		e.rep.Ratios["secure_vs_single"] = div(s.Secure.DeliveredPerS, s.Single.DeliveredPerS)
		e.rep.Ratios["secure_server_cpu_vs_single"] = div(s.Secure.Usage.ServerUSPerOp, s.Single.Usage.ServerUSPerOp)
		if s.Secure.HTTP != nil && s.Single.HTTP != nil {
			e.rep.Ratios["secure_http_vs_single_http"] = div(s.Secure.HTTP.DeliveredPerS, s.Single.HTTP.DeliveredPerS)
			e.rep.Ratios["secure_http_server_cpu_vs_single_http"] = div(s.Secure.HTTP.Usage.ServerUSPerOp, s.Single.HTTP.Usage.ServerUSPerOp)
		}
	}
	for _, l := range s.Latency {
		if s.Single == nil {
			break
		}
		// What an event costs at an ordinary rate against at saturation.
		k := "latency" + strconv.Itoa(l.RatePerS) + "_vs_single_"
		e.rep.Ratios[k+"server_cpu"] = div(l.Usage.ServerUSPerOp, s.Single.Usage.ServerUSPerOp)
		e.rep.Ratios[k+"redis_cpu"] = div(l.Usage.RedisUSPerOp, s.Single.Usage.RedisUSPerOp)
		e.rep.Ratios[k+"redis_calls"] = div(l.Usage.RedisCallsPerOp, s.Single.Usage.RedisCallsPerOp)
	}
	if s.Single != nil && s.RawGRPC != nil {
		e.rep.Ratios["single_vs_raw_grpc"] = div(s.Single.DeliveredPerS, s.RawGRPC.C128.CallsPerS)
	}
	if s.Single != nil && s.RawRedis != nil {
		e.rep.Ratios["single_vs_raw_redis"] = div(s.Single.DeliveredPerS, s.RawRedis.AckedPerS)
	}
	if s.Single != nil && s.Triggers10k != nil {
		e.rep.Ratios["triggers10k_vs_single"] = div(s.Triggers10k.DeliveredPerS, s.Single.DeliveredPerS)
	}
	if s.Single != nil && s.Single.HTTP != nil && s.RawGRPC != nil {
		e.rep.Ratios["single_http_vs_raw_grpc"] = div(s.Single.HTTP.DeliveredPerS, s.RawGRPC.C128.CallsPerS)
	}
	if s.Single != nil && s.RawGRPC != nil && s.RawGRPC.StreamC128.CallsPerS > 0 {
		e.rep.Ratios["single_vs_raw_grpc_stream"] = div(s.Single.DeliveredPerS, s.RawGRPC.StreamC128.CallsPerS)
	}
	if s.Single != nil && s.Dedup != nil {
		// What the dedup check costs per event, against single.
		e.rep.Ratios["dedup_vs_single"] = div(s.Dedup.DeliveredPerS, s.Single.DeliveredPerS)
		e.rep.Ratios["dedup_server_cpu_vs_single"] = div(s.Dedup.Usage.ServerUSPerOp, s.Single.Usage.ServerUSPerOp)
		e.rep.Ratios["dedup_redis_cpu_vs_single"] = div(s.Dedup.Usage.RedisUSPerOp, s.Single.Usage.RedisUSPerOp)
	}
	if s.Fanout10 != nil && s.Dedup != nil && s.Dedup.Fanout != nil {
		e.rep.Ratios["dedup_fanout10_vs_fanout10"] = div(s.Dedup.Fanout.DeliveredPerS, s.Fanout10.DeliveredPerS)
		e.rep.Ratios["dedup_fanout10_redis_cpu_vs_fanout10"] = div(s.Dedup.Fanout.Usage.RedisUSPerOp, s.Fanout10.Usage.RedisUSPerOp)
	}
	if s.Single != nil && s.Single.Unary != nil && s.RawGRPC != nil {
		e.rep.Ratios["single_unary_vs_raw_grpc"] = div(s.Single.Unary.DeliveredPerS, s.RawGRPC.C128.CallsPerS)
	}
}

// names and types are unique per run, so runs against one server never mix.
func (e *env) triggerName(s string) string { return "bench-" + e.runID + "-" + s }
func (e *env) eventType(s string) string   { return "io.switchyard.bench." + e.runID + "." + s }

// applyTrigger creates a trigger selecting events of type typ for the sink at
// addr. Zero maxConc / maxQueue keep the defaults.
func (e *env) applyTrigger(ctx context.Context, name, typ, addr string, maxConc int, maxQueue int64) error {
	spec := trigger.Spec{
		Name:        name,
		Description: "switchyard bench " + e.runID,
		Filter:      filter.Spec{Attributes: map[string]string{"type": typ}},
		Target:      trigger.Target{GRPC: addr},
		Delivery:    trigger.Delivery{MaxConcurrency: maxConc, MaxQueue: maxQueue},
	}
	_, err := e.client.ApplyTrigger(ctx, trigger.ToProto(spec))
	if err != nil {
		return fmt.Errorf("apply trigger %s: %w", name, err)
	}
	return nil
}

// deleteTriggers deletes (and purges) triggers, then drains the server so
// nothing carries over to the next measurement: label names the step in the
// report's drain_s.
func (e *env) deleteTriggers(label string, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range names {
		if _, err := e.client.DeleteTrigger(ctx, n, true); err != nil {
			e.logf("delete trigger %s: %v", n, err)
		}
	}
	e.sinkA.quiesce(ctx, 300*time.Millisecond, 5*time.Second)
	e.sinkB.quiesce(ctx, 300*time.Millisecond, 5*time.Second)
	e.sinkU.quiesce(ctx, 300*time.Millisecond, 5*time.Second)
	e.drain(label)
}

// drainLimit bounds the wait for the server to work off its ingest log.
const drainLimit = 3 * time.Minute

// drain waits until the server has fanned out everything accepted so far:
// the ingest log is one FIFO, so once a probe event published now reaches
// the sink, every record before it was processed (records of deleted
// triggers included, which may take a while after a large backlog).
func (e *env) drain(label string) {
	if e.client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainLimit)
	defer cancel()
	e.drains++
	id := "drain-" + strconv.Itoa(e.drains)
	name, typ := e.triggerName("drain"), e.eventType("drain")
	if err := e.applyTrigger(ctx, name, typ, e.sinkA.addr, 0, 0); err != nil {
		e.logf("drain: %v", err)
		return
	}
	defer func() {
		if _, err := e.client.DeleteTrigger(context.Background(), name, true); err != nil {
			e.logf("drain: delete trigger: %v", err)
		}
	}()
	p := &probe{id: id, done: make(chan struct{})}
	e.sinkA.probe.Store(p)
	defer e.sinkA.probe.Store(nil)
	ev := e.newEvent(typ)
	ev.Id = id
	start := time.Now()
	for {
		_, err := e.events.Publish(ctx, &switchyardv1.PublishRequest{Event: ev})
		if err == nil {
			break
		}
		if pe := pushbackOf(err); pe == nil || !sleepCtx(ctx, max(pe.RetryAfter, minPushbackSleep)) {
			e.logf("drain: publish probe: %v", err)
			return
		}
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		e.logf("drain: the probe event did not arrive within %s", drainLimit)
	}
	d := time.Since(start)
	e.rep.DrainS[label] = round3(d.Seconds())
	if d > 500*time.Millisecond {
		e.logf("drain after %s: the server took %.1f s to work off its ingest log", label, d.Seconds())
	}
}

// queued returns the events waiting for a trigger (queued + in flight).
func (e *env) queued(ctx context.Context, name string) (queued, inflight int64) {
	st, err := e.client.TriggerStats(ctx, name)
	if err != nil || len(st) == 0 {
		return -1, -1
	}
	return st[0].GetQueued(), st[0].GetInFlight()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
