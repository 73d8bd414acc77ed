package filter

import "testing"

func TestPrefix(t *testing.T) {
	runMatchTable(t, map[string]matchCase{
		"source prefix": {
			spec: Spec{Prefix: map[string]string{"source": "/shop/"}},
			ev:   testEvent(), want: true,
		},
		"whole value is a prefix": {
			spec: Spec{Prefix: map[string]string{"source": "/shop/eu"}},
			ev:   testEvent(), want: true,
		},
		"longer than value": {
			spec: Spec{Prefix: map[string]string{"source": "/shop/eu/1"}},
			ev:   testEvent(), want: false,
		},
		"no match": {
			spec: Spec{Prefix: map[string]string{"source": "/warehouse/"}},
			ev:   testEvent(), want: false,
		},
		"case sensitive": {
			spec: Spec{Prefix: map[string]string{"type": "COM."}},
			ev:   testEvent(), want: false,
		},
		"several prefixes": {
			spec: Spec{Prefix: map[string]string{"source": "/shop/", "type": "com.example."}},
			ev:   testEvent(), want: true,
		},
		"several prefixes one fails": {
			spec: Spec{Prefix: map[string]string{"source": "/shop/", "type": "org."}},
			ev:   testEvent(), want: false,
		},
		"missing attribute": {
			spec: Spec{Prefix: map[string]string{"subject": "eu-"}},
			ev:   testEvent(), want: false,
		},
		"extension": {
			spec: Spec{Prefix: map[string]string{"tenant": "ac"}},
			ev:   testEvent(withAttr("tenant", ceString("acme"))), want: true,
		},
		"integer extension canonical form": {
			spec: Spec{Prefix: map[string]string{"count": "12"}},
			ev:   testEvent(withAttr("count", ceInt(1234))), want: true,
		},
		"negative integer extension": {
			spec: Spec{Prefix: map[string]string{"count": "-"}},
			ev:   testEvent(withAttr("count", ceInt(-5))), want: true,
		},
		"boolean extension": {
			spec: Spec{Prefix: map[string]string{"flag": "fa"}},
			ev:   testEvent(withAttr("flag", ceBool(false))), want: true,
		},
	})
}
