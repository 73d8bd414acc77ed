package filter

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
)

func TestCEL(t *testing.T) {
	when := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	order := testEvent(withText("application/json", `{"total": 150, "items": [{"sku": "a"}, {"sku": "b"}], "customer": {"vip": true}}`))
	runMatchTable(t, map[string]matchCase{
		"json data":                      {spec: Spec{CEL: "data.total > 100"}, ev: order, want: true},
		"json data below":                {spec: Spec{CEL: "data.total > 200"}, ev: order, want: false},
		"json numbers are doubles":       {spec: Spec{CEL: "data.total == 150.0 && data.total == 150"}, ev: order, want: true},
		"json nested":                    {spec: Spec{CEL: "data.customer.vip && data.items.exists(i, i.sku == 'b')"}, ev: order, want: true},
		"json list size":                 {spec: Spec{CEL: "size(data.items) == 2"}, ev: order, want: true},
		"missing field":                  {spec: Spec{CEL: "data.discount > 0"}, ev: order, want: false},
		"missing field guarded by has":   {spec: Spec{CEL: "!has(data.discount) || data.discount > 0"}, ev: order, want: true},
		"missing field absorbed by ||":   {spec: Spec{CEL: "data.discount > 0 || data.total > 100"}, ev: order, want: true},
		"type mismatch":                  {spec: Spec{CEL: "data.customer > 1"}, ev: order, want: false},
		"json content type +json":        {spec: Spec{CEL: "data.a == 1"}, ev: testEvent(withText("application/cloudevents+json; charset=utf-8", `{"a":1}`)), want: true},
		"json content type text/json":    {spec: Spec{CEL: "data.a == 1"}, ev: testEvent(withBinary("text/json", []byte(`{"a":1}`))), want: true},
		"json content type upper case":   {spec: Spec{CEL: "data.a == 1"}, ev: testEvent(withBinary("Application/JSON", []byte(`{"a":1}`))), want: true},
		"binary json":                    {spec: Spec{CEL: "data.a == 1"}, ev: testEvent(withBinary("application/json", []byte(`{"a":1}`))), want: true},
		"json array":                     {spec: Spec{CEL: "data[1] == 'y'"}, ev: testEvent(withText("application/json", `["x","y"]`)), want: true},
		"json scalar":                    {spec: Spec{CEL: "data == 'plain'"}, ev: testEvent(withText("application/json", `"plain"`)), want: true},
		"invalid json is a string":       {spec: Spec{CEL: "data == '{oops'"}, ev: testEvent(withText("application/json", `{oops`)), want: true},
		"no content type, json":          {spec: Spec{CEL: "data.a == 1"}, ev: testEvent(withText("", `{"a":1}`)), want: true},
		"no content type, not json":      {spec: Spec{CEL: "data == 'hello'"}, ev: testEvent(withText("", "hello")), want: true},
		"no content type, binary":        {spec: Spec{CEL: "data == b'\\x00\\x01'"}, ev: testEvent(withBinary("", []byte{0, 1})), want: true},
		"text data":                      {spec: Spec{CEL: "data.startsWith('Dear')"}, ev: testEvent(withText("text/plain", "Dear customer")), want: true},
		"text data that looks like json": {spec: Spec{CEL: "data == '{\"a\":1}'"}, ev: testEvent(withText("text/plain", `{"a":1}`)), want: true},
		"text/* binary data":             {spec: Spec{CEL: "data == 'a,b'"}, ev: testEvent(withBinary("text/csv", []byte("a,b"))), want: true},
		"binary data":                    {spec: Spec{CEL: "data == b'\\x01\\x02' && size(data) == 2"}, ev: testEvent(withBinary("application/octet-stream", []byte{1, 2})), want: true},
		"no data is null":                {spec: Spec{CEL: "data == null"}, ev: testEvent(), want: true},
		"no data field access":           {spec: Spec{CEL: "data.total > 1"}, ev: testEvent(), want: false},

		// Attributes.
		"core attributes":                      {spec: Spec{CEL: "id == 'e-1' && source == '/shop/eu' && type == 'com.example.order.created' && specversion == '1.0'"}, ev: testEvent(), want: true},
		"absent optional attributes are empty": {spec: Spec{CEL: "subject == '' && dataschema == '' && datacontenttype == ''"}, ev: testEvent(), want: true},
		"subject":                              {spec: Spec{CEL: "subject.startsWith('eu-')"}, ev: testEvent(withAttr("subject", ceString("eu-1"))), want: true},
		"datacontenttype":                      {spec: Spec{CEL: "datacontenttype == 'text/plain'"}, ev: testEvent(withText("text/plain", "x")), want: true},
		"dataschema":                           {spec: Spec{CEL: "dataschema == 'https://s/1'"}, ev: testEvent(withAttr("dataschema", ceURI("https://s/1"))), want: true},
		"time":                                 {spec: Spec{CEL: "time == timestamp('2024-05-01T10:30:00Z') && time.getHours() == 10"}, ev: testEvent(withAttr("time", ceTime(when))), want: true},
		"time given as a string":               {spec: Spec{CEL: "time == timestamp('2024-05-01T10:30:00Z')"}, ev: testEvent(withAttr("time", ceString("2024-05-01T12:30:00+02:00"))), want: true},
		"malformed time is the epoch":          {spec: Spec{CEL: "time == timestamp('1970-01-01T00:00:00Z')"}, ev: testEvent(withAttr("time", ceString("yesterday"))), want: true},
		"absent time is the epoch":             {spec: Spec{CEL: "time == timestamp('1970-01-01T00:00:00Z')"}, ev: testEvent(), want: true},
		"attributes map":                       {spec: Spec{CEL: "attributes.type == type && attributes['count'] == '42' && attributes.flag == 'true'"}, ev: testEvent(withAttr("count", ceInt(42)), withAttr("flag", ceBool(true))), want: true},
		"attributes map has time":              {spec: Spec{CEL: "attributes.time == '2024-05-01T10:30:00Z'"}, ev: testEvent(withAttr("time", ceTime(when))), want: true},
		"attributes map missing key":           {spec: Spec{CEL: "attributes.tenant == 'x'"}, ev: testEvent(), want: false},

		// Typed extensions.
		"int extension":                      {spec: Spec{CEL: "extensions.count == 42 && extensions.count + 1 == 43"}, ev: testEvent(withAttr("count", ceInt(42))), want: true},
		"bool extension":                     {spec: Spec{CEL: "extensions.flag"}, ev: testEvent(withAttr("flag", ceBool(true))), want: true},
		"string extension":                   {spec: Spec{CEL: "extensions.tenant == 'acme'"}, ev: testEvent(withAttr("tenant", ceString("acme"))), want: true},
		"bytes extension":                    {spec: Spec{CEL: "extensions.sig == b'\\x01\\x02\\x03'"}, ev: testEvent(withAttr("sig", ceBytes([]byte{1, 2, 3}))), want: true},
		"uri-reference extension":            {spec: Spec{CEL: "extensions.ref == '../x'"}, ev: testEvent(withAttr("ref", ceURIRef("../x"))), want: true},
		"empty bytes extension":              {spec: Spec{CEL: "extensions.sig == b''"}, ev: testEvent(withAttr("sig", ceBytes(nil))), want: true},
		"valueless extension is absent":      {spec: Spec{CEL: "!('odd' in extensions) && !('odd' in attributes)"}, ev: testEvent(withAttr("odd", &pb.CloudEventAttributeValue{})), want: true},
		"uri extension":                      {spec: Spec{CEL: "extensions.link == 'https://x/y'"}, ev: testEvent(withAttr("link", ceURI("https://x/y"))), want: true},
		"timestamp extension":                {spec: Spec{CEL: "extensions.deadline > timestamp('2024-01-01T00:00:00Z')"}, ev: testEvent(withAttr("deadline", ceTime(when))), want: true},
		"extension presence":                 {spec: Spec{CEL: "'tenant' in extensions && has(extensions.tenant)"}, ev: testEvent(withAttr("tenant", ceString("acme"))), want: true},
		"extension absent":                   {spec: Spec{CEL: "!('tenant' in extensions)"}, ev: testEvent(), want: true},
		"core attributes are not extensions": {spec: Spec{CEL: "!('subject' in extensions) && !('time' in extensions)"}, ev: testEvent(withAttr("subject", ceString("s")), withAttr("time", ceTime(when))), want: true},
		"missing extension":                  {spec: Spec{CEL: "extensions.tenant == 'acme'"}, ev: testEvent(), want: false},

		// Results.
		"dyn result true":     {spec: Spec{CEL: "data.customer.vip"}, ev: order, want: true},
		"dyn result not bool": {spec: Spec{CEL: "data.total"}, ev: order, want: false},
		"strings extension":   {spec: Spec{CEL: "type.split('.').size() == 4 && source.lowerAscii() == '/shop/eu'"}, ev: testEvent(), want: true},
	})
}

func TestCELCostLimit(t *testing.T) {
	items := make([]string, 1000)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	big := testEvent(withText("application/json", `{"items":[`+strings.Join(items, ",")+`]}`))
	small := testEvent(withText("application/json", `{"items":[1,2,3]}`))
	// Quadratic in the data size: cheap for 3 items, ~10^6 for 1000.
	f := mustCompile(t, Spec{CEL: "data.items.all(x, data.items.exists(y, y == x))"})
	require.True(t, f.Match(NewInput(small)))
	start := time.Now()
	require.False(t, f.Match(NewInput(big)), "the cost limit must stop the evaluation")
	require.Less(t, time.Since(start), 2*time.Second)
}

// The CEL filters evaluated on one event share its budget: adding filters
// cannot raise the total past it. Once spent, the remaining CEL filters do
// not match (their per-expression limit alone would let each spend
// CELCostLimit), and the next event starts afresh.
func TestCELEventBudget(t *testing.T) {
	items := make([]string, 60)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	ev := testEvent(withText("application/json", `{"items":[`+strings.Join(items, ",")+`]}`))
	f := mustCompile(t, Spec{CEL: "data.items.all(x, data.items.exists(y, y == x))"})
	in := NewInput(ev)
	require.True(t, f.Match(in))
	one := in.CELCost()
	require.Greater(t, one, uint64(1000), "a quadratic walk over 60 items")
	require.Less(t, one, uint64(CELCostLimit), "within the per-expression limit")
	require.False(t, in.CELBudgetExhausted())

	in.SetCELBudget(one*5 + one/2)
	in.Reset(ev)
	matched := 0
	for range 50 { // fifty triggers with the same filter
		if f.Match(in) {
			matched++
		}
	}
	require.Equal(t, 5, matched, "five evaluations fit the budget, the sixth is stopped by it")
	require.True(t, in.CELBudgetExhausted())
	require.LessOrEqual(t, in.CELCost(), one*5+one/2+one, "spending stops at the budget (the last evaluation is cut short)")

	in.Reset(ev)
	require.False(t, in.CELBudgetExhausted())
	require.Zero(t, in.CELCost())
	require.True(t, f.Match(in), "a new event has the whole budget")
	cheap := mustCompile(t, Spec{CEL: "size(data.items) == 60"})
	require.True(t, cheap.Match(in))
}

// TestInputDecodesOnce checks that the derived values are computed once per
// event and dropped by Reset.
func TestInputDecodesOnce(t *testing.T) {
	in := NewInput(testEvent(withText("application/json", `{"total": 150}`)))
	exact := mustCompile(t, Spec{Attributes: map[string]string{"type": "com.example.order.created"}})
	require.True(t, exact.Match(in))
	require.Zero(t, in.done, "attribute filters derive nothing")

	f1 := mustCompile(t, Spec{CEL: "data.total > 100"})
	f2 := mustCompile(t, Spec{CEL: "data.total < 200"})
	require.True(t, f1.Match(in))
	require.Equal(t, haveData, in.done)
	first := in.data.(map[string]any)
	require.True(t, f2.Match(in))
	require.Equal(t, fmt.Sprintf("%p", first), fmt.Sprintf("%p", in.data.(map[string]any)), "data decoded once")

	sql := mustCompile(t, Spec{CESQL: "type LIKE 'com.%'"})
	require.True(t, sql.Match(in))
	sdk := in.sdk
	require.True(t, sql.Match(in))
	require.Same(t, sdk, in.sdk, "sdk event built once")

	in.Reset(testEvent(withType("other"), withText("application/json", `{"total": 50}`)))
	require.Zero(t, in.done)
	require.False(t, f1.Match(in))
	require.True(t, f2.Match(in))
	require.False(t, sql.Match(in))
}
