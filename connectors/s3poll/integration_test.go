package s3poll_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	_ "github.com/switchyard-io/switchyard/connectors/s3poll"
)

// fakeS3 is an in-process S3 (gofakes3, memory backend) on loopback.
type fakeS3 struct {
	srv    *httptest.Server
	host   string
	client *minio.Client
}

func newFakeS3(t testing.TB) *fakeS3 {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4("key", "secret", ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeS3{srv: srv, host: host, client: c}
}

func (f *fakeS3) bucket(t testing.TB, name string) {
	t.Helper()
	if err := f.client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeS3) put(t testing.TB, bucket, key, body string) {
	t.Helper()
	if _, err := f.client.PutObject(context.Background(), bucket, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeS3) remove(t testing.TB, bucket, key string) {
	t.Helper()
	if err := f.client.RemoveObject(context.Background(), bucket, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeS3) fields(bucket string, extra map[string]any) map[string]any {
	m := map[string]any{"endpoint": f.host, "bucket": bucket, "use_ssl": false, "region": "us-east-1",
		"access_key": "key", "secret_key": "secret", "poll_interval": "100ms"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "s3", env, fields)
}

func TestConformance(t *testing.T) {
	s3 := newFakeS3(t)
	var mu sync.Mutex
	buckets := map[string]string{} // source name → bucket
	var seq atomic.Int64
	bucketOf := func(t *testing.T, name string) string {
		mu.Lock()
		defer mu.Unlock()
		b, ok := buckets[name]
		if !ok {
			b = "ct-" + name
			s3.bucket(t, b)
			buckets[name] = b
		}
		return b
	}
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, env connectors.Env) connectors.Source {
			return build(t, env, s3.fields(bucketOf(t, env.Name), nil))
		},
		Produce: func(t *testing.T, name string, _ *connectortest.Mux, n int) {
			b := bucketOf(t, name)
			for range n {
				s3.put(t, b, fmt.Sprintf("dir/obj-%d.txt", seq.Add(1)), "hello")
			}
		},
	})
}

// reader drives a source by hand.
type reader struct {
	t   *testing.T
	src connectors.Source
}

func open(t *testing.T, env connectors.Env, fields map[string]any) *reader {
	t.Helper()
	src := build(t, env, fields)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return &reader{t, src}
}

// next reads n events, acknowledging each with ack.
func (r *reader) next(n int, ack error) []*pb.CloudEvent {
	r.t.Helper()
	var out []*pb.CloudEvent
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := r.src.Read(ctx)
		cancel()
		if err != nil {
			r.t.Fatalf("read %d of %d: %v", len(out)+1, n, err)
		}
		if err := cloudevent.Validate(m.Event); err != nil {
			r.t.Fatalf("invalid event: %v", err)
		}
		if err := m.Ack(context.Background(), ack); err != nil {
			r.t.Fatalf("ack: %v", err)
		}
		out = append(out, m.Event)
	}
	return out
}

// none checks that nothing is read for a few polls.
func (r *reader) none() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	if m, err := r.src.Read(ctx); err == nil {
		r.t.Fatalf("unexpected event %s %s", m.Event.GetType(), subject(m.Event))
	}
}

func subject(ev *pb.CloudEvent) string { s, _ := cloudevent.Attribute(ev, "subject"); return s }

func summary(evs []*pb.CloudEvent) string {
	var parts []string
	for _, ev := range evs {
		parts = append(parts, strings.TrimPrefix(ev.GetType(), "com.switchyard.s3.object.")+" "+subject(ev))
	}
	return strings.Join(parts, ", ")
}

func TestChangesAndRestart(t *testing.T) {
	s3 := newFakeS3(t)
	s3.bucket(t, "changes")
	s3.put(t, "changes", "in/a.txt", "a")
	s3.put(t, "changes", "in/b.txt", "b")
	s3.put(t, "changes", "other/c.txt", "c") // outside the prefix
	cp := &connectortest.MemCheckpoints{}
	fields := s3.fields("changes", map[string]any{"prefix": "in/"})
	r := open(t, connectortest.Env("changes", cp, nil), fields)
	evs := r.next(2, nil)
	if got := summary(evs); got != "created in/a.txt, created in/b.txt" {
		t.Fatalf("first listing: %s", got)
	}
	ev := evs[0]
	if ev.GetSource() != "s3://changes" {
		t.Errorf("source %q", ev.GetSource())
	}
	var data map[string]any
	if err := json.Unmarshal(cloudevent.Data(ev), &data); err != nil {
		t.Fatal(err)
	}
	if data["bucket"] != "changes" || data["key"] != "in/a.txt" || data["size"] != float64(1) || data["etag"] == "" || data["last_modified"] == "" {
		t.Errorf("data %v", data)
	}
	if ct, _ := cloudevent.Attribute(ev, "datacontenttype"); ct != "application/json" {
		t.Errorf("datacontenttype %q", ct)
	}
	r.none()

	time.Sleep(10 * time.Millisecond)
	s3.put(t, "changes", "in/a.txt", "a2")
	s3.remove(t, "changes", "in/b.txt")
	s3.put(t, "changes", "in/d.txt", "d")
	evs = r.next(3, nil)
	if got := summary(evs); got != "updated in/a.txt, deleted in/b.txt, created in/d.txt" {
		t.Fatalf("second listing: %s", got)
	}
	_ = r.src.Close(context.Background())

	// While down: one change. After the restart only it is emitted.
	s3.remove(t, "changes", "in/d.txt")
	r2 := open(t, connectortest.Env("changes", cp, nil), fields)
	evs2 := r2.next(1, nil)
	if got := summary(evs2); got != "deleted in/d.txt" {
		t.Fatalf("after restart: %s", got)
	}
	r2.none()
}

// Unacknowledged changes come back after a restart, with the same ids; the
// refused one too, on the same source.
func TestCheckpointFollowsAcks(t *testing.T) {
	s3 := newFakeS3(t)
	s3.bucket(t, "acks")
	for i := range 4 {
		s3.put(t, "acks", fmt.Sprintf("k%d", i), "x")
	}
	cp := &connectortest.MemCheckpoints{}
	fields := s3.fields("acks", nil)
	r := open(t, connectortest.Env("acks", cp, nil), fields)
	first := r.next(2, nil) // k0, k1 acknowledged, the pass is incomplete
	refused := r.next(1, errors.New("no"))
	// The refused pass is listed again at once: k2, k3 (k0, k1 are durable).
	again := r.next(2, nil)
	if got := summary(again); got != "created k2, created k3" {
		t.Fatalf("after the refusal: %s", got)
	}
	if again[0].GetId() != refused[0].GetId() {
		t.Fatalf("redelivered id %q, first %q", again[0].GetId(), refused[0].GetId())
	}
	_ = first

	// A crash (no Close) in the middle of the next pass: what was not
	// acknowledged comes back to the next process, with the same ids.
	s3.put(t, "acks", "k4", "y")
	s3.put(t, "acks", "k5", "y")
	crashed := build(t, connectortest.Env("acks", cp, nil), fields)
	if err := crashed.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer crashed.Close(context.Background())
	m, err := crashed.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if subject(m.Event) != "k4" {
		t.Fatalf("read %s", subject(m.Event))
	}
	r2 := open(t, connectortest.Env("acks", cp, nil), fields)
	evs := r2.next(2, nil)
	if got := summary(evs); got != "created k4, created k5" {
		t.Fatalf("after the crash: %s", got)
	}
	if evs[0].GetId() != m.Event.GetId() {
		t.Fatal("the id changed across processes")
	}
	r2.none()
}

func TestEmitExistingFalse(t *testing.T) {
	s3 := newFakeS3(t)
	s3.bucket(t, "baseline")
	s3.put(t, "baseline", "old", "x")
	cp := &connectortest.MemCheckpoints{}
	r := open(t, connectortest.Env("baseline", cp, nil), s3.fields("baseline", map[string]any{"emit_existing": false}))
	r.none()
	s3.put(t, "baseline", "new", "y")
	if got := summary(r.next(1, nil)); got != "created new" {
		t.Fatalf("got %s", got)
	}
}

func TestVersioned(t *testing.T) {
	s3 := newFakeS3(t)
	s3.bucket(t, "versioned")
	ctx := context.Background()
	if err := s3.client.EnableVersioning(ctx, "versioned"); err != nil {
		t.Fatal(err)
	}
	r := open(t, connectortest.Env("versioned", &connectortest.MemCheckpoints{}, nil), s3.fields("versioned", map[string]any{"versioned": true}))
	s3.put(t, "versioned", "doc", "v1")
	created := r.next(1, nil)
	s3.put(t, "versioned", "doc", "v2")
	updated := r.next(1, nil)
	s3.remove(t, "versioned", "doc") // a delete marker
	deleted := r.next(1, nil)
	if got := summary(append(append(created, updated...), deleted...)); got != "created doc, updated doc, deleted doc" {
		t.Fatalf("got %s", got)
	}
	var d1, d2 map[string]any
	_ = json.Unmarshal(cloudevent.Data(created[0]), &d1)
	_ = json.Unmarshal(cloudevent.Data(updated[0]), &d2)
	if d1["version_id"] == nil || d1["version_id"] == d2["version_id"] {
		t.Fatalf("version ids %v %v", d1["version_id"], d2["version_id"])
	}
}

func TestUnreachableReconnects(t *testing.T) {
	s3 := newFakeS3(t)
	s3.bucket(t, "gone")
	r := open(t, connectortest.Env("gone", &connectortest.MemCheckpoints{}, nil), s3.fields("gone", nil))
	s3.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := r.src.Read(ctx)
	if !errors.Is(err, connectors.ErrNotConnected) {
		t.Fatalf("read from a store that is gone: %v", err)
	}
	// Connect says why it cannot connect.
	_ = r.src.Close(ctx)
	if err := r.src.Connect(ctx); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("connect: %v", err)
	}
}

func TestMissingBucket(t *testing.T) {
	s3 := newFakeS3(t)
	src := build(t, connectortest.Env("nob", &connectortest.MemCheckpoints{}, nil), s3.fields("nobucket", nil))
	err := src.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), `bucket "nobucket" does not exist`) {
		t.Fatalf("connect: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	spec, _ := connectors.Default.Lookup("s3")
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"endpoint": "127.0.0.1:9000", "bucket": "data"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"no endpoint":   {map[string]any{"bucket": "data"}, "fields.endpoint: required"},
		"no bucket":     {map[string]any{"endpoint": "x"}, "fields.bucket: required"},
		"endpoint path": {base(map[string]any{"endpoint": "http://host/path"}), "fields.endpoint:"},
		"short bucket":  {base(map[string]any{"bucket": "ab"}), "fields.bucket: \"ab\": a bucket name has 3 to 63 characters"},
		"upper bucket":  {base(map[string]any{"bucket": "Data"}), "fields.bucket: \"Data\": character 'D'"},
		"fast poll":     {base(map[string]any{"poll_interval": "10ms"}), "fields.poll_interval: 10ms: must be at least 100ms"},
		"poll type":     {base(map[string]any{"poll_interval": 5}), "fields.poll_interval: want a duration"},
		"half creds":    {base(map[string]any{"access_key": "k"}), "fields.secret_key: give both"},
		"lookup":        {base(map[string]any{"bucket_lookup": "virtual"}), "fields.bucket_lookup: \"virtual\": want auto, path or dns"},
		"ssl type":      {base(map[string]any{"use_ssl": "no"}), "fields.use_ssl: want a bool"},
		"unknown":       {base(map[string]any{"secret": "x"}), "fields.secret: unknown field"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := spec.Build("fields", tc.fields)
			if err == nil {
				_, err = spec.New(connectortest.Env("cfg", &connectortest.MemCheckpoints{}, nil), cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// countingSink counts what reaches the real router.
type countingSink struct {
	connectors.Sink
	n atomic.Int64
}

func (s *countingSink) Publish(ctx context.Context, evs []*pb.CloudEvent) error {
	if err := s.Sink.Publish(ctx, evs); err != nil {
		return err
	}
	s.n.Add(int64(len(evs)))
	return nil
}

// BenchmarkIngest puts b.N objects into the bucket, then measures how fast a
// Runner moves the listing's events into a real Switchyard router on Redis.
func BenchmarkIngest(b *testing.B) {
	s3 := newFakeS3(b)
	s3.bucket(b, "bench")
	var wg sync.WaitGroup
	keys := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				s3.put(b, "bench", fmt.Sprintf("data/2025/03/04/object-%08d.json", i), `{"n":1}`)
			}
		}()
	}
	for i := range b.N {
		keys <- i
	}
	close(keys)
	wg.Wait()
	sink := &countingSink{Sink: connectortest.RouterSink(b)}
	src := build(b, connectortest.Env("bench", &connectortest.MemCheckpoints{}, nil), s3.fields("bench", map[string]any{"poll_interval": "1s"}))
	reg := connectors.NewRegistry()
	_ = reg.Register(connectors.Spec{Kind: "under_test", Summary: "s3", New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }})
	runner, err := connectors.NewRunner(connectors.RunnerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, reg, sink,
		func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "bench", Kind: "under_test"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	runner.Start()
	for sink.n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = runner.Stop(ctx)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
