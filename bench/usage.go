package bench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
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
	// RedisCalls is the commands Redis ran over the window (INFO
	// commandstats: the commands scripts and transactions ran count one
	// each, as do EVALSHA, MULTI and EXEC themselves), RedisCallsPerOp
	// per op and RedisTop the most frequent ones. Like RedisCPUS they are
	// Redis-wide: other clients of the same Redis count too.
	RedisCalls      int64          `json:"redis_calls,omitempty"`
	RedisCallsPerOp float64        `json:"redis_calls_per_op,omitempty"`
	RedisTop        []CommandCount `json:"redis_top_commands,omitempty"`
}

// CommandCount is how often Redis ran one command over a window.
type CommandCount struct {
	Name  string  `json:"name"`
	Calls int64   `json:"calls"`
	PerOp float64 `json:"per_op,omitempty"`
}

// topCommands is how many commands Usage.RedisTop lists.
const topCommands = 6

// CostLine is the per-op cost in one line: server and Redis CPU, Redis
// commands and the most frequent of them.
func (u Usage) CostLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "per event: server %.1f µs CPU, redis %.1f µs CPU, %.2f redis commands", u.ServerUSPerOp, u.RedisUSPerOp, u.RedisCallsPerOp)
	if len(u.RedisTop) > 0 {
		b.WriteString(" (")
		for i, c := range u.RedisTop {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %.2f", c.Name, c.PerOp)
		}
		b.WriteString(")")
	}
	return b.String()
}

// meter measures one window.
type meter struct {
	e                    *env
	t0                   time.Time
	server, redis, bench time.Duration
	serverOK, redisOK    bool
	cmds                 map[string]int64 // nil when INFO commandstats failed
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
	m.cmds = e.redisCommands(ctx)
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
	if c := m.e.redisCommands(ctx); c != nil && m.cmds != nil {
		u.RedisCalls, u.RedisTop = commandDelta(m.cmds, c, topCommands)
	}
	if ops > 0 {
		u.RedisCallsPerOp = round3(float64(u.RedisCalls) / float64(ops))
		for i := range u.RedisTop {
			u.RedisTop[i].PerOp = round3(float64(u.RedisTop[i].Calls) / float64(ops))
		}
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
	return e.tgt.pid()
}

func (e *env) redisCPU(ctx context.Context) (time.Duration, bool) {
	info, err := e.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, false
	}
	d, err := parseRedisCPU(info)
	return d, err == nil
}

// redisCommands returns the calls per command so far (INFO commandstats),
// nil if Redis did not answer.
func (e *env) redisCommands(ctx context.Context) map[string]int64 {
	info, err := e.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil
	}
	c, err := parseCommandStats(info)
	if err != nil {
		return nil
	}
	return c
}

// commandDelta returns the calls between two commandstats readings, in
// total and for the top n commands (most calls first, then by name).
func commandDelta(before, after map[string]int64, n int) (total int64, top []CommandCount) {
	for name, c := range after {
		d := c - before[name]
		if d <= 0 { // none, or the stats were reset (CONFIG RESETSTAT)
			continue
		}
		total += d
		top = append(top, CommandCount{Name: name, Calls: d})
	}
	slices.SortFunc(top, func(a, b CommandCount) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), strings.Compare(a.Name, b.Name))
	})
	return total, top[:min(n, len(top))]
}

func mib(b int64) float64 { return round3(float64(b) / (1 << 20)) }

// rate returns n per second over d.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return round3(float64(n) / d.Seconds())
}
