package filter

import (
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func TestSpecYAML(t *testing.T) {
	const doc = `
filter:
  attributes: {type: com.example.order.created}
  prefix: {source: /shop/}
  cesql: "subject LIKE 'eu-%'"
  cel: "data.total > 100"
  all:
    - suffix: {type: .created}
  any:
    - attributes: {tenant: acme}
    - not: {}
    - prefix: {subject: eu-}
  not:
    attributes: {flag: "true"}
`
	var trigger struct {
		Filter Spec `json:"filter"`
	}
	require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &trigger))
	s := trigger.Filter
	require.Equal(t, Spec{
		Attributes: map[string]string{"type": "com.example.order.created"},
		Prefix:     map[string]string{"source": "/shop/"},
		CESQL:      "subject LIKE 'eu-%'",
		CEL:        "data.total > 100",
		All:        []Spec{{Suffix: map[string]string{"type": ".created"}}},
		Any: []Spec{
			{Attributes: map[string]string{"tenant": "acme"}},
			{Not: &Spec{}},
			{Prefix: map[string]string{"subject": "eu-"}},
		},
		Not: &Spec{Attributes: map[string]string{"flag": "true"}},
	}, s)

	f := mustCompile(t, s)
	ev := testEvent(
		withAttr("subject", ceString("eu-order-1")),
		withText("application/json", `{"total": 120}`),
	)
	require.True(t, f.Match(NewInput(ev)))
	ev.Attributes["flag"] = ceBool(true)
	require.False(t, f.Match(NewInput(ev)))

	// Round trip through JSON keeps the shape; empty fields are omitted.
	out, err := yaml.Marshal(Spec{Not: &Spec{}, Attributes: map[string]string{"type": "x"}})
	require.NoError(t, err)
	require.Equal(t, "attributes:\n  type: x\nnot: {}\n", string(out))
}
