package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// webHit is what an HTTP target received.
type webHit struct {
	header http.Header
	body   []byte
}

// webTarget records the POSTs it gets by ce-id and answers 204.
func webTarget(t *testing.T) (*httptest.Server, func(id string) (webHit, bool)) {
	t.Helper()
	var mu sync.Mutex
	hits := map[string]webHit{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits[r.Header.Get("Ce-Id")] = webHit{r.Header.Clone(), body}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, func(id string) (webHit, bool) {
		mu.Lock()
		defer mu.Unlock()
		h, ok := hits[id]
		return h, ok
	}
}

// TestDataArrivesAsSent: the data of an event reaches a gRPC function and
// an HTTP target byte for byte, whitespace included, in every content
// mode: a signature over the body still verifies. Structured mode keeps the
// bytes of the "data" member's value (its inner whitespace).
func TestDataArrivesAsSent(t *testing.T) {
	b := testenv.Embedded(t)
	rec := &received{}
	web, hit := webTarget(t)
	e := startServer(t, b, nil)
	e.apply(t, fmt.Sprintf(`
name: fn
filter: {attributes: {type: data}}
target: {grpc: "%s"}
---
name: web
filter: {attributes: {type: data}}
target: {url: "%s/in"}
`, startFunction(t, recorder(rec)), web.URL))

	ce := func(id string) map[string]string {
		return map[string]string{"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Source": "/p", "Ce-Type": "data"}
	}
	cases := []struct {
		id, contentType string
		headers         map[string]string
		body            string
		data            string // what the targets must get
		wantType        string // the Content-Type the HTTP target must get
	}{
		{"bin-json", "application/json", ce("bin-json"), "  {\"a\" : 1}\r\n", "  {\"a\" : 1}\r\n", "application/json"},
		{"bin-json-charset", "application/json; charset=utf-8", ce("bin-json-charset"), "\n[1,\t2]\n\n", "\n[1,\t2]\n\n", "application/json; charset=utf-8"},
		{"bin-text", "text/plain", ce("bin-text"), "  hi  \n", "  hi  \n", "text/plain"},
		{"structured", "application/cloudevents+json", nil,
			"{\"specversion\":\"1.0\",\"id\":\"structured\",\"source\":\"/p\",\"type\":\"data\",\"data\":  {\"a\" : [1,  2]}  }\n",
			`{"a" : [1,  2]}`, "application/json"},
	}
	for _, c := range cases {
		st, body := e.post(t, c.contentType, c.headers, []byte(c.body))
		require.Equal(t, http.StatusAccepted, st, "%s: %v", c.id, body)
	}
	for _, c := range cases {
		testenv.Eventually(t, 10*time.Second, func() bool { _, _, ok := rec.byID(c.id); _, ok2 := hit(c.id); return ok && ok2 }, "%s delivered", c.id)
		ev, _, _ := rec.byID(c.id)
		require.Equal(t, c.data, string(ev.Data()), "%s: function data", c.id)
		h, _ := hit(c.id)
		require.Equal(t, c.data, string(h.body), "%s: HTTP target body", c.id)
		require.Equal(t, c.wantType, h.header.Get("Content-Type"), "%s: HTTP Content-Type", c.id)
	}
}

// TestHTTPTargetContentTypeWithoutDataContentType: an event published over
// gRPC without datacontenttype reaches an HTTP target labelled
// application/json only when its data is JSON text; text that is not JSON,
// and binary data, come without Content-Type rather than with a wrong one.
func TestHTTPTargetContentTypeWithoutDataContentType(t *testing.T) {
	b := testenv.Embedded(t)
	web, hit := webTarget(t)
	e := startServer(t, b, nil)
	e.apply(t, fmt.Sprintf(`
name: web
filter: {attributes: {type: data}}
target: {url: "%s/in"}
`, web.URL))
	ev := func(id string) *pb.CloudEvent {
		return &pb.CloudEvent{Id: id, Source: "/grpc", SpecVersion: "1.0", Type: "data"}
	}
	text := ev("text")
	text.Data = &pb.CloudEvent_TextData{TextData: "plain words, not JSON\n"}
	jsonText := ev("json-text")
	jsonText.Data = &pb.CloudEvent_TextData{TextData: `{"k" : 1}`}
	bin := ev("binary")
	bin.Data = &pb.CloudEvent_BinaryData{BinaryData: []byte{0, 1, 0xff}}
	_, err := e.client.Events().PublishBatch(context.Background(), &switchyardv1.PublishBatchRequest{Events: []*pb.CloudEvent{text, jsonText, bin}})
	require.NoError(t, err)

	for id, want := range map[string]struct {
		body        string
		contentType []string
	}{
		"text":      {"plain words, not JSON\n", nil},
		"json-text": {`{"k" : 1}`, []string{"application/json"}},
		"binary":    {"\x00\x01\xff", nil},
	} {
		testenv.Eventually(t, 10*time.Second, func() bool { _, ok := hit(id); return ok }, "%s delivered", id)
		h, _ := hit(id)
		require.Equal(t, want.body, string(h.body), id)
		require.Equal(t, want.contentType, h.header["Content-Type"], id)
	}
}
