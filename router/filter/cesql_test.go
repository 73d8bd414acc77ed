package filter

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

func TestCESQL(t *testing.T) {
	when := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	eu := testEvent(withAttr("subject", ceString("eu-order-42")))
	runMatchTable(t, map[string]matchCase{
		"like":                       {spec: Spec{CESQL: "subject LIKE 'eu-%'"}, ev: eu, want: true},
		"like no match":              {spec: Spec{CESQL: "subject LIKE 'us-%'"}, ev: eu, want: false},
		"not like":                   {spec: Spec{CESQL: "subject NOT LIKE 'us-%'"}, ev: eu, want: true},
		"keywords are case-blind":    {spec: Spec{CESQL: "subject like 'eu-%' and type = 'com.example.order.created'"}, ev: eu, want: true},
		"identifiers are case-blind": {spec: Spec{CESQL: "TYPE = 'com.example.order.created'"}, ev: eu, want: true},
		"equality":                   {spec: Spec{CESQL: "type = 'com.example.order.created' AND source = '/shop/eu'"}, ev: eu, want: true},
		"inequality":                 {spec: Spec{CESQL: "source <> '/shop/eu'"}, ev: eu, want: false},
		"in":                         {spec: Spec{CESQL: "source IN ('/shop/us', '/shop/eu')"}, ev: eu, want: true},
		"function":                   {spec: Spec{CESQL: "UPPER(subject) = 'EU-ORDER-42' AND LENGTH(id) = 3"}, ev: eu, want: true},
		"boolean literal":            {spec: Spec{CESQL: "TRUE"}, ev: eu, want: true},
		"false literal":              {spec: Spec{CESQL: "FALSE"}, ev: eu, want: false},
		"specversion always there":   {spec: Spec{CESQL: "EXISTS specversion AND specversion = '1.0'"}, ev: eu, want: true},

		// Missing attributes: an evaluation error, so no match, even negated.
		"missing attribute":              {spec: Spec{CESQL: "tenant = 'acme'"}, ev: eu, want: false},
		"missing attribute under NOT":    {spec: Spec{CESQL: "NOT (tenant = 'acme')"}, ev: eu, want: false},
		"missing attribute inequality":   {spec: Spec{CESQL: "tenant <> 'acme'"}, ev: eu, want: false},
		"missing attribute guarded":      {spec: Spec{CESQL: "NOT EXISTS tenant OR tenant <> 'acme'"}, ev: eu, want: true},
		"exists":                         {spec: Spec{CESQL: "EXISTS subject"}, ev: eu, want: true},
		"not exists":                     {spec: Spec{CESQL: "NOT EXISTS tenant"}, ev: eu, want: true},
		"short circuit avoids the error": {spec: Spec{CESQL: "FALSE AND tenant = 'x'"}, ev: eu, want: false},
		"error on the right of OR":       {spec: Spec{CESQL: "type = 'nope' OR tenant = 'x'"}, ev: eu, want: false},
		"missing subject":                {spec: Spec{CESQL: "subject LIKE '%'"}, ev: testEvent(), want: false},

		// Typed extensions.
		"integer extension":             {spec: Spec{CESQL: "count > 10 AND count < 100"}, ev: testEvent(withAttr("count", ceInt(42))), want: true},
		"integer extension too small":   {spec: Spec{CESQL: "count > 50"}, ev: testEvent(withAttr("count", ceInt(42))), want: false},
		"integer arithmetic":            {spec: Spec{CESQL: "count % 2 = 0"}, ev: testEvent(withAttr("count", ceInt(42))), want: true},
		"boolean extension":             {spec: Spec{CESQL: "flag"}, ev: testEvent(withAttr("flag", ceBool(true))), want: true},
		"boolean extension false":       {spec: Spec{CESQL: "flag"}, ev: testEvent(withAttr("flag", ceBool(false))), want: false},
		"boolean extension compared":    {spec: Spec{CESQL: "flag = TRUE"}, ev: testEvent(withAttr("flag", ceBool(true))), want: true},
		"string extension":              {spec: Spec{CESQL: "tenant = 'acme'"}, ev: testEvent(withAttr("tenant", ceString("acme"))), want: true},
		"string extension not bool":     {spec: Spec{CESQL: "tenant"}, ev: testEvent(withAttr("tenant", ceString("acme"))), want: false},
		"binary extension base64":       {spec: Spec{CESQL: "sig = 'AQID'"}, ev: testEvent(withAttr("sig", ceBytes([]byte{1, 2, 3}))), want: true},
		"uri extension":                 {spec: Spec{CESQL: "link = 'https://example.com/x?y=1'"}, ev: testEvent(withAttr("link", ceURI("https://example.com/x?y=1"))), want: true},
		"time attribute":                {spec: Spec{CESQL: "time = '2024-05-01T10:30:00Z'"}, ev: testEvent(withAttr("time", ceTime(when))), want: true},
		"time given as a string":        {spec: Spec{CESQL: "time = '2024-05-01T10:30:00Z'"}, ev: testEvent(withAttr("time", ceString("2024-05-01T12:30:00+02:00"))), want: true},
		"malformed time is absent":      {spec: Spec{CESQL: "NOT EXISTS time"}, ev: testEvent(withAttr("time", ceString("yesterday"))), want: true},
		"uri-reference extension":       {spec: Spec{CESQL: "ref = '../x'"}, ev: testEvent(withAttr("ref", ceURIRef("../x"))), want: true},
		"valueless extension is absent": {spec: Spec{CESQL: "NOT EXISTS odd"}, ev: testEvent(withAttr("odd", &pb.CloudEventAttributeValue{})), want: true},
		"timestamp extension":           {spec: Spec{CESQL: "deadline LIKE '2024-05-%'"}, ev: testEvent(withAttr("deadline", ceTime(when))), want: true},
		"dataschema":                    {spec: Spec{CESQL: "dataschema = 'https://schemas/x'"}, ev: testEvent(withAttr("dataschema", ceURI("https://schemas/x"))), want: true},
		"division by zero":              {spec: Spec{CESQL: "count / 0 = 1"}, ev: testEvent(withAttr("count", ceInt(42))), want: false},

		// Source keeps its exact string (no URL normalization).
		"source kept verbatim": {spec: Spec{CESQL: "source = '/a b/%zz'"}, ev: testEvent(withSource("/a b/%zz")), want: true},
		"source with query":    {spec: Spec{CESQL: "source = 'urn:x:y?z#f'"}, ev: testEvent(withSource("urn:x:y?z#f")), want: true},
	})
}
