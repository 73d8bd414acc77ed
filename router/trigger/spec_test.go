package trigger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

func TestValidateReportsEveryFieldWithItsPath(t *testing.T) {
	cases := map[string]struct {
		spec  string
		paths []string
	}{
		"valid minimal":  {spec: `{"name":"a","target":{"grpc":"h:1"}}`},
		"valid http":     {spec: `{"name":"a-1","target":{"url":"https://fn.example/x"}}`},
		"missing all":    {spec: `{}`, paths: []string{"name", "target"}},
		"bad name":       {spec: `{"name":"Bad_Name","target":{"grpc":"h:1"}}`, paths: []string{"name"}},
		"long name":      {spec: `{"name":"` + strings.Repeat("a", 64) + `","target":{"grpc":"h:1"}}`, paths: []string{"name"}},
		"both targets":   {spec: `{"name":"a","target":{"grpc":"h:1","url":"http://x"}}`, paths: []string{"target"}},
		"bad grpc":       {spec: `{"name":"a","target":{"grpc":"nohost"}}`, paths: []string{"target.grpc"}},
		"bad port":       {spec: `{"name":"a","target":{"grpc":"h:99999"}}`, paths: []string{"target.grpc"}},
		"bad url scheme": {spec: `{"name":"a","target":{"url":"ftp://x"}}`, paths: []string{"target.url"}},
		"bad delivery": {spec: `{"name":"a","target":{"grpc":"h:1"},"delivery":{"timeout":"-1s","max_attempts":-2,"max_concurrency":20000,"max_queue":-1,"initial_backoff":"10m","max_backoff":"1m"}}`,
			paths: []string{"delivery.timeout", "delivery.initial_backoff", "delivery.max_attempts", "delivery.max_concurrency", "delivery.max_queue"}},
		"ordering by attribute": {spec: `{"name":"a","target":{"grpc":"h:1"},"delivery":{"ordering":{"key":"subject","on_dead":"block"}}}`},
		"ordering by CEL":       {spec: `{"name":"a","target":{"grpc":"h:1"},"delivery":{"ordering":{"key":"data.customer.id"}}}`},
		"bad ordering": {spec: `{"name":"a","target":{"grpc":"h:1"},"delivery":{"ordering":{"key":"data.x +","on_dead":"stop"}}}`,
			paths: []string{"delivery.ordering.key", "delivery.ordering.on_dead"}},
		"ordering with dedup":  {spec: `{"name":"a","target":{"grpc":"h:1"},"delivery":{"dedup_window":"1m","ordering":{"key":"subject"}}}`},
		"ordering without key": {spec: `{"name":"a","target":{"grpc":"h:1"},"delivery":{"ordering":{}}}`, paths: []string{"delivery.ordering.key"}},
		"bad filters": {spec: `{"name":"a","target":{"grpc":"h:1"},"filter":{"cel":"data.x >","all":[{"cesql":"a LIKEE 'x'"}],"prefix":{"Bad":"x"}}}`,
			paths: []string{"filter.cel", "filter.all[0].cesql", "filter.prefix"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			specs, err := Parse([]byte(tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			err = specs[0].Validate()
			if len(tc.paths) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("want FieldErrors, got %v", err)
			}
			for _, p := range tc.paths {
				found := false
				for _, f := range fe {
					if strings.HasPrefix(f.Path, p) {
						found = true
					}
				}
				if !found {
					t.Errorf("no error for %s in %v", p, fe)
				}
			}
		})
	}
}

func TestParseYAMLAndDefaults(t *testing.T) {
	specs, err := Parse([]byte(`
name: orders-to-billing
filter:
  attributes: {type: com.example.order.created}
  prefix: {source: /shop/}
  cesql: "subject LIKE 'eu-%'"
  cel: "data.total > 100"
target:
  grpc: 127.0.0.1:7070
delivery:
  timeout: 10s
  max_concurrency: 16
---
name: second
target: {url: "http://localhost/x"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("want 2 specs, got %d", len(specs))
	}
	c, err := Compile(specs[0])
	if err != nil {
		t.Fatal(err)
	}
	d := c.Spec.Delivery
	if d.Timeout.Duration != 10*time.Second || d.MaxConcurrency != 16 || d.MaxAttempts != DefaultMaxAttempts ||
		d.InitialBackoff.Duration != DefaultInitialBackoff || d.MaxBackoff.Duration != DefaultMaxBackoff ||
		d.MaxEventAge.Duration != DefaultMaxEventAge || d.MaxQueue != DefaultMaxQueue {
		t.Fatalf("defaults not applied: %+v", d)
	}
	// Proto round trip keeps everything.
	back := FromProto(ToProto(c.Spec))
	if !proto.Equal(ToProto(back), ToProto(c.Spec)) {
		t.Fatalf("proto round trip changed the spec")
	}
	if _, err := Parse([]byte(`{"name":"a","target":{"grpc":"h:1"},"bogus":1}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
	if _, err := Parse([]byte(`name: a
delivery: {timeout: soon}`)); err == nil || !strings.Contains(err.Error(), "duration") {
		t.Fatalf("bad duration: %v", err)
	}
}

// FuzzParse feeds arbitrary trigger files through Parse, Validate and
// Compile: never a panic, and a compiled trigger survives the proto round
// trip unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"name":"a","target":{"grpc":"h:1"}}`))
	f.Add([]byte("name: x\ntarget: {url: 'http://a/b'}\nfilter: {cel: 'data.a > 1', any: [{attributes: {type: t}}]}\n---\nname: y\n"))
	f.Add([]byte(`[{"name":"a","filter":{"not":{"cesql":"EXISTS subject"}},"target":{"grpc":"h:1"},"delivery":{"timeout":3}}]`))
	f.Add([]byte("name: t\ntarget: {grpc: 'grpcs://fn:443', tls: {ca_file: /ca.pem, cert_file: /c, key_file: /k, server_name: fn}, auth: {bearer_secret: TOK}}\n"))
	f.Add([]byte(`{"name":"u","target":{"url":"https://u:p@fn/x?t=1","auth":{"signing_secret":"hooks","bearer_secret":"b"},"tls":{}}}`))
	f.Add([]byte(`{"name":"p","target":{"publish":{"kind":"kafka","topic":"orders","brokers":["k:9092"],"tls":true}}}`))
	f.Add([]byte("name: q\ntarget: {publish: {kind: sql, dialect: postgres, addr: 'db:5432', database: d, user: u, table: t, create_table: 1}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := Parse(data)
		if err != nil {
			return
		}
		for _, s := range specs {
			c, err := Compile(s)
			if err != nil {
				var fe FieldErrors
				if !errors.As(err, &fe) || len(fe) == 0 {
					t.Fatalf("compile error is not FieldErrors: %v", err)
				}
				continue
			}
			p := ToProto(c.Spec)
			if !proto.Equal(ToProto(FromProto(p)), p) {
				t.Fatalf("proto round trip changed %v", p)
			}
		}
	})
}

func TestOrderingRoundTripsAndCompiles(t *testing.T) {
	specs, err := Parse([]byte(`{"name":"a","target":{"grpc":"h:1"},"delivery":{"ordering":{"key":"subject"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Compile(specs[0])
	if err != nil {
		t.Fatal(err)
	}
	if tr.Key == nil || tr.Key.String() != "subject" || tr.Spec.Delivery.Ordering.OnDead != OnDeadContinue {
		t.Fatalf("ordering not compiled with its default: %+v", tr.Spec.Delivery.Ordering)
	}
	if specs[0].Delivery.Ordering.OnDead != "" {
		t.Fatal("SetDefaults changed the caller's spec")
	}
	back := FromProto(ToProto(tr.Spec))
	if *back.Delivery.Ordering != *tr.Spec.Delivery.Ordering {
		t.Fatalf("round trip: %+v != %+v", back.Delivery.Ordering, tr.Spec.Delivery.Ordering)
	}
	plain, err := Compile(Spec{Name: "b", Target: Target{GRPC: "h:1"}})
	if err != nil || plain.Key != nil {
		t.Fatalf("an unordered trigger has no key: %v %v", plain, err)
	}
}
