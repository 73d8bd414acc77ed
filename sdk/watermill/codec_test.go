package watermill

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	format "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/sdk/function"
)

func TestMetadataEncoding(t *testing.T) {
	cases := map[string]struct {
		key, value string
		name, attr string
	}{
		"plain":              {key: "tenant", value: "acme", name: "tenant", attr: "acme"},
		"underscore":         {key: "correlation_id", value: "c-1", name: EncodeMetadataName("correlation_id", false), attr: "c-1"},
		"upper case":         {key: "Tenant", value: "x", name: EncodeMetadataName("Tenant", false), attr: "x"},
		"core attribute":     {key: "subject", value: "s", name: EncodeMetadataName("subject", false), attr: "s"},
		"hop count":          {key: "switchyardhops", value: "1", name: EncodeMetadataName("switchyardhops", false), attr: "1"},
		"looks encoded":      {key: "wmkabc", value: "v", name: EncodeMetadataName("wmkabc", false), attr: "v"},
		"control characters": {key: "note", value: "a\nb", name: EncodeMetadataName("note", true), attr: "YQpi"},
		"empty value":        {key: "flag", value: "", name: "flag", attr: ""},
		"empty key":          {key: "", value: "v", name: "wmk", attr: "v"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n, a := EncodeMetadata(tc.key, tc.value)
			require.Equal(t, tc.name, n)
			require.Equal(t, tc.attr, a)
			require.Empty(t, checkAttributeName(n))
			k, v, ok := DecodeMetadata(n, a)
			require.True(t, ok)
			require.Equal(t, tc.key, k)
			require.Equal(t, tc.value, v)
		})
	}
	// Foreign extensions that only look encoded are kept as they are.
	for _, n := range []string{"wmkz", "wmvzz", "wmk0"} {
		k, v, ok := DecodeMetadata(n, "!")
		require.False(t, ok, n)
		require.Equal(t, n, k)
		require.Equal(t, "!", v)
	}
}

// checkAttributeName is the validation Switchyard applies to extension
// names (cloudevent): a-z and 0-9, not "data".
func checkAttributeName(n string) string {
	for i := 0; i < len(n); i++ {
		if c := n[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return "bad character"
		}
	}
	if n == "" || n == "data" {
		return "reserved"
	}
	return ""
}

// A message survives the trip through the CloudEvents protobuf format and
// Switchyard's validation with its UUID, payload and metadata.
func TestMessageRoundTrip(t *testing.T) {
	msg := message.NewMessage("m-1", []byte{0, 1, 2, 0xff})
	msg.Metadata.Set("correlation_id", "c-42")
	msg.Metadata.Set("tenant", "acme")
	msg.Metadata.Set("trace", "line1\nline2")
	msg.Metadata.Set("id", "not the event's id")
	ev, err := toEvent(msg, "orders.created", DefaultSource, "application/octet-stream")
	require.NoError(t, err)
	p, err := format.ToProto(&ev)
	require.NoError(t, err)
	require.NoError(t, cloudevent.Validate(p))
	require.Equal(t, "m-1", p.GetId())
	require.Equal(t, "orders.created", p.GetType())

	back, err := function.FromProto(p)
	require.NoError(t, err)
	got := toMessage(back)
	require.Equal(t, msg.UUID, got.UUID)
	require.Equal(t, []byte(msg.Payload), []byte(got.Payload))
	require.Equal(t, msg.Metadata, got.Metadata)
	_, err = toEvent(message.NewMessage("", nil), "t", "/s", "")
	require.ErrorIs(t, err, errNoUUID)
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func TestTriggerName(t *testing.T) {
	require.Regexp(t, `^wm-billing-orders-created-[0-9a-f]{8}$`, TriggerName("billing", "orders.created"))
	require.NotEqual(t, TriggerName("g", "a.b"), TriggerName("g", "a_b"), "names differing only in replaced characters stay apart")
	require.NotEqual(t, TriggerName("a-b", "c"), TriggerName("a", "b-c"))
	long := TriggerName(strings.Repeat("g", 100), strings.Repeat("t", 100))
	require.LessOrEqual(t, len(long), 63)
	require.Regexp(t, `^wm-g+-[0-9a-f]{8}$`, long)
	require.Regexp(t, `^wm-[0-9a-f]{8}$`, TriggerName("", "..."))
}

func FuzzMetadataEncoding(f *testing.F) {
	for _, s := range [][2]string{{"tenant", "acme"}, {"correlation_id", "x"}, {"", ""}, {"wmkAB", "\x00"}, {"Ü", "\xff"}, {"data", "1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		n, a := EncodeMetadata(key, value)
		if r := checkAttributeName(n); r != "" {
			t.Fatalf("EncodeMetadata(%q) = name %q: %s", key, n, r)
		}
		if !ceString(a) {
			t.Fatalf("EncodeMetadata(%q, %q) = value %q, not a CloudEvents string", key, value, a)
		}
		k, v, ok := DecodeMetadata(n, a)
		if !ok || k != key || v != value {
			t.Fatalf("round trip of (%q, %q) gave (%q, %q, %v)", key, value, k, v, ok)
		}
	})
}

func FuzzTriggerName(f *testing.F) {
	for _, s := range [][2]string{{"default", "orders"}, {"", ""}, {"G", "a.b.c"}, {"ü", "ß"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, group, topic string) {
		n := TriggerName(group, topic)
		if len(n) > 63 || !nameRE.MatchString(n) {
			t.Fatalf("TriggerName(%q, %q) = %q: not a valid trigger name", group, topic, n)
		}
	})
}
