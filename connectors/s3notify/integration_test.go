package s3notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	_ "github.com/switchyard-io/switchyard/connectors/s3notify"
)

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "s3_notifications", env, fields)
}

// record renders one MinIO-style record with a unique request id.
func record(bucket, key, reqID string) string {
	return fmt.Sprintf(`{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2025-03-04T05:06:07.5Z",`+
		`"eventName":"s3:ObjectCreated:Put","responseElements":{"x-amz-request-id":%q,"x-amz-id-2":"node1"},`+
		`"s3":{"bucket":{"name":%q},"object":{"key":%q,"size":3,"eTag":"abc","sequencer":"01"}}}`, reqID, bucket, key)
}

func notification(records ...string) []byte {
	return []byte(`{"Records":[` + strings.Join(records, ",") + `]}`)
}

// post sends body until it is answered 2xx, as notification senders retry.
func post(t testing.TB, url string, body []byte, hdr map[string]string) {
	t.Helper()
	for range 600 {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("the endpoint never accepted %s", body)
}

var seq atomic.Int64

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		Push: true,
		New: func(t *testing.T, env connectors.Env) connectors.Source {
			return build(t, env, map[string]any{"insecure": true})
		},
		Produce: func(t *testing.T, name string, mux *connectortest.Mux, n int) {
			// Notifications of up to three records each, sent concurrently.
			var wg sync.WaitGroup
			for n > 0 {
				k := min(n, 3)
				n -= k
				recs := make([]string, k)
				for i := range recs {
					x := seq.Add(1)
					recs[i] = record("bucket-"+name, fmt.Sprintf("obj-%d", x), fmt.Sprintf("req-%d", x))
				}
				wg.Add(1)
				go func() { defer wg.Done(); post(t, mux.URL+"/s3/"+name, notification(recs...), nil) }()
			}
			wg.Wait()
		},
	})
}

// batchSink records the size of every publish and can refuse them.
type batchSink struct {
	mu      sync.Mutex
	batches [][]*pb.CloudEvent
	refuse  int // refuse this many publishes first (as transient errors)
}

func (s *batchSink) Publish(_ context.Context, evs []*pb.CloudEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse > 0 {
		s.refuse--
		return fmt.Errorf("store unavailable")
	}
	s.batches = append(s.batches, evs)
	return nil
}

func run(t testing.TB, src connectors.Source, sink connectors.Sink) {
	t.Helper()
	reg := connectors.NewRegistry()
	if err := reg.Register(connectors.Spec{Kind: "under_test", Summary: "s3 notifications",
		New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }}); err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRunner(connectors.RunnerConfig{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		reg, sink, func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "under-test", Kind: "under_test"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
}

func do(t *testing.T, url string, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A notification's records are published together, and the request is
// answered only once they are all durable.
func TestNotificationIsOneBatch(t *testing.T) {
	mux := connectortest.NewMux(t)
	src := build(t, connectortest.Env("batch", &connectortest.MemCheckpoints{}, mux), map[string]any{"insecure": true})
	sink := &batchSink{refuse: 2}
	run(t, src, sink)
	body := notification(record("b", "k1", "r1"), record("b", "k2", "r2"), record("b", "k3", "r3"), record("b", "k4", "r4"))
	var status int
	var resp string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if status, resp = do(t, mux.URL+"/s3/batch", body, nil); status != http.StatusServiceUnavailable {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, resp)
	}
	var out struct{ IDs []string }
	if err := json.Unmarshal([]byte(resp), &out); err != nil || len(out.IDs) != 4 || out.IDs[0] != "r1.node1" {
		t.Fatalf("answer %s (%v)", resp, err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.batches) != 1 || len(sink.batches[0]) != 4 {
		sizes := []int{}
		for _, b := range sink.batches {
			sizes = append(sizes, len(b))
		}
		t.Fatalf("want one publish of 4 events, got publishes of %v", sizes)
	}
}

// A refused record makes the whole notification 503; the resent
// notification yields the same ids.
func TestNackIs503(t *testing.T) {
	mux := connectortest.NewMux(t)
	src := build(t, connectortest.Env("nack", &connectortest.MemCheckpoints{}, mux), map[string]any{"insecure": true})
	ctx := context.Background()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	body := notification(record("b", "k1", "r1"), record("b", "k2", "r2"))
	type answer struct {
		status int
		body   string
	}
	answers := make(chan answer, 1)
	go func() { s, b := do(t, mux.URL+"/s3/nack", body, nil); answers <- answer{s, b} }()
	first, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = first.Ack(ctx, nil)
	_ = second.Ack(ctx, fmt.Errorf("switchyard said no"))
	if a := <-answers; a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "switchyard said no") {
		t.Fatalf("answer %d %s", a.status, a.body)
	}
	go func() { s, b := do(t, mux.URL+"/s3/nack", body, nil); answers <- answer{s, b} }()
	again, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Event.GetId() != first.Event.GetId() {
		t.Fatalf("resent record has id %q, first time %q", again.Event.GetId(), first.Event.GetId())
	}
	_ = again.Ack(ctx, nil)
	m, _ := src.Read(ctx)
	_ = m.Ack(ctx, nil)
	if a := <-answers; a.status != http.StatusOK {
		t.Fatalf("answer %d %s", a.status, a.body)
	}
}

// Records not read in time are withdrawn: 503, and nothing of the
// notification is read afterwards.
func TestTimeoutWithdraws(t *testing.T) {
	mux := connectortest.NewMux(t)
	src := build(t, connectortest.Env("slow", &connectortest.MemCheckpoints{}, mux), map[string]any{"timeout": "100ms", "insecure": true})
	ctx := context.Background()
	_ = src.Connect(ctx)
	defer src.Close(ctx)
	status, body := do(t, mux.URL+"/s3/slow", notification(record("b", "k1", "r1"), record("b", "k2", "r2")), nil)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d %s", status, body)
	}
	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if m, err := src.Read(rctx); err == nil {
		t.Fatalf("a withdrawn record was read: %v", m.Event)
	}
}

func TestHTTPErrors(t *testing.T) {
	mux := connectortest.NewMux(t)
	src := build(t, connectortest.Env("guarded", &connectortest.MemCheckpoints{}, mux), map[string]any{"token": "t0ken", "max_body_bytes": 2000})
	closed := build(t, connectortest.Env("closed", &connectortest.MemCheckpoints{}, mux), map[string]any{"insecure": true})
	_ = closed
	ctx := context.Background()
	_ = src.Connect(ctx)
	defer src.Close(ctx)
	auth := map[string]string{"Authorization": "Bearer t0ken"}
	big := notification(record("b", strings.Repeat("k", 2000), "r"))
	cases := map[string]struct {
		url    string
		body   []byte
		hdr    map[string]string
		status int
		detail string
	}{
		"no token":       {"/s3/guarded", notification(), nil, 401, "token"},
		"wrong token":    {"/s3/guarded", notification(), map[string]string{"Authorization": "Bearer t0ke"}, 401, "token"},
		"bare token":     {"/s3/guarded", notification(), map[string]string{"Authorization": "t0ken"}, 200, `"ids":[]`},
		"test event":     {"/s3/guarded", []byte(`{"Service":"Amazon S3","Event":"s3:TestEvent"}`), auth, 200, `"test":true`},
		"malformed":      {"/s3/guarded", []byte(`{"Records":[{"eventName":"x","s3":{"bucket":{"name":"b"},"object":{"key":1}}}]}`), auth, 400, "Records[0].s3.object.key: want a string, got a JSON number"},
		"not json":       {"/s3/guarded", []byte(`Records`), auth, 400, "must be a JSON object"},
		"too large":      {"/s3/guarded", big, auth, 413, "exceeds 2000 bytes"},
		"not running":    {"/s3/closed", notification(record("b", "k", "r")), nil, 503, "not running"},
		"unknown source": {"/s3/unknown", notification(), nil, 404, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			status, body := do(t, mux.URL+tc.url, tc.body, tc.hdr)
			if status != tc.status || !strings.Contains(body, tc.detail) {
				t.Fatalf("got %d %s, want %d with %q", status, body, tc.status, tc.detail)
			}
		})
	}
	// Nothing was handed over by the refused requests.
	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if m, err := src.Read(rctx); err == nil {
		t.Fatalf("a refused request produced %v", m.Event)
	}
}

func TestConfigErrors(t *testing.T) {
	spec, _ := connectors.Default.Lookup("s3_notifications")
	mux := connectortest.NewMux(t)
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"unknown field":      {map[string]any{"secret": "x", "insecure": true}, "fields.secret: unknown field"},
		"no token":           {map[string]any{}, "fields.token: required"},
		"token and insecure": {map[string]any{"token": "x", "insecure": true}, "fields.insecure: set either a token or insecure: true"},
		"body size type":     {map[string]any{"insecure": true, "max_body_bytes": "big"}, "fields.max_body_bytes: want a int"},
		"body size zero":     {map[string]any{"insecure": true, "max_body_bytes": 0}, "fields.max_body_bytes: must be positive"},
		"bad timeout":        {map[string]any{"insecure": true, "timeout": "soon"}, "fields.timeout: invalid duration"},
		"zero timeout":       {map[string]any{"insecure": true, "timeout": "0s"}, "fields.timeout: must be positive"},
		"token no header":    {map[string]any{"token": "x", "token_header": ""}, "fields.token_header: required when a token is set"},
		"decode keys string": {map[string]any{"insecure": true, "decode_keys": "yes"}, "fields.decode_keys: want a bool"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := spec.Build("fields", tc.fields)
			if err == nil {
				_, err = spec.New(connectortest.Env("cfg", &connectortest.MemCheckpoints{}, mux), cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := spec.New(connectors.Env{Name: "x"}, connectors.NewConfig(map[string]any{"max_body_bytes": 1, "timeout": time.Second})); err == nil {
		t.Fatal("no HTTP listener accepted")
	}
}

// BenchmarkIngest posts notifications of ten records each to the endpoint,
// drained by a Runner into a real Switchyard router on Redis.
func BenchmarkIngest(b *testing.B) {
	mux := connectortest.NewMux(b)
	src := build(b, connectortest.Env("bench", &connectortest.MemCheckpoints{}, mux), map[string]any{"insecure": true})
	run(b, src, connectortest.RouterSink(b))
	const perNotification = 10
	const senders = 8
	n := b.N
	bodies := make(chan []byte, senders)
	go func() {
		defer close(bodies)
		for i := 0; i < n; i += perNotification {
			recs := make([]string, 0, perNotification)
			for j := i; j < min(n, i+perNotification); j++ {
				recs = append(recs, record("bench", fmt.Sprintf("obj-%d", j), fmt.Sprintf("bench-%d", j)))
			}
			bodies <- notification(recs...)
		}
	}()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range bodies {
				post(b, mux.URL+"/s3/bench", body, nil)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
}
