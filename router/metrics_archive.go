package router

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/router/store"
)

// archiveCollector exports the archive (registered only when it is on):
// what it holds, its bounds, and the replay jobs running. The figures are
// cluster-wide, read from the store at scrape time (store.ArchiveInfo, one
// round trip, and the job list, two) and kept for StoreReadTTL as the
// queues' figures are; every instance exports the same values, so
// aggregate them with max.
type archiveCollector struct {
	r   *Router
	ttl time.Duration

	mu     sync.Mutex // one read at a time; guards the cache below
	readAt time.Time
	last   archiveRead

	events, bytes, oldest, retention, maxBytes *prometheus.Desc
	running, progress                          *prometheus.Desc
}

func newArchiveCollector(r *Router, ttl time.Duration) *archiveCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &archiveCollector{r: r, ttl: ttl,
		events:    d("switchyard_archive_events", "Events the archive holds (cluster-wide)."),
		bytes:     d("switchyard_archive_bytes", "Memory of the archive's stream as Redis reports it (MEMORY USAGE, sampled); absent where the store does not say (the embedded one)."),
		oldest:    d("switchyard_archive_oldest_age_seconds", "Age of the oldest archived event (since its acceptance): how far back a replay can go; 0 when empty."),
		retention: d("switchyard_archive_retention_seconds", "The archive's retention (archive_retention); 0: no time bound."),
		maxBytes:  d("switchyard_archive_max_bytes", "The archive's size bound (archive_max_bytes, 64 MiB by default on the embedded store); 0: no size bound."),
		running:   d("switchyard_replays_running", "Replay jobs running (cluster-wide), waiting ones included (a trigger at max_queue makes a replay wait)."),
		progress:  d("switchyard_replay_progress_ratio", "Of a running replay job, the archived events of its window read so far over those its window held when it started.", "replay"),
	}
}

// archiveRead is one read of the archive's figures and of the jobs.
type archiveRead struct {
	info    store.ArchiveInfo
	infoErr error
	jobs    []store.ReplayJob
	jobsErr error
}

// Describe implements prometheus.Collector.
func (c *archiveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.bytes, c.oldest, c.retention, c.maxBytes, c.running, c.progress} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *archiveCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	cfg := c.r.archive.cfg
	gauge(c.retention, cfg.Retention.Seconds())
	gauge(c.maxBytes, float64(cfg.MaxBytes))
	rd := c.read()
	if info := rd.info; rd.infoErr == nil {
		gauge(c.events, float64(info.Entries))
		if info.Bytes >= 0 {
			gauge(c.bytes, float64(info.Bytes))
		}
		age := 0.0
		if info.Entries > 0 && !info.Oldest.IsZero() {
			age = max(0, time.Since(info.Oldest).Seconds())
		}
		gauge(c.oldest, age)
	}
	if rd.jobsErr == nil {
		n := 0
		for _, j := range rd.jobs {
			if j.State != store.ReplayRunning {
				continue
			}
			n++
			if j.Total > 0 {
				gauge(c.progress, min(1, float64(j.Scanned)/float64(j.Total)), j.ID)
			}
		}
		gauge(c.running, float64(n))
	}
}

// read returns the archive's figures and the jobs, read at most ttl ago;
// a figure that cannot be read is absent (not kept stale).
func (c *archiveCollector) read() archiveRead {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl > 0 && !c.readAt.IsZero() && time.Since(c.readAt) < c.ttl {
		return c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeReadTimeout)
	defer cancel()
	var rd archiveRead
	rd.info, rd.infoErr = c.r.store.ArchiveInfo(ctx)
	rd.jobs, rd.jobsErr = c.r.store.ListReplays(ctx)
	c.last, c.readAt = rd, time.Now()
	return rd
}
