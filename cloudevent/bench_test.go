package cloudevent

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

// jsonPayload returns a JSON object of exactly n bytes.
func jsonPayload(n int) string {
	head := `{"order":{"id":"ord-12345","customer":"c-987","items":[{"sku":"A1","qty":2,"price":9.99},{"sku":"B2","qty":1,"price":24.5}],"total":44.48,"currency":"EUR"},"pad":"`
	tail := `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// structured1KiB is a typical structured event of exactly 1 KiB.
func structured1KiB(tb testing.TB) []byte {
	prefix := `{"specversion":"1.0","id":"A234-1234-1234","source":"https://example.com/orders","type":"com.example.order.created",` +
		`"subject":"orders/12345","time":"2018-04-05T17:31:00Z","datacontenttype":"application/json",` +
		`"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tenant":"acme","priority":5,"data":`
	b := []byte(prefix + jsonPayload(1024-len(prefix)-1) + "}")
	if len(b) != 1024 {
		tb.Fatalf("size %d", len(b))
	}
	if _, err := DecodeStructured(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func BenchmarkDecodeStructured1KiB(b *testing.B) {
	in := structured1KiB(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeStructured(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeStructured1KiB(b *testing.B) {
	ev, err := DecodeStructured(structured1KiB(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeStructured(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBatch16x1KiB(b *testing.B) {
	one := structured1KiB(b)
	in := []byte("[" + strings.TrimSuffix(strings.Repeat(string(one)+",", 16), ",") + "]")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(in, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	ev, err := DecodeStructured(structured1KiB(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadRequestBinary1KiB reads a binary-mode request with the
// usual headers and a 1 KiB JSON body.
func BenchmarkReadRequestBinary1KiB(b *testing.B) {
	body := []byte(jsonPayload(1024))
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header = http.Header{
		"Ce-Specversion": {"1.0"},
		"Ce-Id":          {"A234-1234-1234"},
		"Ce-Source":      {"https://example.com/orders"},
		"Ce-Type":        {"com.example.order.created"},
		"Ce-Subject":     {"orders/12345"},
		"Ce-Time":        {"2018-04-05T17:31:00Z"},
		"Ce-Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Ce-Tenant":      {"acme"},
		"Content-Type":   {"application/json"},
		"Content-Length": {"1024"},
		"User-Agent":     {"bench"},
		"Accept":         {"*/*"},
	}
	r.ContentLength = int64(len(body))
	rd := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = readCloser{rd}
		evs, _, err := ReadRequest(r, Limits{})
		if err != nil || len(evs) != 1 {
			b.Fatal(err)
		}
		if _, ok := evs[0].Data.(*pb.CloudEvent_TextData); !ok {
			b.Fatal("want text data")
		}
	}
}

func BenchmarkWriteBinary(b *testing.B) {
	ev, err := DecodeStructured(structured1KiB(b))
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		_ = WriteBinary(ev, h)
	}
}
