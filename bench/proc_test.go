package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses; utime 1234, stime 766.
	stat := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 766 0 0 20 0 12 0 100 1000000 500 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 20 * time.Second; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "1 (x S 1 2", "1 (x) S 1 2 3"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tswitchyard\nVmPeak:\t  900000 kB\nVmHWM:\t   54321 kB\nVmRSS:\t   40000 kB\nThreads:\t12\n"
	hwm, err := parseStatusKB([]byte(status), "VmHWM")
	if err != nil || hwm != 54321*1024 {
		t.Errorf("VmHWM = %d, %v", hwm, err)
	}
	rss, err := parseStatusKB([]byte(status), "VmRSS")
	if err != nil || rss != 40000*1024 {
		t.Errorf("VmRSS = %d, %v", rss, err)
	}
	if _, err := parseStatusKB([]byte(status), "VmSwap"); err == nil {
		t.Error("missing line: no error")
	}
	if _, err := parseStatusKB([]byte("VmHWM:\t12 MB\n"), "VmHWM"); err == nil {
		t.Error("wrong unit: no error")
	}
}

func TestProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
	rss, hwm, err := procMem(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Errorf("rss %d hwm %d err %v", rss, hwm, err)
	}
}

func TestParseRedisCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:12.500000\r\nused_cpu_user:30.250000\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n"
	got, err := parseRedisCPU(info)
	if err != nil {
		t.Fatal(err)
	}
	if want := 42750 * time.Millisecond; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseRedisCPU("# CPU\r\nused_cpu_sys:1\r\n"); err == nil {
		t.Error("missing field: no error")
	}
}

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_evalsha:calls=19441,usec=828097,usec_per_call=42.60,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_xgroup|create:calls=1,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\ncmdstat_hlen:calls=7,usec=1,usec_per_call=0.15\r\n"
	got, err := parseCommandStats(info)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"evalsha": 19441, "xgroup|create": 1, "hlen": 7}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %d, want %d", k, got[k], v)
		}
	}
	for _, bad := range []string{"cmdstat_get\r\n", "cmdstat_get:usec=1,calls=2\r\n", "cmdstat_get:calls=x,usec=1\r\n"} {
		if _, err := parseCommandStats(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCommandDelta(t *testing.T) {
	before := map[string]int64{"evalsha": 100, "hlen": 50, "ping": 3}
	after := map[string]int64{"evalsha": 130, "hlen": 70, "ping": 3, "exec": 20, "multi": 20}
	total, top := commandDelta(before, after, 3)
	if total != 90 {
		t.Errorf("total %d, want 90", total)
	}
	want := []CommandCount{{Name: "evalsha", Calls: 30}, {Name: "exec", Calls: 20}, {Name: "hlen", Calls: 20}}
	if len(top) != len(want) {
		t.Fatalf("top %v, want %v", top, want)
	}
	for i := range want {
		if top[i] != want[i] {
			t.Errorf("top[%d] = %v, want %v", i, top[i], want[i])
		}
	}
}
