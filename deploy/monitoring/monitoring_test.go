package monitoring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/connectors"
	_ "github.com/switchyard-io/switchyard/connectors/all"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/server"
)

const (
	rulesFile     = "../prometheus/alerts.yaml"
	dashboardFile = "../grafana/switchyard.json"
)

var promql = parser.NewParser(parser.Options{})

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	require.NoError(t, err, "%s: %s", where, expr)
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			require.NotEmpty(t, vs.Name, "%s: select metrics by name: %s", where, expr)
			names = append(names, vs.Name)
		}
		return nil
	})
	require.NotEmpty(t, names, "%s: selects no metric: %s", where, expr)
	return names
}

// The alerting rules load with Prometheus' own rule parser (unknown keys,
// bad expressions, bad templates and duplicate names are errors), and
// every expression names metrics only.
func TestRulesParse(t *testing.T) {
	groups := loadRules(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			metricNames(t, r.Alert, r.Expr)
			require.NotEmpty(t, r.Labels["severity"], r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], r.Alert)
		}
	}
	// What the rules must cover.
	for _, want := range []string{"SwitchyardDeadLettersGrowing", "SwitchyardOldestEventOverBudget", "SwitchyardBreakerOpen",
		"SwitchyardPushbackSustained", "SwitchyardSourceErroring", "SwitchyardSourceLagging", "SwitchyardRedisUnreachable",
		"SwitchyardOrderedLaneBlocked", "SwitchyardArchiveSizeCutsRetention", "SwitchyardScheduleTicksSkipped", "SwitchyardScheduleOverdue"} {
		require.Contains(t, alerts, want)
	}
}

func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	require.Empty(t, errs)
	require.NotEmpty(t, groups.Groups)
	return groups
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// grafanaVars are the dashboard's variables, replaced by what Grafana
// would put there before the expression is parsed.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$trigger", ".*", "$source", ".*")

var labelValues = regexp.MustCompile(`^label_values\((\w+), *\w+\)$`)

// dashboardExprs returns every PromQL expression of the dashboard, with
// where it is, variables' queries included.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	require.NoError(t, dec.Decode(&d))
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
			for i, tg := range p.Targets {
				require.NotEmpty(t, tg.Expr, "panel %q target %d", p.Title, i)
				out[fmt.Sprintf("panel %q target %d", p.Title, i)] = grafanaVars.Replace(tg.Expr)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		require.NotNil(t, m, "variable %s: want label_values(metric, label), got %q", v.Name, s)
		out["variable "+v.Name] = m[1]
	}
	return out
}

// Every expression of the dashboard parses with Prometheus' parser.
func TestDashboardParses(t *testing.T) {
	exprs := dashboardExprs(t)
	require.Greater(t, len(exprs), 20)
	for where, e := range exprs {
		metricNames(t, where, e)
	}
}

// featureMetrics are the series of the delivery features (dedup, ordered
// lanes, delayed delivery, the archive and replays, schedules) that the
// dashboard must show.
var featureMetrics = []string{
	"switchyard_events_duplicate_total",
	"switchyard_trigger_lanes_active", "switchyard_trigger_lanes_blocked", "switchyard_trigger_lane_waiting",
	"switchyard_trigger_deliver_after_waiting",
	"switchyard_archive_events", "switchyard_archive_bytes", "switchyard_archive_max_bytes",
	"switchyard_archive_oldest_age_seconds", "switchyard_archive_retention_seconds",
	"switchyard_replays_running", "switchyard_replay_progress_ratio",
	"switchyard_replay_events_scanned_total", "switchyard_replay_deliveries_total",
	"switchyard_schedule_ticks_total", "switchyard_schedule_ticks_late_total", "switchyard_source_next_fire_timestamp_seconds",
}

// The dashboard has a panel for each feature's series.
func TestDashboardCoversTheFeatures(t *testing.T) {
	shown := map[string]bool{}
	for where, e := range dashboardExprs(t) {
		if strings.HasPrefix(where, "panel ") {
			for _, n := range metricNames(t, where, e) {
				shown[n] = true
			}
		}
	}
	for _, n := range featureMetrics {
		require.True(t, shown[n], "no panel shows %s", n)
	}
}

// The rules and the dashboard name only metrics a real server exposes on
// /metrics: one with triggers that deliver, retry, dead-letter, push back,
// see a stale outcome, drop a duplicate and order by key, with the archive
// on and a replay running, and with three sources (a directory, NATS
// JetStream, a schedule) that read.
func TestNamesAreExposed(t *testing.T) {
	exposed := scrapeBusyServer(t)
	used := map[string][]string{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			for _, n := range metricNames(t, r.Alert, r.Expr) {
				used[n] = append(used[n], "rule "+r.Alert)
			}
		}
	}
	for where, e := range dashboardExprs(t) {
		for _, n := range metricNames(t, where, e) {
			used[n] = append(used[n], where)
		}
	}
	var missing []string
	for n, by := range used {
		if !exposed[n] {
			sort.Strings(by)
			missing = append(missing, fmt.Sprintf("%s (used by %s)", n, strings.Join(by, ", ")))
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "names not on /metrics")
}

// scrapeBusyServer runs a server on the real Redis with work for every kind
// of series, and returns the metric names its /metrics exposes (a
// histogram's _bucket, _sum and _count included).
func scrapeBusyServer(t *testing.T) map[string]bool {
	t.Helper()
	b := testenv.Real(t)
	ctx := t.Context()

	// A function that answers 200, and holds the requests of events whose
	// type is "hold" until released.
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("ce-type") == "hold" {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}))
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }); fn.Close() })

	dir := t.TempDir()
	stream := "MONITORING" + strings.ToUpper(strings.ReplaceAll(b.Prefix, "-", ""))
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), stream) })

	srv, err := server.New(ctx, server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", RedisURL: b.URL,
		Router: router.Config{Prefix: b.Prefix, SweepInterval: 100 * time.Millisecond,
			Metrics: router.MetricsConfig{StoreReadTTL: -1, HistogramTriggers: []string{"ok"}},
			Archive: router.ArchiveConfig{Retention: time.Hour, MaxBytes: 64 << 20}},
		Logger: slog.New(slog.DiscardHandler),
		Sources: []connectors.SourceConfig{
			{Name: "files", Kind: "directory", Fields: map[string]any{"path": dir}},
			{Name: "queue", Kind: "nats_jetstream", Fields: map[string]any{"stream": stream, "create_stream": true, "subjects": []any{stream + ".>"}}},
			{Name: "ticks", Kind: "schedule", Fields: map[string]any{"interval": "1s", "type": "monitoring.tick"}},
		},
	})
	require.NoError(t, err)
	srv.Serve()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	r := srv.Router()

	put := func(name, typ, target string, tweak func(*trigger.Delivery)) {
		spec := trigger.Spec{Name: name, Filter: filter.Spec{Attributes: map[string]string{"type": typ}}, Target: trigger.Target{URL: target}}
		if tweak != nil {
			tweak(&spec.Delivery)
		}
		_, _, err := r.PutTrigger(ctx, trigger.ToProto(spec), store.PutApply, 0)
		require.NoError(t, err)
	}
	put("ok", "ok", fn.URL, nil)
	put("hold", "hold", fn.URL, nil)
	// Refused connections: a retry, then a dead letter; the retry's wait
	// keeps the queue full, so the next publish is pushed back.
	put("fails", "fails", "http://127.0.0.1:1", func(d *trigger.Delivery) {
		d.MaxAttempts, d.MaxQueue = 2, 1
		d.InitialBackoff.Duration, d.MaxBackoff.Duration = time.Second, time.Second
	})
	put("dedup", "dup", fn.URL, func(d *trigger.Delivery) { d.DedupWindow = &trigger.Duration{Duration: time.Minute} })
	put("ordered", "ordered", fn.URL, func(d *trigger.Delivery) { d.Ordering = &trigger.Ordering{Key: "subject"} })
	publish := func(typ string) error {
		_, err := r.Publish(ctx, []*pb.CloudEvent{{Id: typ + "-" + time.Now().Format(time.RFC3339Nano), Source: "/monitoring", SpecVersion: "1.0", Type: typ}})
		return err
	}
	archived := time.Now().Add(-time.Second)
	for range 10 {
		require.NoError(t, publish("ok"))
	}
	// A copy within the dedup window is dropped.
	dup := []*pb.CloudEvent{{Id: "dup-1", Source: "/monitoring", SpecVersion: "1.0", Type: "dup"}}
	for range 2 {
		_, err := r.Publish(ctx, dup)
		require.NoError(t, err)
	}
	require.NoError(t, publish("ordered"))
	// A replay of the ten events at one a second runs while the test scrapes.
	_, err = r.StartReplay(ctx, &switchyardv1.ReplaySpec{From: timestamppb.New(archived),
		Destination: &switchyardv1.ReplaySpec_Trigger{Trigger: "ok"}, Rate: 1})
	require.NoError(t, err)
	require.NoError(t, publish("fails"))
	var pe *router.PushbackError
	require.ErrorAs(t, publish("fails"), &pe)
	// A stale outcome: the held attempt is made no longer current (as when
	// its lease expired and another instance claimed the event) before the
	// function answers.
	require.NoError(t, publish("hold"))
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the held attempt did not start")
	}
	att := store.NewKeys(b.Prefix).Queue("hold").Attempts
	ids, err := b.Client.HKeys(ctx, att).Result()
	require.NoError(t, err)
	for _, id := range ids {
		if !strings.HasPrefix(id, "~") {
			require.NoError(t, b.Client.HIncrBy(ctx, att, id, 1).Err())
		}
	}
	once.Do(func() { close(release) })

	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o600))
	require.NoError(t, nc.Publish(stream+".x", []byte(`{"n":1}`)))

	scrape := func() (map[string]*dto.MetricFamily, error) {
		resp, err := http.Get("http://" + srv.HTTPAddr() + "/metrics")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		return p.TextToMetricFamilies(strings.NewReader(string(body)))
	}
	var fams map[string]*dto.MetricFamily
	var lacking []string
	testenv.Eventually(t, 30*time.Second, func() bool {
		fams, err = scrape()
		require.NoError(t, err)
		lacking = lacking[:0]
		for _, n := range []string{"switchyard_dead_letters_total", "switchyard_pushbacks_total", "switchyard_stale_outcomes_total",
			"switchyard_attempts_total", "switchyard_source_lag_seconds", "switchyard_source_backlog",
			"switchyard_events_duplicate_total", "switchyard_trigger_lane_waiting", "switchyard_archive_bytes",
			"switchyard_replay_progress_ratio", "switchyard_schedule_ticks_total", "switchyard_source_next_fire_timestamp_seconds"} {
			if fams[n] == nil {
				lacking = append(lacking, n)
			}
		}
		return len(lacking) == 0
	}, "the work shows on /metrics (lacking %v)", lacking)
	names := map[string]bool{}
	for n, f := range fams {
		names[n] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[n+s] = true
			}
		case dto.MetricType_SUMMARY:
			names[n+"_sum"], names[n+"_count"] = true, true
		}
	}
	verdicts := map[string]bool{}
	for _, m := range fams["switchyard_attempts_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "verdict" {
				verdicts[l.GetValue()] = true
			}
		}
	}
	for _, v := range []string{"ack", "retry", "dead"} {
		require.True(t, verdicts[v], "verdict %s seen", v)
	}
	t.Logf("%d names exposed", len(names))
	return names
}
