package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) would
// need cgo).
const clockTicks = 100

// parseStatCPU returns utime+stime from the contents of /proc/PID/stat. The
// command name (field 2) may hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no ')' after the command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// parseStatusKB returns the value of a "Name:   123 kB" line of
// /proc/PID/status in bytes.
func parseStatusKB(status []byte, name string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("proc status: %s has no value", name)
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc status: %s: %w", name, err)
		}
		if len(f) > 1 && f[1] != "kB" {
			return 0, fmt.Errorf("proc status: %s: unit %q, want kB", name, f[1])
		}
		return v * 1024, nil
	}
	return 0, fmt.Errorf("proc status: no %s line", name)
}

// procCPU returns the CPU time (user+system) used so far by process pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// procMem returns the resident set size and its peak (VmRSS, VmHWM) of pid.
func procMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	rss, err1 := parseStatusKB(b, "VmRSS")
	hwm, err2 := parseStatusKB(b, "VmHWM")
	return rss, hwm, errors.Join(err1, err2)
}

// resetPeakRSS resets VmHWM of pid to its current RSS (Linux ≥ 4.0, own
// processes), so a peak can be read per scenario.
func resetPeakRSS(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// selfCPU returns the CPU time used so far by this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parseRedisCPU returns used_cpu_user + used_cpu_sys from the reply of
// INFO cpu.
func parseRedisCPU(info string) (time.Duration, error) {
	var user, sys float64
	var found int
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		var dst *float64
		switch k {
		case "used_cpu_user":
			dst = &user
		case "used_cpu_sys":
			dst = &sys
		default:
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("redis INFO cpu: %s: %w", k, err)
		}
		*dst = f
		found++
	}
	if found != 2 {
		return 0, errors.New("redis INFO cpu: used_cpu_user or used_cpu_sys missing")
	}
	return time.Duration((user + sys) * float64(time.Second)), nil
}

// parseCommandStats returns the calls per command from the reply of INFO
// commandstats: lines "cmdstat_<name>:calls=<n>,usec=…" (subcommands are
// named "xgroup|create").
func parseCommandStats(info string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("redis INFO commandstats: %q: no ':'", line)
		}
		calls, _, _ := strings.Cut(fields, ",")
		v, ok := strings.CutPrefix(calls, "calls=")
		if !ok {
			return nil, fmt.Errorf("redis INFO commandstats: %s: no calls= first", name)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis INFO commandstats: %s: %w", name, err)
		}
		out[name] = n
	}
	return out, nil
}
