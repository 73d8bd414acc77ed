package filter

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyValue(t *testing.T) {
	ev := testEvent(withAttr("subject", ceString("order-7")), withAttr("tenant", ceInt(42)),
		withText("application/json", `{"customer":{"id":"c-9"},"n":3}`))
	for name, c := range map[string]struct{ key, want string }{
		"attribute":            {"subject", "order-7"},
		"extension":            {"tenant", "42"},
		"missing attribute":    {"partitionkey", ""},
		"cel over data":        {"data.customer.id", "c-9"},
		"cel number":           {"int(data.n) + 1", "4"},
		"cel concatenation":    {`source + "/" + subject`, "/shop/eu/order-7"},
		"cel error: no field":  {"data.nope.id", ""},
		"cel of a map: no key": {"data.customer", ""},
	} {
		t.Run(name, func(t *testing.T) {
			k, err := CompileKey(c.key, "delivery.ordering.key")
			require.NoError(t, err)
			require.Equal(t, c.want, k.Value(NewInput(ev)))
			require.Equal(t, c.key, k.String())
		})
	}
}

func TestCompileKeyErrors(t *testing.T) {
	for name, c := range map[string]struct {
		key, msg string
		line     int
	}{
		"empty":      {"", "required", 0},
		"syntax":     {"subject +", "Syntax error", 1},
		"unknown":    {"nope.x", "undeclared reference", 1},
		"not scalar": {"[subject]", "must evaluate to a string, number or bool", 0},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := CompileKey(c.key, "delivery.ordering.key")
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "delivery.ordering.key", ce.Path)
			require.Contains(t, ce.Msg, c.msg)
			require.Equal(t, c.line, ce.Line)
		})
	}
}
