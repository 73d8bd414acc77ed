package router

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func withDeliverAfter(v *pb.CloudEventAttributeValue) *pb.CloudEvent {
	ev := &pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: "t"}
	if v != nil {
		ev.Attributes = map[string]*pb.CloudEventAttributeValue{DeliverAfterExtension: v}
	}
	return ev
}

func str(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func TestDeliverAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	const max = 24 * time.Hour
	cases := map[string]struct {
		v    *pb.CloudEventAttributeValue
		want time.Time // zero: deliver now
		bad  string    // substring of the error
	}{
		"absent":             {v: nil},
		"duration":           {v: str("90s"), want: now.Add(90 * time.Second)},
		"zero duration":      {v: str("0s")},
		"rfc3339":            {v: str("2026-12-06T12:30:00+01:00"), want: now.Add(90 * time.Minute)},
		"rfc3339 nano":       {v: str("2026-12-06T10:00:01.5Z"), want: now.Add(1500 * time.Millisecond)},
		"past time":          {v: str("2020-01-01T00:00:00Z")},
		"timestamp":          {v: &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(now.Add(time.Hour))}}, want: now.Add(time.Hour)},
		"at the max":         {v: str("24h"), want: now.Add(max)},
		"beyond the max":     {v: str("24h1s"), bad: "beyond the server's max_deliver_after (24h0m0s)"},
		"far time":           {v: str("2027-01-06T10:00:00Z"), bad: "max_deliver_after"},
		"negative":           {v: str("-1s"), bad: "negative duration"},
		"garbage":            {v: str("tomorrow"), bad: `deliverafter is "tomorrow", want an RFC 3339 time`},
		"too long":           {v: str(string(make([]byte, 65))), bad: "longer than 64"},
		"integer":            {v: &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: 5}}, bad: "must be a string"},
		"invalid timestamp":  {v: &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: &timestamppb.Timestamp{Nanos: -1}}}, bad: "not a valid timestamp"},
		"date without clock": {v: str("2026-12-07"), bad: "want an RFC 3339 time"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := DeliverAfter(withDeliverAfter(tc.v), now, max)
			if tc.bad != "" {
				if err == nil || !errors.Is(err, ErrInvalidDeliverAfter) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("err = %v, want one saying %q", err, tc.bad)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// FuzzDeliverAfter: any string is either refused or due within
// (now, now+max], never a panic.
func FuzzDeliverAfter(f *testing.F) {
	for _, s := range []string{"90s", "1h30m", "2026-12-06T12:30:00Z", "-1s", "9999999h", "", "1e9ns", "2026-12-06T10:00:00.999999999+14:00"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := DeliverAfter(withDeliverAfter(str(s)), now, DefaultMaxDeliverAfter)
		if err != nil {
			if !errors.Is(err, ErrInvalidDeliverAfter) {
				t.Fatalf("%q: error %v does not wrap ErrInvalidDeliverAfter", s, err)
			}
			return
		}
		if !got.IsZero() && (!got.After(now) || got.Sub(now) > DefaultMaxDeliverAfter) {
			t.Fatalf("%q: due %v outside (now, now+max]", s, got)
		}
	})
}
