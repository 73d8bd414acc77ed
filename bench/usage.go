package bench

import (
	"context"
	"time"
)

// Usage is the CPU and memory spent over one measurement window.
type Usage struct {
	WallS float64 `json:"wall_s"`
	// ServerCPUS is the server's utime+stime; only for a child server.
	ServerCPUS float64 `json:"server_cpu_s,omitempty"`
	// ServerPeakRSSMiB is the server's VmHWM, reset at the window's start
	// when the kernel allows; ServerRSSMiB its VmRSS at the end.
	ServerPeakRSSMiB float64 `json:"server_peak_rss_mib,omitempty"`
	ServerRSSMiB     float64 `json:"server_rss_mib,omitempty"`
	// RedisCPUS is used_cpu_user+used_cpu_sys of the Redis server (INFO cpu).
	RedisCPUS float64 `json:"redis_cpu_s"`
	// BenchCPUS is this process's CPU: publishers, sinks, clients.
	BenchCPUS float64 `json:"bench_cpu_s"`
	// Ops is the work the per-op figures divide by (events delivered, calls).
	Ops int64 `json:"ops,omitempty"`
	// CPU µs per op, per process and in total.
	ServerUSPerOp float64 `json:"server_cpu_us_per_op,omitempty"`
	RedisUSPerOp  float64 `json:"redis_cpu_us_per_op,omitempty"`
	BenchUSPerOp  float64 `json:"bench_cpu_us_per_op,omitempty"`
	TotalUSPerOp  float64 `json:"total_cpu_us_per_op,omitempty"`
	// CoresBusy is all CPU measured divided by the wall time.
	CoresBusy float64 `json:"cores_busy"`
}

// meter measures one window.
type meter struct {
	e                    *env
	t0                   time.Time
	server, redis, bench time.Duration
	serverOK, redisOK    bool
}

func (e *env) startMeter(ctx context.Context) *meter {
	m := &meter{e: e}
	if pid := e.serverPID(); pid > 0 {
		_ = resetPeakRSS(pid)
		if c, err := procCPU(pid); err == nil {
			m.server, m.serverOK = c, true
		}
	}
	m.redis, m.redisOK = e.redisCPU(ctx)
	m.bench = selfCPU()
	m.t0 = time.Now()
	return m
}

// stop ends the window; ops (if positive) gives the per-op figures.
func (m *meter) stop(ctx context.Context, ops int64) Usage {
	wall := time.Since(m.t0)
	u := Usage{WallS: round3(wall.Seconds()), Ops: ops}
	bench := selfCPU() - m.bench
	u.BenchCPUS = round3(bench.Seconds())
	total := bench
	if r, ok := m.e.redisCPU(ctx); ok && m.redisOK {
		u.RedisCPUS = round3((r - m.redis).Seconds())
		total += r - m.redis
	}
	var server time.Duration
	if pid := m.e.serverPID(); pid > 0 && m.serverOK {
		if c, err := procCPU(pid); err == nil {
			server = c - m.server
			u.ServerCPUS = round3(server.Seconds())
			total += server
		}
		if rss, hwm, err := procMem(pid); err == nil {
			u.ServerRSSMiB = mib(rss)
			u.ServerPeakRSSMiB = mib(hwm)
		}
	}
	if ops > 0 {
		per := func(d time.Duration) float64 { return round3(float64(d.Microseconds()) / float64(ops)) }
		u.ServerUSPerOp = per(server)
		u.RedisUSPerOp = per(time.Duration(u.RedisCPUS * float64(time.Second)))
		u.BenchUSPerOp = per(bench)
		u.TotalUSPerOp = per(total)
	}
	if wall > 0 {
		u.CoresBusy = round3(total.Seconds() / wall.Seconds())
	}
	return u
}

func (e *env) serverPID() int {
	if e.tgt == nil {
		return 0
	}
	return e.tgt.pid
}

func (e *env) redisCPU(ctx context.Context) (time.Duration, bool) {
	info, err := e.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, false
	}
	d, err := parseRedisCPU(info)
	return d, err == nil
}

func mib(b int64) float64 { return round3(float64(b) / (1 << 20)) }

// rate returns n per second over d.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return round3(float64(n) / d.Seconds())
}
