package filter

import (
	"testing"
	"time"
)

func TestExact(t *testing.T) {
	when := time.Date(2024, 5, 1, 12, 30, 0, 500_000_000, time.FixedZone("CEST", 2*3600))
	runMatchTable(t, map[string]matchCase{
		"type matches": {
			spec: Spec{Attributes: map[string]string{"type": "com.example.order.created"}},
			ev:   testEvent(), want: true,
		},
		"type differs": {
			spec: Spec{Attributes: map[string]string{"type": "com.example.order.cancelled"}},
			ev:   testEvent(), want: false,
		},
		"exact is not prefix": {
			spec: Spec{Attributes: map[string]string{"type": "com.example.order"}},
			ev:   testEvent(), want: false,
		},
		"case sensitive": {
			spec: Spec{Attributes: map[string]string{"type": "COM.EXAMPLE.ORDER.CREATED"}},
			ev:   testEvent(), want: false,
		},
		"several attributes all match": {
			spec: Spec{Attributes: map[string]string{"type": "com.example.order.created", "source": "/shop/eu", "id": "e-1", "specversion": "1.0"}},
			ev:   testEvent(), want: true,
		},
		"several attributes one differs": {
			spec: Spec{Attributes: map[string]string{"type": "com.example.order.created", "source": "/shop/us"}},
			ev:   testEvent(), want: false,
		},
		"missing optional attribute": {
			spec: Spec{Attributes: map[string]string{"subject": "x"}},
			ev:   testEvent(), want: false,
		},
		"missing attribute never equals empty": {
			spec: Spec{Attributes: map[string]string{"subject": ""}},
			ev:   testEvent(), want: false,
		},
		"missing extension": {
			spec: Spec{Attributes: map[string]string{"tenant": "acme"}},
			ev:   testEvent(), want: false,
		},
		"subject": {
			spec: Spec{Attributes: map[string]string{"subject": "order-42"}},
			ev:   testEvent(withAttr("subject", ceString("order-42"))), want: true,
		},
		"string extension": {
			spec: Spec{Attributes: map[string]string{"tenant": "acme"}},
			ev:   testEvent(withAttr("tenant", ceString("acme"))), want: true,
		},
		"integer extension canonical form": {
			spec: Spec{Attributes: map[string]string{"count": "-42"}},
			ev:   testEvent(withAttr("count", ceInt(-42))), want: true,
		},
		"integer extension other value": {
			spec: Spec{Attributes: map[string]string{"count": "042"}},
			ev:   testEvent(withAttr("count", ceInt(42))), want: false,
		},
		"boolean extension canonical form": {
			spec: Spec{Attributes: map[string]string{"flag": "true"}},
			ev:   testEvent(withAttr("flag", ceBool(true))), want: true,
		},
		"boolean extension is lowercase": {
			spec: Spec{Attributes: map[string]string{"flag": "TRUE"}},
			ev:   testEvent(withAttr("flag", ceBool(true))), want: false,
		},
		"binary extension is base64": {
			spec: Spec{Attributes: map[string]string{"sig": "AQID"}},
			ev:   testEvent(withAttr("sig", ceBytes([]byte{1, 2, 3}))), want: true,
		},
		"uri extension": {
			spec: Spec{Attributes: map[string]string{"link": "https://example.com/a?b=c"}},
			ev:   testEvent(withAttr("link", ceURI("https://example.com/a?b=c"))), want: true,
		},
		"uri-reference extension": {
			spec: Spec{Attributes: map[string]string{"ref": "../x"}},
			ev:   testEvent(withAttr("ref", ceURIRef("../x"))), want: true,
		},
		"time is RFC 3339 UTC": {
			spec: Spec{Attributes: map[string]string{"time": "2024-05-01T10:30:00.5Z"}},
			ev:   testEvent(withAttr("time", ceTime(when))), want: true,
		},
		"timestamp extension": {
			spec: Spec{Attributes: map[string]string{"deadline": "2024-05-01T10:30:00.5Z"}},
			ev:   testEvent(withAttr("deadline", ceTime(when))), want: true,
		},
		"datacontenttype": {
			spec: Spec{Attributes: map[string]string{"datacontenttype": "application/json"}},
			ev:   testEvent(withText("application/json", "{}")), want: true,
		},
		"nil event": {
			spec: Spec{Attributes: map[string]string{"type": "x"}},
			ev:   nil, want: false,
		},
	})
}
