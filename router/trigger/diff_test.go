package trigger

import (
	"reflect"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/router/filter"
)

func TestDiff(t *testing.T) {
	base := func() Spec {
		s := Spec{
			Name:   "orders",
			Filter: filter.Spec{Attributes: map[string]string{"type": "a"}, All: make([]filter.Spec, 11)},
			Target: Target{GRPC: "127.0.0.1:7070"},
		}
		s.SetDefaults()
		return s
	}
	cases := map[string]struct {
		change func(*Spec)
		want   []FieldChange
	}{
		"identical": {change: func(*Spec) {}},
		"a delivery field and a filter value": {
			change: func(s *Spec) {
				s.Delivery.MaxAttempts = 3
				s.Delivery.Timeout.Duration = 5 * time.Second
				s.Filter.Attributes["type"] = "b"
			},
			want: []FieldChange{
				{Path: "delivery.max_attempts", Before: "8", After: "3"},
				{Path: "delivery.timeout", Before: `"10s"`, After: `"5s"`},
				{Path: "filter.attributes.type", Before: `"a"`, After: `"b"`},
			},
		},
		"fields added and removed, list indexes in numeric order": {
			change: func(s *Spec) {
				s.Filter.All[10] = filter.Spec{CEL: "size(data) > 1 && true"}
				s.Filter.All[2] = filter.Spec{CESQL: "TRUE"}
				s.Target = Target{URL: "https://example.com/hook"}
				s.Scope = EventScope{Sources: []string{"/a/"}}
			},
			want: []FieldChange{
				{Path: "filter.all[2].cesql", After: `"TRUE"`},
				{Path: "filter.all[10].cel", After: `"size(data) > 1 && true"`},
				{Path: "scope.sources[0]", After: `"/a/"`},
				{Path: "target.grpc", Before: `"127.0.0.1:7070"`},
				{Path: "target.url", After: `"https://example.com/hook"`},
			},
		},
		"not of the empty filter is a value": {
			change: func(s *Spec) { s.Filter.Not = &filter.Spec{} },
			want:   []FieldChange{{Path: "filter.not", After: "{}"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			after := base()
			tc.change(&after)
			got := Diff(base(), after)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Diff:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestComparePaths(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"all[2]", "all[10]", true},
		{"all[10].cel", "all[9].cel", false},
		{"delivery.max_attempts", "delivery.timeout", true},
		{"a", "a.b", true},
		{"x99999999999999999999", "x1", false},
	} {
		if got := comparePaths(c.a, c.b) < 0; got != c.less {
			t.Errorf("comparePaths(%q, %q) < 0 = %v", c.a, c.b, got)
		}
	}
}
