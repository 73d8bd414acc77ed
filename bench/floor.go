package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// FloorResult is what the transports alone cost per event at a latency
// rate, one event per call as the latency scenario's publishers send them:
// the floor under Switchyard's own cost per event at that rate. Each is
// measured in the same run as raw-grpc and raw-redis at saturation, so the
// ratios say how much of the gap between a quiet and a saturated
// Switchyard the transports alone already have.
type FloorResult struct {
	RatePerS int `json:"rate_per_s"`
	// GRPC: unary Invoke calls to the sink at the rate; Usage.BenchUSPerOp
	// is client and sink together, as raw-grpc's.
	GRPC RawGRPCRun `json:"grpc_unary"`
	// GRPCVsSaturated divides GRPC's CPU per call by raw-grpc C=16's.
	GRPCVsSaturated float64 `json:"grpc_cpu_vs_saturated,omitempty"`
	// Redis: one XADD per event at the rate, read with XREADGROUP and
	// acknowledged with XACK as they come.
	Redis RawRedisResult `json:"redis"`
	// RedisCPUVsSaturated and RedisCallsVsSaturated divide Redis's CPU and
	// commands per event by raw-redis's (pipelined, batched).
	RedisCPUVsSaturated   float64 `json:"redis_cpu_vs_saturated,omitempty"`
	RedisCallsVsSaturated float64 `json:"redis_calls_vs_saturated,omitempty"`
}

// floorAt measures the transports alone at rt events/s (see FloorResult).
func (e *env) floorAt(ctx context.Context, rt int) (*FloorResult, error) {
	f := &FloorResult{RatePerS: rt}
	g, err := e.floorGRPC(ctx, rt)
	if err != nil {
		return nil, fmt.Errorf("gRPC floor: %w", err)
	}
	f.GRPC = g
	if s := e.rep.Scenarios.RawGRPC; s != nil && s.C16.Usage.BenchUSPerOp > 0 {
		f.GRPCVsSaturated = round3(g.Usage.BenchUSPerOp / s.C16.Usage.BenchUSPerOp)
	}
	r, err := e.floorRedis(ctx, rt)
	if err != nil {
		return nil, fmt.Errorf("redis floor: %w", err)
	}
	f.Redis = r
	if s := e.rep.Scenarios.RawRedis; s != nil && s.Usage.RedisUSPerOp > 0 && s.Usage.RedisCallsPerOp > 0 {
		f.RedisCPUVsSaturated = round3(r.Usage.RedisUSPerOp / s.Usage.RedisUSPerOp)
		f.RedisCallsVsSaturated = round3(r.Usage.RedisCallsPerOp / s.Usage.RedisCallsPerOp)
	}
	return f, ctx.Err()
}

// paced calls send once per 1/rt s for warmup + duration, open loop, from
// workers goroutines, and returns the number of calls made in the measured
// window; meter is started at the window's start and stopped at its end.
func (e *env) paced(ctx context.Context, rt, workers int, send func(context.Context) error) (int64, Usage, int64) {
	start := time.Now()
	since := start.Add(e.opt.Warmup)
	n := int64((e.opt.Warmup + e.opt.Duration).Seconds() * float64(rt))
	ch := make(chan bool, n)
	var errs, inWindow atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for measured := range ch {
				if ctx.Err() != nil {
					continue
				}
				if err := send(ctx); err != nil && ctx.Err() == nil {
					errs.Add(1)
				}
				if measured {
					inWindow.Add(1)
				}
			}
		}()
	}
	interval := float64(time.Second) / float64(rt)
	var m *meter
	for i := range n {
		due := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(due); d > 0 && !sleepCtx(ctx, d) {
			break
		}
		if m == nil && !due.Before(since) {
			m = e.startMeter(ctx)
		}
		ch <- m != nil
	}
	close(ch)
	wg.Wait()
	if m == nil {
		return 0, Usage{}, errs.Load()
	}
	calls := inWindow.Load()
	return calls, m.stop(ctx, calls), errs.Load()
}

func (e *env) floorGRPC(ctx context.Context, rt int) (RawGRPCRun, error) {
	run := RawGRPCRun{Concurrency: openLoopWorkers}
	conn, client, req, err := e.sinkClient("floor")
	if err != nil {
		return run, err
	}
	defer conn.Close()
	t0 := time.Now()
	run.Calls, run.Usage, run.Errors = e.paced(ctx, rt, openLoopWorkers, func(ctx context.Context) error {
		_, err := client.Invoke(ctx, req)
		return err
	})
	run.CallsPerS = rate(run.Calls, time.Since(t0)-e.opt.Warmup)
	return run, nil
}

func (e *env) floorRedis(ctx context.Context, rt int) (RawRedisResult, error) {
	res := RawRedisResult{Batch: 1}
	ropt, err := redis.ParseURL(e.opt.RedisURL)
	if err != nil {
		return res, err
	}
	rc := redis.NewClient(ropt)
	defer rc.Close()
	key := e.prefix + ":floor-redis"
	defer e.rdb.Del(context.Background(), key)
	if err := rc.XGroupCreateMkStream(ctx, key, "g", "$").Err(); err != nil {
		return res, fmt.Errorf("XGROUP CREATE: %w", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	var acked atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the consumer: what comes, acknowledged as it comes
		defer wg.Done()
		args := &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, ">"}, Count: 64, Block: 100 * time.Millisecond}
		var ids []string
		for cctx.Err() == nil {
			got, err := rc.XReadGroup(cctx, args).Result()
			if err != nil {
				if !errors.Is(err, redis.Nil) {
					sleepCtx(cctx, 10*time.Millisecond)
				}
				continue
			}
			ids = ids[:0]
			for _, s := range got {
				for _, m := range s.Messages {
					ids = append(ids, m.ID)
				}
			}
			if len(ids) > 0 && rc.XAck(cctx, key, "g", ids...).Err() == nil {
				acked.Add(int64(len(ids)))
			}
		}
	}()
	add := &redis.XAddArgs{Stream: key, MaxLen: 100_000, Approx: true, Values: []any{"data", e.payload}}
	t0 := time.Now()
	var errs int64
	res.Acked, res.Usage, errs = e.paced(ctx, rt, 1, func(ctx context.Context) error {
		return rc.XAdd(ctx, add).Err()
	})
	res.AckedPerS = rate(res.Acked, time.Since(t0)-e.opt.Warmup)
	cancel()
	wg.Wait()
	if errs > 0 {
		return res, fmt.Errorf("%d XADDs failed", errs)
	}
	return res, nil
}

func (e *env) printFloor(f *FloorResult) {
	ratio := func(x float64) string {
		if x == 0 {
			return "no saturated run to compare"
		}
		return fmt.Sprintf("×%.1f saturated", x)
	}
	e.printf("%-12s %5d/s  floor: raw gRPC unary %.1f µs CPU/call, client+sink (%s; %d errors)",
		Latency, f.RatePerS, f.GRPC.Usage.BenchUSPerOp, ratio(f.GRPCVsSaturated), f.GRPC.Errors)
	e.printf("%-12s %5d/s  floor: raw Redis XADD→XREADGROUP→XACK %.1f µs Redis CPU/event (%s), %.2f commands/event (%s)",
		Latency, f.RatePerS, f.Redis.Usage.RedisUSPerOp, ratio(f.RedisCPUVsSaturated), f.Redis.Usage.RedisCallsPerOp, ratio(f.RedisCallsVsSaturated))
}
