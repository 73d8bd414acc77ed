package monitoring_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/stretchr/testify/require"
)

// The alerts on the delivery features fire on the situation they name and
// stay quiet on the ones next to it, evaluated by Prometheus' own engine
// over series as two instances would export them, ten minutes in (the
// rules' `for` is the rule manager's business, not the expression's).
func TestFeatureAlertsFire(t *testing.T) {
	exprs := map[string]string{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	// Each series without an instance label is loaded for instances a
	// and b alike.
	cases := map[string]struct {
		alert  string
		series []string
		want   []string // the alert's label sets; none: quiet
	}{
		"lane blocked": {alert: "SwitchyardOrderedLaneBlocked",
			series: []string{`switchyard_trigger_lanes_blocked{trigger="accounts"} 1x20`, `switchyard_trigger_lanes_blocked{trigger="orders"} 0x20`},
			want:   []string{`{trigger="accounts"}`}},
		"archive bounded by size short of its retention": {alert: "SwitchyardArchiveSizeCutsRetention",
			series: []string{`switchyard_archive_bytes 950x20`, `switchyard_archive_max_bytes 1000x20`,
				`switchyard_archive_oldest_age_seconds 3600x20`, `switchyard_archive_retention_seconds 86400x20`},
			want: []string{`{}`}},
		"archive bounded by size alone": {alert: "SwitchyardArchiveSizeCutsRetention",
			series: []string{`switchyard_archive_bytes 950x20`, `switchyard_archive_max_bytes 1000x20`,
				`switchyard_archive_oldest_age_seconds 3600x20`, `switchyard_archive_retention_seconds 0x20`}},
		"archive covering its retention": {alert: "SwitchyardArchiveSizeCutsRetention",
			series: []string{`switchyard_archive_bytes 950x20`, `switchyard_archive_max_bytes 1000x20`,
				`switchyard_archive_oldest_age_seconds 86000x20`, `switchyard_archive_retention_seconds 86400x20`}},
		"archive filling up within its retention": {alert: "SwitchyardArchiveSizeCutsRetention",
			series: []string{`switchyard_archive_bytes 100x20`, `switchyard_archive_max_bytes 1000x20`,
				`switchyard_archive_oldest_age_seconds 3600x20`, `switchyard_archive_retention_seconds 86400x20`}},
		"ticks skipped": {alert: "SwitchyardScheduleTicksSkipped",
			series: []string{`switchyard_schedule_ticks_total{source="nightly",kind="schedule",outcome="skipped"} 0 0 0 5x17`,
				`switchyard_schedule_ticks_total{source="nightly",kind="schedule",outcome="fired"} 0+1x20`,
				`switchyard_schedule_ticks_total{source="hourly",kind="schedule",outcome="skipped"} 0x20`},
			want: []string{`{source="nightly"}`}},
		"schedule overdue": {alert: "SwitchyardScheduleOverdue",
			// Stuck at the tick due at 00:01 (60 s after the epoch).
			series: []string{`switchyard_source_next_fire_timestamp_seconds{source="nightly",kind="schedule"} 60x20`,
				`switchyard_source_next_fire_timestamp_seconds{source="heartbeat",kind="schedule"} 60+60x20`},
			want: []string{`{source="nightly"}`}},
		"schedule overdue on one instance only": {alert: "SwitchyardScheduleOverdue",
			series: []string{`switchyard_source_next_fire_timestamp_seconds{instance="a",source="nightly",kind="schedule"} 60x20`,
				`switchyard_source_next_fire_timestamp_seconds{instance="b",source="nightly",kind="schedule"} 60+60x20`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			expr, ok := exprs[tc.alert]
			require.True(t, ok, "no alert %s", tc.alert)
			var load strings.Builder
			load.WriteString("load 1m\n")
			for _, s := range tc.series {
				if strings.Contains(s, "instance=") {
					load.WriteString("  " + s + "\n")
					continue
				}
				for _, inst := range []string{"a", "b"} {
					load.WriteString("  " + withInstance(s, inst) + "\n")
				}
			}
			st := promqltest.LoadedStorage(t, load.String())
			engine := promqltest.NewTestEngine(t, false, 0, 100000)
			q, err := engine.NewInstantQuery(t.Context(), st, nil, expr, time.Unix(600, 0))
			require.NoError(t, err)
			res := q.Exec(t.Context())
			require.NoError(t, res.Err)
			vec, err := res.Vector()
			require.NoError(t, err)
			var got []string
			for _, s := range vec {
				got = append(got, s.Metric.String())
			}
			slices.Sort(got)
			require.Equal(t, tc.want, got, "%s over:\n%s", tc.alert, load.String())
		})
	}
}

// withInstance adds instance="inst" to a series line of a load block.
func withInstance(line, inst string) string {
	name, rest, _ := strings.Cut(line, " ")
	if base, labels, ok := strings.Cut(name, "{"); ok {
		return base + `{instance="` + inst + `",` + labels + " " + rest
	}
	return name + `{instance="` + inst + `"} ` + rest
}
