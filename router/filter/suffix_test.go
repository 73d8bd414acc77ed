package filter

import "testing"

func TestSuffix(t *testing.T) {
	runMatchTable(t, map[string]matchCase{
		"type suffix": {
			spec: Spec{Suffix: map[string]string{"type": ".created"}},
			ev:   testEvent(), want: true,
		},
		"whole value is a suffix": {
			spec: Spec{Suffix: map[string]string{"source": "/shop/eu"}},
			ev:   testEvent(), want: true,
		},
		"no match": {
			spec: Spec{Suffix: map[string]string{"type": ".deleted"}},
			ev:   testEvent(), want: false,
		},
		"longer than value": {
			spec: Spec{Suffix: map[string]string{"source": "x/shop/eu"}},
			ev:   testEvent(), want: false,
		},
		"missing attribute": {
			spec: Spec{Suffix: map[string]string{"subject": ".pdf"}},
			ev:   testEvent(), want: false,
		},
		"subject": {
			spec: Spec{Suffix: map[string]string{"subject": ".pdf"}},
			ev:   testEvent(withAttr("subject", ceString("invoices/42.pdf"))), want: true,
		},
		"extension": {
			spec: Spec{Suffix: map[string]string{"region": "-west"}},
			ev:   testEvent(withAttr("region", ceString("eu-west"))), want: true,
		},
		"integer extension canonical form": {
			spec: Spec{Suffix: map[string]string{"count": "00"}},
			ev:   testEvent(withAttr("count", ceInt(300))), want: true,
		},
		"prefix and suffix together": {
			spec: Spec{Prefix: map[string]string{"type": "com."}, Suffix: map[string]string{"type": ".created"}},
			ev:   testEvent(), want: true,
		},
	})
}
