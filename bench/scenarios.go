package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
	"github.com/switchyard-io/switchyard/sdk"
)

// ---- raw-grpc ----

// RawGRPCResult is the gRPC baseline against the same sink: unary calls
// (what the ratios divide by), and the same requests as messages on one
// InvokeStream with 128 outstanding (the ceiling of streamed delivery).
type RawGRPCResult struct {
	C16        RawGRPCRun `json:"c16"`
	C128       RawGRPCRun `json:"c128"`
	StreamC128 RawGRPCRun `json:"stream_c128"`
}

// RawGRPCRun is one concurrency level.
type RawGRPCRun struct {
	Concurrency int     `json:"concurrency"`
	Calls       int64   `json:"calls"`
	CallsPerS   float64 `json:"calls_per_s"`
	Errors      int64   `json:"errors"`
	Usage       Usage   `json:"usage"`
}

// sinkClient connects to sink A and makes a request shaped like the
// router's, for trigger name: what the raw gRPC baselines send.
func (e *env) sinkClient(name string) (*grpc.ClientConn, functionv1.FunctionServiceClient, *functionv1.InvokeRequest, error) {
	conn, err := grpc.NewClient("passthrough:///"+e.sinkA.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, nil, err
	}
	ev := e.newEvent(e.eventType(name))
	ev.Id = name + "-1"
	req := &functionv1.InvokeRequest{Event: ev, Attempt: 1, Trigger: name,
		Deadline: timestamppb.New(time.Now().Add(time.Hour)), IdempotencyKey: ev.Source + " " + ev.Id}
	return conn, functionv1.NewFunctionServiceClient(conn), req, nil
}

func (e *env) rawGRPC(ctx context.Context) error {
	conn, client, req, err := e.sinkClient("raw-grpc")
	if err != nil {
		return err
	}
	defer conn.Close()
	res := &RawGRPCResult{}
	for _, c := range []int{16, 128} {
		run := RawGRPCRun{Concurrency: c}
		cctx, cancel := context.WithCancel(ctx)
		var errs atomic.Int64
		var wg sync.WaitGroup
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for cctx.Err() == nil {
					if _, err := client.Invoke(cctx, req); err != nil && cctx.Err() == nil {
						errs.Add(1)
					}
				}
			}()
		}
		e.countSinkCalls(ctx, &run, func() { cancel(); wg.Wait() })
		run.Errors = errs.Load()
		if c == 16 {
			res.C16 = run
		} else {
			res.C128 = run
		}
		e.printf("%-12s C=%-3d  %9.0f calls/s  (%d errors; CPU %.1f µs/call bench incl. sink)",
			RawGRPC, c, run.CallsPerS, run.Errors, run.Usage.BenchUSPerOp)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	res.StreamC128 = e.rawStream(ctx, client, req, 128)
	e.printf("%-12s stream %9.0f msgs/s   (%d errors; CPU %.1f µs/message bench incl. sink; %d outstanding on one InvokeStream)",
		RawGRPC, res.StreamC128.CallsPerS, res.StreamC128.Errors, res.StreamC128.Usage.BenchUSPerOp, res.StreamC128.Concurrency)
	e.rep.Scenarios.RawGRPC = res
	return ctx.Err()
}

// rawStream sends req as InvokeStream messages to the sink, c outstanding.
func (e *env) rawStream(ctx context.Context, client functionv1.FunctionServiceClient, req *functionv1.InvokeRequest, c int) RawGRPCRun {
	run := RawGRPCRun{Concurrency: c}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := client.InvokeStream(cctx)
	if err != nil {
		run.Errors++
		return run
	}
	var errs atomic.Int64
	slots := make(chan struct{}, c)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // answers free slots
		defer wg.Done()
		for {
			resp, err := st.Recv()
			if err != nil {
				return
			}
			for _, a := range resp.GetAnswers() {
				if a.GetCode() != 0 {
					errs.Add(1)
				}
				<-slots
			}
		}
	}()
	go func() {
		defer wg.Done()
		for call := uint64(1); ; call++ {
			select {
			case slots <- struct{}{}:
			case <-cctx.Done():
				return
			}
			m := &functionv1.InvokeStreamRequest{Calls: []*functionv1.StreamCall{{Call: call, Kind: &functionv1.StreamCall_Invoke{Invoke: req}}}}
			if err := st.Send(m); err != nil {
				return
			}
		}
	}()
	e.countSinkCalls(ctx, &run, func() { cancel(); wg.Wait() })
	run.Errors = errs.Load()
	return run
}

// countSinkCalls measures load already running against sinkA: after the
// warm-up it counts the calls reaching the sink over the duration, with the
// CPU they cost, then stops the load with stop.
func (e *env) countSinkCalls(ctx context.Context, run *RawGRPCRun, stop func()) {
	sleepCtx(ctx, e.opt.Warmup)
	c0, m := e.sinkA.calls.Load(), e.startMeter(ctx)
	t0 := time.Now()
	sleepCtx(ctx, e.opt.Duration)
	run.Calls = e.sinkA.calls.Load() - c0
	el := time.Since(t0)
	run.Usage = m.stop(ctx, run.Calls)
	stop()
	run.CallsPerS = rate(run.Calls, el)
}

// ---- raw-redis ----

// RawRedisResult is the XADD → XREADGROUP → XACK cycle baseline.
type RawRedisResult struct {
	Batch          int     `json:"batch"`
	MaxOutstanding int     `json:"max_outstanding"`
	Acked          int64   `json:"acked"`
	AckedPerS      float64 `json:"acked_per_s"`
	Usage          Usage   `json:"usage"`
}

func (e *env) rawRedis(ctx context.Context) error {
	const batch, maxOut = 64, 20000
	ropt, _ := redis.ParseURL(e.opt.RedisURL)
	ropt.PoolSize = 6
	rc := redis.NewClient(ropt)
	defer rc.Close()
	key := e.prefix + ":raw-redis"
	defer e.rdb.Del(context.Background(), key)
	rc.Del(ctx, key)
	if err := rc.XGroupCreateMkStream(ctx, key, "g", "$").Err(); err != nil {
		return fmt.Errorf("XGROUP CREATE: %w", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var acked atomic.Int64
	var firstErr atomic.Pointer[error]
	note := func(err error) {
		if cctx.Err() == nil {
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // producer: pipelined XADD, paused while too far ahead
		defer wg.Done()
		// MAXLEN ~ keeps Redis memory bounded; it never trims an unread
		// entry because at most maxOut+batch are outstanding.
		args := &redis.XAddArgs{Stream: key, MaxLen: 100_000, Approx: true, Values: []any{"data", e.payload}}
		var produced int64
		for cctx.Err() == nil {
			if produced-acked.Load() > maxOut {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			p := rc.Pipeline()
			for range batch {
				p.XAdd(cctx, args)
			}
			if _, err := p.Exec(cctx); err != nil {
				note(err)
				sleepCtx(cctx, 10*time.Millisecond)
				continue
			}
			produced += batch
		}
	}()
	go func() { // consumer: XREADGROUP COUNT 64, one XACK per batch
		defer wg.Done()
		args := &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, ">"}, Count: batch, Block: 100 * time.Millisecond}
		ids := make([]string, 0, batch)
		for cctx.Err() == nil {
			res, err := rc.XReadGroup(cctx, args).Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				note(err)
				sleepCtx(cctx, 10*time.Millisecond)
				continue
			}
			ids = ids[:0]
			for _, s := range res {
				for _, m := range s.Messages {
					ids = append(ids, m.ID)
				}
			}
			if len(ids) == 0 {
				continue
			}
			if err := rc.XAck(cctx, key, "g", ids...).Err(); err != nil {
				note(err)
				continue
			}
			acked.Add(int64(len(ids)))
		}
	}()
	sleepCtx(ctx, e.opt.Warmup)
	a0, m := acked.Load(), e.startMeter(ctx)
	t0 := time.Now()
	sleepCtx(ctx, e.opt.Duration)
	res := &RawRedisResult{Batch: batch, MaxOutstanding: maxOut, Acked: acked.Load() - a0}
	el := time.Since(t0)
	res.Usage = m.stop(ctx, res.Acked)
	cancel()
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	res.AckedPerS = rate(res.Acked, el)
	e.rep.Scenarios.RawRedis = res
	e.printf("%-12s B=%d   %9.0f acked/s   (CPU %.1f µs/event redis, %.1f bench)",
		RawRedis, batch, res.AckedPerS, res.Usage.RedisUSPerOp, res.Usage.BenchUSPerOp)
	e.printf("%-12s %s", RawRedis, res.Usage.CostLine())
	return ctx.Err()
}

// ---- throughput: single, fanout10, triggers10k ----

// ThroughputResult is a sustained end-to-end run: closed-loop publishers,
// deliveries counted at the sink over the measurement window.
type ThroughputResult struct {
	Triggers int `json:"triggers"`
	// RegistrationS is how long registering the triggers took (triggers10k).
	RegistrationS    float64 `json:"registration_s,omitempty"`
	RegistrationPerS float64 `json:"registrations_per_s,omitempty"`
	// RegistrationRetries counts applies refused by a store conflict and retried.
	RegistrationRetries int64   `json:"registration_retries,omitempty"`
	SettleS             float64 `json:"settle_s,omitempty"`
	RegistrationError   string  `json:"registration_error,omitempty"`
	DeletionS           float64 `json:"deletion_s,omitempty"`
	// MetricsBytes and MetricsScrapeS are the size of GET /metrics and how
	// long it took, with the triggers registered (triggers10k; the first
	// scrape, which reads every queue's figures from the store).
	MetricsBytes   int64   `json:"metrics_bytes,omitempty"`
	MetricsScrapeS float64 `json:"metrics_scrape_s,omitempty"`
	Publishers     int     `json:"publishers"`
	Batch          int     `json:"batch"`
	Accepted       int64   `json:"accepted"`
	AcceptedPerS   float64 `json:"accepted_per_s"`
	// Delivered counts invocations at the sink (deliveries: with fanout10
	// ten per event).
	Delivered          int64   `json:"delivered"`
	DeliveredPerS      float64 `json:"delivered_per_s"`
	DeliveriesPerEvent float64 `json:"deliveries_per_accepted_event,omitempty"`
	Pushbacks          int64   `json:"pushbacks"`
	Errors             int64   `json:"errors"`
	FirstError         string  `json:"first_error,omitempty"`
	// BacklogEnd is the events queued for the triggers at the end of the
	// window (TriggerStats queued), InFlightEnd the attempts running.
	BacklogEnd  int64             `json:"backlog_end"`
	InFlightEnd int64             `json:"in_flight_end"`
	Usage       Usage             `json:"usage"`
	HTTP        *ThroughputResult `json:"http,omitempty"`
	// Unary is single with a function that serves only unary Invoke.
	Unary *ThroughputResult `json:"unary,omitempty"`
	// Fanout is dedup's fan-out variant (see Scenarios.Dedup).
	Fanout *ThroughputResult `json:"fanout,omitempty"`
}

// measure runs publishers started by pub for warmup + duration, counting
// deliveries at the sink over the duration.
func (e *env) measure(ctx context.Context, names []string, pub func(context.Context, *pubStats) *sync.WaitGroup) *ThroughputResult {
	return e.measureAt(ctx, e.sinkA, names, pub)
}

// measureAt is measure with the triggers' function sk.
func (e *env) measureAt(ctx context.Context, sk *sink, names []string, pub func(context.Context, *pubStats) *sync.WaitGroup) *ThroughputResult {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Every event matches every trigger named: len(names) deliveries each.
	base, per := sk.calls.Load(), int64(len(names))
	st := &pubStats{window: int64(e.opt.Window)}
	st.owed = func() int64 { return st.accepted.Load()*per - (sk.calls.Load() - base) }
	wg := pub(pctx, st)
	sleepCtx(ctx, e.opt.Warmup)
	a0, d0, p0, m := st.accepted.Load(), sk.calls.Load(), st.pushbacks.Load(), e.startMeter(ctx)
	t0 := time.Now()
	sleepCtx(ctx, e.opt.Duration)
	r := &ThroughputResult{Triggers: len(names), Publishers: e.opt.Concurrency, Batch: e.opt.Batch,
		Accepted: st.accepted.Load() - a0, Delivered: sk.calls.Load() - d0, Pushbacks: st.pushbacks.Load() - p0}
	el := time.Since(t0)
	r.Usage = m.stop(ctx, r.Delivered)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	for _, n := range names {
		q, f := e.queued(sctx, n)
		r.BacklogEnd += q
		r.InFlightEnd += f
	}
	scancel()
	cancel()
	wg.Wait()
	r.AcceptedPerS, r.DeliveredPerS = rate(r.Accepted, el), rate(r.Delivered, el)
	if r.Accepted > 0 {
		r.DeliveriesPerEvent = round3(float64(r.Delivered) / float64(r.Accepted))
	}
	r.Errors, r.FirstError = st.errors.Load(), st.firstError()
	return r
}

func (e *env) printThroughput(label string, r *ThroughputResult) {
	e.printf("%-12s %9.0f delivered/s  %9.0f accepted/s  backlog %d  pushbacks %d  errors %d  (CPU µs/delivery: server %.1f redis %.1f bench %.1f total %.1f; %.2f cores; server peak RSS %.0f MiB)",
		label, r.DeliveredPerS, r.AcceptedPerS, r.BacklogEnd, r.Pushbacks, r.Errors,
		r.Usage.ServerUSPerOp, r.Usage.RedisUSPerOp, r.Usage.BenchUSPerOp, r.Usage.TotalUSPerOp, r.Usage.CoresBusy, r.Usage.ServerPeakRSSMiB)
	e.printf("%-12s %s", label, r.Usage.CostLine())
	if r.FirstError != "" {
		e.printf("%-12s first error: %s", label, r.FirstError)
	}
}

func (e *env) grpcPublishers(typ string) func(context.Context, *pubStats) *sync.WaitGroup {
	return func(ctx context.Context, st *pubStats) *sync.WaitGroup { return e.batchPublishers(ctx, typ, st) }
}

func (e *env) single(ctx context.Context) error {
	name, typ := e.triggerName("single"), e.eventType("single")
	if err := e.applyTrigger(ctx, name, typ, e.sinkA.addr, 128, 0); err != nil {
		return err
	}
	r := e.measure(ctx, []string{name}, e.grpcPublishers(typ))
	e.deleteTriggers(Single, name)
	e.rep.Scenarios.Single = r
	e.printThroughput(Single, r)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The same with a function that implements only unary Invoke: a call
	// per attempt instead of a message on an InvokeStream.
	name, typ = e.triggerName("single-unary"), e.eventType("single-unary")
	if err := e.applyTrigger(ctx, name, typ, e.sinkU.addr, 128, 0); err != nil {
		return err
	}
	u := e.measureAt(ctx, e.sinkU, []string{name}, e.grpcPublishers(typ))
	e.deleteTriggers(Single+"/unary", name)
	r.Unary = u
	e.printThroughput(Single+"/unary", u)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if e.tgt.httpAddr == "" {
		e.logf("single: no HTTP address of the server (--server-http): HTTP variant skipped")
		return nil
	}
	name, typ = e.triggerName("single-http"), e.eventType("single-http")
	if err := e.applyTrigger(ctx, name, typ, e.sinkA.addr, 128, 0); err != nil {
		return err
	}
	h := e.measure(ctx, []string{name}, func(ctx context.Context, st *pubStats) *sync.WaitGroup { return e.httpPublishers(ctx, typ, st) })
	e.deleteTriggers(Single+"/http", name)
	h.Publishers, h.Batch = e.opt.HTTPClients, 1
	r.HTTP = h
	e.printThroughput(Single+"/http", h)
	return ctx.Err()
}

func (e *env) fanout10(ctx context.Context) error {
	typ := e.eventType("fanout10")
	var names []string
	defer func() { e.deleteTriggers(Fanout10, names...) }()
	for i := range 10 {
		n := e.triggerName("fanout10-" + strconv.Itoa(i))
		if err := e.applyTrigger(ctx, n, typ, e.sinkA.addr, 128, 0); err != nil {
			return err
		}
		names = append(names, n)
	}
	r := e.measure(ctx, names, e.grpcPublishers(typ))
	e.rep.Scenarios.Fanout10 = r
	e.printThroughput(Fanout10, r)
	e.printf("%-12s %9.0f events/s accepted → %.0f deliveries/s (%.2f per event)", Fanout10, r.AcceptedPerS, r.DeliveredPerS, r.DeliveriesPerEvent)
	return ctx.Err()
}

func (e *env) triggers10k(ctx context.Context) error {
	n := e.opt.Triggers
	names := make([]string, n)
	for i := range names {
		names[i] = e.triggerName(fmt.Sprintf("t10k-%05d", i))
	}
	typeOf := func(i int) string { return e.eventType("t10k-" + strconv.Itoa(i)) }
	r := &ThroughputResult{}
	// Registration: 8 concurrent ApplyTrigger callers, for at most
	// RegistrationTimeout; the throughput is then measured with the triggers
	// registered so far.
	start := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, e.opt.RegistrationTimeout)
	defer rcancel()
	var next, done, retries atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rctx.Err() == nil && firstErr.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				conc := 0
				if i == 0 {
					conc = 128
				}
				// Concurrent applies may conflict in the store (UNAVAILABLE "too
				// much concurrent change"): retry those, counting them.
				var err error
				for try := 0; ; try++ {
					err = e.applyTrigger(rctx, names[i], typeOf(i), e.sinkA.addr, conc, 0)
					if err == nil || !sdk.IsRetryable(err) || try >= 50 || rctx.Err() != nil {
						break
					}
					retries.Add(1)
					sleepCtx(rctx, time.Duration(1+mrand.IntN(10*min(try+1, 10)))*time.Millisecond)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				if d := done.Add(1); d%1000 == 0 {
					e.logf("triggers10k: %d/%d registered in %s", d, n, time.Since(start).Round(time.Millisecond))
				}
			}
		}()
	}
	wg.Wait()
	reg := time.Since(start)
	registered := int(done.Load())
	r.RegistrationS = round3(reg.Seconds())
	r.RegistrationPerS = rate(int64(registered), reg)
	r.RegistrationRetries = retries.Load()
	if p := firstErr.Load(); p != nil && ctx.Err() == nil {
		if rctx.Err() != nil {
			firstErr.Store(nil) // an apply cut short by the timeout
		} else {
			r.RegistrationError = (*p).Error()
		}
	}
	if registered < n && ctx.Err() == nil && rctx.Err() != nil {
		r.RegistrationError = fmt.Sprintf("--registration-timeout %s reached after %d of %d triggers", e.opt.RegistrationTimeout, registered, n)
	}
	e.printf("%-12s registered %d triggers in %.1f s (%.0f/s, %d applies retried after store conflicts)", Triggers10k, registered, reg.Seconds(), r.RegistrationPerS, r.RegistrationRetries)
	if r.RegistrationError != "" {
		e.printf("%-12s registration stopped: %s", Triggers10k, r.RegistrationError)
	}
	cleanup := func() {
		if e.tgt.proc != nil {
			// The child is stopped and every key dropped at the end; deleting
			// ten thousand triggers one by one would only cost time.
			return
		}
		t0 := time.Now()
		e.deleteMany(names[:min(int(next.Load()), n)]) // those cut short may exist
		r.DeletionS = round3(time.Since(t0).Seconds())
		e.printf("%-12s deleted %d triggers in %.1f s", Triggers10k, registered, r.DeletionS)
	}
	if ctx.Err() != nil || registered == 0 || firstErr.Load() != nil {
		cleanup()
		e.rep.Scenarios.Triggers10k = r
		if p := firstErr.Load(); p != nil {
			return *p
		}
		return ctx.Err()
	}
	r.SettleS = round3(e.settle(ctx, 2*time.Minute).Seconds())
	if r.SettleS > 0 {
		e.printf("%-12s server settled %.1f s after registration", Triggers10k, r.SettleS)
	}
	if e.tgt.httpAddr != "" {
		if n, d, err := e.scrapeMetrics(ctx); err != nil {
			e.logf("triggers10k: GET /metrics: %v", err)
		} else {
			r.MetricsBytes, r.MetricsScrapeS = n, round3(d.Seconds())
			e.printf("%-12s GET /metrics with %d triggers: %.1f MiB (%.0f bytes per trigger) in %.0f ms", Triggers10k, registered, float64(n)/(1<<20), float64(n)/float64(registered), d.Seconds()*1000)
		}
	}
	m := e.measure(ctx, names[:1], e.grpcPublishers(typeOf(0)))
	m.Triggers, m.RegistrationS, m.RegistrationPerS, m.RegistrationRetries, m.SettleS, m.RegistrationError = registered, r.RegistrationS, r.RegistrationPerS, r.RegistrationRetries, r.SettleS, r.RegistrationError
	m.MetricsBytes, m.MetricsScrapeS = r.MetricsBytes, r.MetricsScrapeS
	r = m
	e.rep.Scenarios.Triggers10k = r
	e.printThroughput(Triggers10k, r)
	if s := e.rep.Scenarios.Single; s != nil && s.DeliveredPerS > 0 {
		e.printf("%-12s %.2f × single", Triggers10k, r.DeliveredPerS/s.DeliveredPerS)
	}
	if _, err := e.client.DeleteTrigger(context.Background(), names[0], true); err != nil {
		e.logf("delete trigger %s: %v", names[0], err)
	}
	cleanup()
	return ctx.Err()
}

// deleteMany deletes triggers with 8 concurrent callers.
func (e *env) deleteMany(names []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(names) || ctx.Err() != nil {
					return
				}
				_, _ = e.client.DeleteTrigger(ctx, names[i], true)
			}
		}()
	}
	wg.Wait()
}

// settle waits until a child server uses less than half a core over a
// second (it may still be catching up on trigger changes), at most limit,
// and returns how long it waited. Without a child it waits one second.
func (e *env) settle(ctx context.Context, limit time.Duration) time.Duration {
	start := time.Now()
	pid := e.serverPID()
	if pid == 0 {
		sleepCtx(ctx, time.Second)
		return 0
	}
	last, err := procCPU(pid)
	if err != nil {
		return 0
	}
	for time.Since(start) < limit && sleepCtx(ctx, time.Second) {
		c, err := procCPU(pid)
		if err != nil {
			break
		}
		if c-last < 500*time.Millisecond {
			break
		}
		last = c
	}
	return time.Since(start)
}

// ---- latency ----

// LatencyResult is one open-loop rate.
type LatencyResult struct {
	RatePerS  int     `json:"rate_per_s"`
	Workers   int     `json:"workers"`
	Sent      int64   `json:"sent"`
	Accepted  int64   `json:"accepted"`
	Delivered int64   `json:"delivered"`
	Pushbacks int64   `json:"pushbacks"`
	Errors    int64   `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`
	SendRate  float64 `json:"achieved_rate_per_s"`
	// PublishToInvoke: scheduled send time → the sink's Invoke (measured
	// window only).
	PublishToInvoke LatencySummary `json:"publish_to_invoke"`
	// PublishAck: scheduled send time → Publish answered.
	PublishAck LatencySummary `json:"publish_ack"`
	Usage      Usage          `json:"usage"`
	// Floor is what the transports alone cost per event at this rate.
	Floor *FloorResult `json:"floor,omitempty"`
}

const openLoopWorkers = 32

func (e *env) latency(ctx context.Context) error {
	for _, rt := range e.opt.LatencyRates {
		name, typ := e.triggerName("latency-"+strconv.Itoa(rt)), e.eventType("latency-"+strconv.Itoa(rt))
		if err := e.applyTrigger(ctx, name, typ, e.sinkA.addr, 0, 0); err != nil {
			return err
		}
		r, err := e.openLoopRun(ctx, typ, rt)
		e.deleteTriggers(Latency+"/"+strconv.Itoa(rt), name)
		if err != nil {
			return err
		}
		e.rep.Scenarios.Latency = append(e.rep.Scenarios.Latency, r)
		l := r.PublishToInvoke
		e.printf("%-12s %5d/s  publish→invoke p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  (n=%d; publish ack p99 %.2f ms; sent %d delivered %d errors %d; %.2f cores)",
			Latency, rt, l.P50Ms, l.P99Ms, l.P999Ms, l.MaxMs, l.Count, r.PublishAck.P99Ms, r.Sent, r.Delivered, r.Errors, r.Usage.CoresBusy)
		e.printf("%-12s %5d/s  %s", Latency, rt, r.Usage.CostLine())
		if sg := e.rep.Scenarios.Single; sg != nil && sg.Usage.ServerUSPerOp > 0 && sg.Usage.RedisUSPerOp > 0 && sg.Usage.RedisCallsPerOp > 0 {
			e.printf("%-12s %5d/s  × single per event: server CPU ×%.1f, redis CPU ×%.1f, redis commands ×%.1f", Latency, rt,
				r.Usage.ServerUSPerOp/sg.Usage.ServerUSPerOp, r.Usage.RedisUSPerOp/sg.Usage.RedisUSPerOp, r.Usage.RedisCallsPerOp/sg.Usage.RedisCallsPerOp)
		}
		f, err := e.floorAt(ctx, rt)
		if err != nil {
			return err
		}
		r.Floor = f
		e.printFloor(f)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// openLoopRun publishes typ at rt/s for warmup + duration and measures the
// latency at sink A over the duration.
func (e *env) openLoopRun(ctx context.Context, typ string, rt int) (*LatencyResult, error) {
	start := time.Now().Add(20 * time.Millisecond)
	since := start.Add(e.opt.Warmup)
	rec := e.sinkA.record(since)
	defer e.sinkA.stopRecording()
	c0 := e.sinkA.calls.Load()
	st := &pubStats{}
	r := &LatencyResult{RatePerS: rt, Workers: openLoopWorkers}
	var ack Histogram
	done := make(chan int64, 1)
	go func() {
		done <- e.openLoop(ctx, typ, rt, start, e.opt.Warmup+e.opt.Duration, openLoopWorkers, st, &ack, since)
	}()
	sleepCtx(ctx, time.Until(since))
	m := e.startMeter(ctx)
	t0 := time.Now()
	r.Sent = <-done
	el := time.Since(t0)
	r.Accepted, r.Pushbacks, r.Errors, r.FirstErr = st.accepted.Load(), st.pushbacks.Load(), st.errors.Load(), st.firstError()
	measured := int64(e.opt.Duration.Seconds() * float64(rt))
	r.Usage = m.stop(ctx, measured)
	r.SendRate = rate(measured, el)
	// Wait for the stragglers.
	deadline := time.Now().Add(10 * time.Second)
	for e.sinkA.calls.Load()-c0 < r.Accepted && time.Now().Before(deadline) && sleepCtx(ctx, 20*time.Millisecond) {
	}
	r.Delivered = e.sinkA.calls.Load() - c0
	r.PublishToInvoke, r.PublishAck = rec.hist.Summary(), ack.Summary()
	return r, ctx.Err()
}

// ---- isolation ----

// IsolationResult compares trigger A's latency alone, next to a healthy
// trigger B (same total load), and while B's function is stalled with
// events for it still arriving.
type IsolationResult struct {
	RatePerS int `json:"rate_per_s_each"`
	// A's publish→invoke latency in each phase.
	AAlone        LatencySummary `json:"a_alone"`
	AWithBHealthy LatencySummary `json:"a_with_b_healthy"`
	AWithBStalled LatencySummary `json:"a_with_b_stalled"`
	// P99Ratio: A's p99 with B stalled over A alone; P99RatioHealthy: over A
	// with B healthy (the same load, so the fairer comparison).
	P99Ratio        float64 `json:"a_p99_with_b_stalled_vs_alone"`
	P99RatioHealthy float64 `json:"a_p99_with_b_stalled_vs_b_healthy"`
	// LatencyScenarioP99Ms is the latency scenario's p99 at the same rate.
	LatencyScenarioP99Ms float64 `json:"latency_scenario_p99_ms,omitempty"`
	AErrors              int64   `json:"a_errors"`
	BAccepted            int64   `json:"b_accepted"`
	BPushbacks           int64   `json:"b_pushbacks"`
	BErrors              int64   `json:"b_errors"`
	BBacklogEnd          int64   `json:"b_backlog_end"`
	BInFlightEnd         int64   `json:"b_in_flight_end"`
	BBlockedAtSink       int64   `json:"b_blocked_at_sink"`
	// Server memory while B's backlog grew (child server only).
	RSSStartMiB       float64 `json:"server_rss_start_mib,omitempty"`
	RSSEndMiB         float64 `json:"server_rss_end_mib,omitempty"`
	RSSMaxMiB         float64 `json:"server_rss_max_mib,omitempty"`
	RSSGrowthMiB      float64 `json:"server_rss_growth_mib"`
	RSSGrowthPer10kKB float64 `json:"server_rss_growth_kib_per_10k_backlog"`
	UsageAlone        Usage   `json:"usage_alone"`
	UsageWithBHealthy Usage   `json:"usage_with_b_healthy"`
	UsageWithB        Usage   `json:"usage_with_b_stalled"`
}

const isolationRate = 1000

func (e *env) isolation(ctx context.Context) error {
	nameA, typA := e.triggerName("iso-a"), e.eventType("iso-a")
	nameB, typB := e.triggerName("iso-b"), e.eventType("iso-b")
	res := &IsolationResult{RatePerS: isolationRate}
	for _, l := range e.rep.Scenarios.Latency {
		if l.RatePerS == isolationRate {
			res.LatencyScenarioP99Ms = l.PublishToInvoke.P99Ms
		}
	}
	if err := e.applyTrigger(ctx, nameA, typA, e.sinkA.addr, 0, 0); err != nil {
		return err
	}
	defer func() { e.deleteTriggers(Isolation, nameA, nameB) }()
	line := func(label string, l LatencySummary, u Usage) {
		e.printf("%-12s %-17s p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms", Isolation, label, l.P50Ms, l.P99Ms, l.P999Ms)
		e.printf("%-12s %-17s %s", Isolation, label, u.CostLine())
	}
	// Phase 1: A alone.
	alone, err := e.openLoopRun(ctx, typA, isolationRate)
	if err != nil {
		return err
	}
	res.AAlone, res.UsageAlone, res.AErrors = alone.PublishToInvoke, alone.Usage, alone.Errors
	line("A alone", res.AAlone, res.UsageAlone)

	// B: max_concurrency 4, a queue that never pushes back here.
	if err := e.applyTrigger(ctx, nameB, typB, e.sinkB.addr, 4, 10_000_000); err != nil {
		return err
	}
	// withB runs A's measurement while events for B arrive at the same rate.
	withB := func(during func()) (*LatencyResult, *pubStats, error) {
		bctx, bcancel := context.WithCancel(ctx)
		defer bcancel()
		bst := &pubStats{}
		bdone := make(chan struct{})
		go func() {
			defer close(bdone)
			e.openLoop(bctx, typB, isolationRate, time.Now(), e.opt.Warmup+e.opt.Duration+500*time.Millisecond, openLoopWorkers, bst, nil, time.Time{})
		}()
		r, err := e.openLoopRun(ctx, typA, isolationRate)
		during()
		bcancel()
		<-bdone
		return r, bst, err
	}
	// Phase 2: B healthy (the same total load as phase 3).
	healthy, _, err := withB(func() {})
	if err != nil {
		return err
	}
	res.AWithBHealthy, res.UsageWithBHealthy, res.AErrors = healthy.PublishToInvoke, healthy.Usage, res.AErrors+healthy.Errors
	line("A with B healthy", res.AWithBHealthy, res.UsageWithBHealthy)

	// Phase 3: B's function stalls; events for B keep coming.
	release := e.sinkB.stall()
	defer release()
	var rssStart, rssMax, rssEnd int64
	pid := e.serverPID()
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() { // server RSS while B's backlog grows
		defer close(rssDone)
		if pid == 0 {
			return
		}
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _, err := procMem(pid); err == nil {
				if rssStart == 0 {
					rssStart = rss
				}
				rssMax, rssEnd = max(rssMax, rss), rss
			}
			select {
			case <-stopRSS:
				return
			case <-tick.C:
			}
		}
	}()
	stalled, bst, err := withB(func() {
		close(stopRSS)
		<-rssDone
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		res.BBacklogEnd, res.BInFlightEnd = e.queued(sctx, nameB)
		scancel()
		res.BBlockedAtSink = e.sinkB.blocked.Load()
	})
	release()
	if err != nil {
		return err
	}
	res.AWithBStalled, res.UsageWithB, res.AErrors = stalled.PublishToInvoke, stalled.Usage, res.AErrors+stalled.Errors
	res.BAccepted, res.BPushbacks, res.BErrors = bst.accepted.Load(), bst.pushbacks.Load(), bst.errors.Load()
	if res.AAlone.P99Ms > 0 {
		res.P99Ratio = round3(res.AWithBStalled.P99Ms / res.AAlone.P99Ms)
	}
	if res.AWithBHealthy.P99Ms > 0 {
		res.P99RatioHealthy = round3(res.AWithBStalled.P99Ms / res.AWithBHealthy.P99Ms)
	}
	if pid > 0 {
		res.RSSStartMiB, res.RSSEndMiB, res.RSSMaxMiB = mib(rssStart), mib(rssEnd), mib(rssMax)
		res.RSSGrowthMiB = round3(res.RSSEndMiB - res.RSSStartMiB)
		if res.BBacklogEnd > 0 {
			res.RSSGrowthPer10kKB = round3(float64(rssEnd-rssStart) / 1024 / float64(res.BBacklogEnd) * 10000)
		}
	}
	e.rep.Scenarios.Isolation = res
	line("A with B stalled", res.AWithBStalled, res.UsageWithB)
	e.printf("%-12s A p99 with B stalled: ×%.2f vs B healthy, ×%.2f vs A alone (latency scenario p99 %.2f ms)",
		Isolation, res.P99RatioHealthy, res.P99Ratio, res.LatencyScenarioP99Ms)
	e.printf("%-12s B backlog %d (accepted %d, %d blocked at its sink, pushbacks %d); server RSS %.1f → %.1f MiB (max %.1f, growth %.1f MiB)",
		Isolation, res.BBacklogEnd, res.BAccepted, res.BBlockedAtSink, res.BPushbacks, res.RSSStartMiB, res.RSSEndMiB, res.RSSMaxMiB, res.RSSGrowthMiB)
	return ctx.Err()
}

// scrapeMetrics reads the server's /metrics once (uncompressed, as the
// server writes it) and returns its size and how long it took.
func (e *env) scrapeMetrics(ctx context.Context) (int64, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.tgt.httpAddr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	start := time.Now()
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	d := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return n, d, err
}
