package filter

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAllAnyNot(t *testing.T) {
	isOrder := Spec{Prefix: map[string]string{"type": "com.example.order."}}
	isEU := Spec{Suffix: map[string]string{"source": "/eu"}}
	isUS := Spec{Suffix: map[string]string{"source": "/us"}}
	hasTenant := Spec{CEL: "'tenant' in extensions"}
	runMatchTable(t, map[string]matchCase{
		"empty spec matches everything": {spec: Spec{}, ev: testEvent(), want: true},
		"empty spec matches nil event":  {spec: Spec{}, ev: nil, want: true},
		"empty lists are absent":        {spec: Spec{All: []Spec{}, Any: []Spec{}, Attributes: map[string]string{}}, ev: testEvent(), want: true},
		"all of two":                    {spec: Spec{All: []Spec{isOrder, isEU}}, ev: testEvent(), want: true},
		"all with one failing":          {spec: Spec{All: []Spec{isOrder, isUS}}, ev: testEvent(), want: false},
		"all of empty filters":          {spec: Spec{All: []Spec{{}, {}}}, ev: testEvent(), want: true},
		"any first":                     {spec: Spec{Any: []Spec{isEU, isUS}}, ev: testEvent(), want: true},
		"any second":                    {spec: Spec{Any: []Spec{isUS, isEU}}, ev: testEvent(), want: true},
		"any none":                      {spec: Spec{Any: []Spec{isUS, hasTenant}}, ev: testEvent(), want: false},
		"any with empty member":         {spec: Spec{Any: []Spec{isUS, {}}}, ev: testEvent(), want: true},
		"not":                           {spec: Spec{Not: &isUS}, ev: testEvent(), want: true},
		"not matching":                  {spec: Spec{Not: &isEU}, ev: testEvent(), want: false},
		"not empty matches nothing":     {spec: Spec{Not: &Spec{}}, ev: testEvent(), want: false},
		"double negation":               {spec: Spec{Not: &Spec{Not: &isEU}}, ev: testEvent(), want: true},
		"not over an evaluation error": {
			spec: Spec{Not: &Spec{CEL: "data.total > 100"}},
			ev:   testEvent(withText("application/json", `{"other":1}`)), want: true,
		},
		"keys at one level are ANDed": {
			spec: Spec{
				Attributes: map[string]string{"type": "com.example.order.created"},
				Prefix:     map[string]string{"source": "/shop/"},
				Not:        &isUS,
				Any:        []Spec{hasTenant, isEU},
				All:        []Spec{isOrder},
				CESQL:      "source LIKE '/shop/%'",
				CEL:        "type.endsWith('.created')",
			},
			ev: testEvent(), want: true,
		},
		"keys at one level are ANDed, one fails": {
			spec: Spec{
				Attributes: map[string]string{"type": "com.example.order.created"},
				Prefix:     map[string]string{"source": "/shop/"},
				CEL:        "type.endsWith('.deleted')",
			},
			ev: testEvent(), want: false,
		},
		"nested": {
			spec: Spec{Any: []Spec{
				{All: []Spec{isOrder, isUS}},
				{All: []Spec{isOrder, {Not: &isUS}, {Any: []Spec{hasTenant, isEU}}}},
			}},
			ev: testEvent(), want: true,
		},
		"nested any of any": {
			spec: Spec{Any: []Spec{{Any: []Spec{isUS, {Any: []Spec{hasTenant}}}}, {Not: &isOrder}}},
			ev:   testEvent(withAttr("tenant", ceString("acme"))), want: true,
		},
	})
}

func TestSpecIsEmpty(t *testing.T) {
	for name, tc := range map[string]struct {
		spec Spec
		want bool
	}{
		"zero":        {Spec{}, true},
		"empty maps":  {Spec{Attributes: map[string]string{}, Prefix: map[string]string{}, Suffix: map[string]string{}}, true},
		"empty lists": {Spec{All: []Spec{}, Any: []Spec{}}, true},
		"attributes":  {Spec{Attributes: map[string]string{"type": "x"}}, false},
		"prefix":      {Spec{Prefix: map[string]string{"type": "x"}}, false},
		"suffix":      {Spec{Suffix: map[string]string{"type": "x"}}, false},
		"cesql":       {Spec{CESQL: "TRUE"}, false},
		"cel":         {Spec{CEL: "true"}, false},
		"all":         {Spec{All: []Spec{{}}}, false},
		"any":         {Spec{Any: []Spec{{}}}, false},
		"not empty":   {Spec{Not: &Spec{}}, false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := tc.spec.IsEmpty(); got != tc.want {
				t.Fatalf("IsEmpty() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestZeroInput(t *testing.T) {
	for name, s := range map[string]Spec{
		"exact": {Attributes: map[string]string{"type": "x"}},
		"cel":   {CEL: "type == '' && data == null && size(extensions) == 0"},
		"cesql": {CESQL: "NOT EXISTS subject"},
	} {
		t.Run(name, func(t *testing.T) {
			f := mustCompile(t, s)
			var in Input
			require.Equal(t, name != "exact", f.Match(&in))
		})
	}
}
