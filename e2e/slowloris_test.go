package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// procRSS returns a process's resident set size (VmRSS) in bytes.
func procRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// scrape returns the value of a sample on the server's /metrics page: an
// unlabelled metric's name, or a name with its labels as the page shows
// them.
func scrape(t *testing.T, c *http.Client, base, sample string) float64 {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, sample+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Fatalf("no %s on /metrics", sample)
	return 0
}

const openConns = `switchyard_listener_connections{listener="http"}`

// TestSlowBodiesHoldLittleMemory is the acceptance test for HTTP
// bodies: 2,000 connections each declaring a 16 MiB batch body and sending
// one byte of it raise the RSS of a real `switchyard serve` by less than
// 200 MiB (the server reads bodies as they arrive, never allocating from
// the declared Content-Length), and every one of them is answered 408
// once http_body_timeout passes, after which the server serves as before.
func TestSlowBodiesHoldLittleMemory(t *testing.T) {
	const (
		conns    = 2000
		declared = 16 << 20
		timeout  = 10 * time.Second
	)
	p := startServe(t, "--http-body-timeout", timeout.String())
	pid := p.Pid()
	base := "http://" + p.HTTP
	scraper := &http.Client{Timeout: 10 * time.Second}
	defer scraper.CloseIdleConnections()

	// Warm up: the handlers, the metrics page and the store have run once.
	// The scraper's one keep-alive connection stays open throughout.
	for range 20 {
		resp, err := scraper.Post(base+"/events", "application/cloudevents+json",
			strings.NewReader(`{"specversion":"1.0","id":"w","source":"/warm","type":"t"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // read to the end: the connection is reused
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("warm-up publish: %s", resp.Status)
		}
	}
	heap0 := scrape(t, scraper, base, "go_memstats_heap_inuse_bytes")
	rss0 := procRSS(t, pid)

	head := fmt.Sprintf("POST /events HTTP/1.1\r\nHost: switchyard\r\nContent-Type: application/cloudevents-batch+json\r\nContent-Length: %d\r\n\r\n[", declared)
	slow := make([]net.Conn, conns)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for w := range 20 { // 20 dialers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < conns; i += 20 {
				c, err := net.DialTimeout("tcp", p.HTTP, 10*time.Second)
				if err != nil {
					errs <- err
					return
				}
				slow[i] = c
				if _, err := io.WriteString(c, head); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range slow {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	close(errs)
	for err := range errs {
		t.Fatalf("opening the slow connections: %v", err)
	}
	deadline := time.Now().Add(timeout / 2)
	// The slow connections and the scraper's (other connections, if any,
	// come and go).
	for scrape(t, scraper, base, openConns) < conns+1 {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %v connections, want %v", scrape(t, scraper, base, openConns), conns+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rss := procRSS(t, pid)
	heap := scrape(t, scraper, base, "go_memstats_heap_inuse_bytes")
	t.Logf("%d slow connections: RSS %+.1f MiB (%.1f → %.1f), heap in use %+.1f MiB",
		conns, float64(rss-rss0)/(1<<20), float64(rss0)/(1<<20), float64(rss)/(1<<20), (heap-heap0)/(1<<20))
	if rss-rss0 >= 200<<20 {
		t.Errorf("RSS grew by %.1f MiB, want < 200 MiB", float64(rss-rss0)/(1<<20))
	}
	if heap-heap0 >= 200<<20 {
		t.Errorf("heap in use grew by %.1f MiB, want < 200 MiB", (heap-heap0)/(1<<20))
	}

	// Each is cut off at the body deadline with 408, then closed.
	answered := make(chan string, conns)
	for i, c := range slow {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(3 * timeout))
			b, _ := io.ReadAll(c)
			line, _, _ := bytes.Cut(b, []byte("\r\n"))
			answered <- strconv.Itoa(i) + ": " + string(line)
		}()
	}
	for range conns {
		if a := <-answered; !strings.HasSuffix(a, ": HTTP/1.1 408 Request Timeout") {
			t.Fatalf("a slow connection was answered %q", a)
		}
	}
	resp, err := http.Post(base+"/events", "application/cloudevents+json",
		strings.NewReader(`{"specversion":"1.0","id":"after","source":"/warm","type":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish after the slow connections: %s", resp.Status)
	}
}
