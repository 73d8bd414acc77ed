package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load publishes single events ("<prefix>-<n>", type crash.test) at a
// steady pace from a few publishers until stopped, to whichever of its
// targets answers, and keeps what each publish was answered: the ids
// accepted (202), the refusals that carried a Retry-After (503), and other
// failures (connection refused while an instance restarts, …), after which
// the publisher moves to the next target. It stops by itself after max.
type load struct {
	prefix  string
	mu      sync.Mutex
	targets []string // HTTP addresses
	acked   map[string]bool
	seq     atomic.Int64
	retry   atomic.Int64 // 503 with Retry-After
	bad503  atomic.Int64 // 503 without it
	failed  atomic.Int64 // no answer, or another status
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// startLoad starts publishers publishers, each publishing one event every
// interval, for at most max.
func startLoad(t *testing.T, prefix string, targets []string, publishers int, interval, max time.Duration) *load {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), max)
	l := &load{prefix: prefix, targets: targets, acked: map[string]bool{}, cancel: cancel}
	client := &http.Client{Timeout: 5 * time.Second}
	for p := range publishers {
		l.done.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			target := p
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				id := fmt.Sprintf("%s-%d", l.prefix, l.seq.Add(1))
				l.mu.Lock()
				addr := l.targets[target%len(l.targets)]
				l.mu.Unlock()
				body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/crash","type":"crash.test"}`, id)
				resp, err := client.Post("http://"+addr+"/events", "application/cloudevents+json", strings.NewReader(body))
				if err != nil {
					l.failed.Add(1)
					target++
					continue
				}
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusAccepted:
					l.mu.Lock()
					l.acked[id] = true
					l.mu.Unlock()
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
					l.retry.Add(1)
					target++
				case resp.StatusCode == http.StatusServiceUnavailable:
					l.bad503.Add(1)
					target++
				default:
					l.failed.Add(1)
					target++
				}
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

// setTarget replaces target i (an instance restarted on new ports).
func (l *load) setTarget(i int, addr string) {
	l.mu.Lock()
	l.targets[i] = addr
	l.mu.Unlock()
}

// stop stops the publishers and waits for them.
func (l *load) stop() {
	l.cancel()
	l.done.Wait()
}

// accepted returns the ids acknowledged so far.
func (l *load) accepted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.acked))
	for id := range l.acked {
		out = append(out, id)
	}
	return out
}

// missing returns the accepted ids c has not seen.
func (c *counter) missing(ids []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range ids {
		if c.seen[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}
