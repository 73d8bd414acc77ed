package directory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	_ "github.com/switchyard-io/switchyard/connectors/directory"
)

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "directory", env, fields)
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	root := t.TempDir()
	var seq atomic.Int64
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, env connectors.Env) connectors.Source {
			dir := filepath.Join(root, env.Name)
			_ = os.MkdirAll(dir, 0o755)
			return build(t, env, map[string]any{"path": dir})
		},
		Produce: func(t *testing.T, name string, _ *connectortest.Mux, n int) {
			for range n {
				i := seq.Add(1)
				write(t, filepath.Join(root, name, fmt.Sprintf("file-%d.txt", i)), fmt.Sprintf("content %d", i))
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
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return &reader{t, src}
}

// next reads n events, acknowledging each with nil.
func (r *reader) next(n int) []*pb.CloudEvent {
	r.t.Helper()
	var out []*pb.CloudEvent
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := r.src.Read(ctx)
		cancel()
		if err != nil {
			r.t.Fatalf("read %d of %d (after %s): %v", len(out)+1, n, summary(out), err)
		}
		if err := cloudevent.Validate(m.Event); err != nil {
			r.t.Fatalf("invalid event: %v", err)
		}
		if err := m.Ack(context.Background(), nil); err != nil {
			r.t.Fatalf("ack: %v", err)
		}
		out = append(out, m.Event)
	}
	return out
}

// none checks that nothing more comes for a while.
func (r *reader) none() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if m, err := r.src.Read(ctx); err == nil {
		r.t.Fatalf("unexpected event %s %s", m.Event.GetType(), subject(m.Event))
	}
}

// noneAbout fails on any event within 300 ms whose subject starts with
// prefix; events about other paths are skipped.
func (r *reader) noneAbout(prefix string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for {
		m, err := r.src.Read(ctx)
		if err != nil {
			return
		}
		if strings.HasPrefix(subject(m.Event), prefix) {
			r.t.Fatalf("unexpected event %s %s", m.Event.GetType(), subject(m.Event))
		}
		_ = m.Ack(context.Background(), nil)
	}
}

func subject(ev *pb.CloudEvent) string { s, _ := cloudevent.Attribute(ev, "subject"); return s }

// summary lists "kind path" sorted (notification order is not guaranteed).
func summary(evs []*pb.CloudEvent) string {
	var parts []string
	for _, ev := range evs {
		parts = append(parts, strings.TrimPrefix(ev.GetType(), "com.switchyard.file.")+" "+subject(ev))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func TestLifecycleAndRestart(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), "a")
	cp := &connectortest.MemCheckpoints{}
	// The debounce must outlast the gaps between the steps of b.log's
	// writing below even on a loaded machine (the race detector, other
	// packages' tests): at 30 ms a stretched gap split it into two events.
	fields := map[string]any{"path": dir, "debounce": "250ms", "checksum": true}
	r := open(t, connectortest.Env("life", cp, nil), fields)
	evs := r.next(1)
	if got := summary(evs); got != "created a.txt" {
		t.Fatalf("initial scan: %s", got)
	}
	ev := evs[0]
	if ev.GetSource() != "file://"+filepath.ToSlash(dir) {
		t.Errorf("source %q", ev.GetSource())
	}
	var data map[string]any
	if err := json.Unmarshal(cloudevent.Data(ev), &data); err != nil {
		t.Fatal(err)
	}
	// sha256("a")
	if data["path"] != "a.txt" || data["size"] != float64(1) || data["sha256"] != "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb" || data["mod_time"] == "" {
		t.Errorf("data %v", data)
	}
	if ct, _ := cloudevent.Attribute(ev, "datacontenttype"); ct != "application/json" {
		t.Errorf("datacontenttype %q", ct)
	}

	// A file written in several steps within the debounce: one event.
	f, err := os.Create(filepath.Join(dir, "b.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		fmt.Fprintf(f, "line %d\n", i)
		_ = f.Sync()
		time.Sleep(5 * time.Millisecond)
	}
	f.Close()
	if got := summary(r.next(1)); got != "created b.log" {
		t.Fatalf("written file: %s", got)
	}
	r.none()

	write(t, filepath.Join(dir, "a.txt"), "a, longer")
	if got := summary(r.next(1)); got != "modified a.txt" {
		t.Fatalf("modification: %s", got)
	}
	if err := os.Remove(filepath.Join(dir, "b.log")); err != nil {
		t.Fatal(err)
	}
	removed := r.next(1)
	if got := summary(removed); got != "removed b.log" {
		t.Fatalf("removal: %s", got)
	}
	_ = r.src.Close(context.Background())

	// While down: a change, a removal, a new file; an unchanged file stays quiet.
	write(t, filepath.Join(dir, "keep.txt"), "k") // created while down too
	write(t, filepath.Join(dir, "a.txt"), "a, longer still")
	r2 := open(t, connectortest.Env("life", cp, nil), fields)
	if got := summary(r2.next(2)); got != "created keep.txt, modified a.txt" {
		t.Fatalf("after restart: %s", got)
	}
	r2.none()
	_ = r2.src.Close(context.Background())
	r3 := open(t, connectortest.Env("life", cp, nil), fields)
	r3.none() // nothing changed: nothing re-emitted
}

func TestRecursiveAndPatterns(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "top.csv"), "1")
	write(t, filepath.Join(dir, "top.tmp"), "1")
	write(t, filepath.Join(dir, "sub", "deep", "x.csv"), "1")
	write(t, filepath.Join(dir, "node_modules", "y.csv"), "1")
	r := open(t, connectortest.Env("rec", &connectortest.MemCheckpoints{}, nil), map[string]any{
		"path": dir, "recursive": true, "debounce": "20ms",
		"include": []any{"*.csv", "sub/**/*.json"}, "exclude": []any{"node_modules", "*.tmp"},
	})
	if got := summary(r.next(2)); got != "created sub/deep/x.csv, created top.csv" {
		t.Fatalf("initial scan: %s", got)
	}
	// A new directory tree: its files are found, and it is watched.
	write(t, filepath.Join(dir, "new", "a.csv"), "1")
	write(t, filepath.Join(dir, "sub", "deep", "d.json"), "{}")
	write(t, filepath.Join(dir, "new", "ignored.json"), "{}")
	if got := summary(r.next(2)); got != "created new/a.csv, created sub/deep/d.json" {
		t.Fatalf("new files: %s", got)
	}
	write(t, filepath.Join(dir, "new", "b.csv"), "1")
	if got := summary(r.next(1)); got != "created new/b.csv" {
		t.Fatalf("file in the new directory: %s", got)
	}
	// Removing a directory removes its files; renaming moves them.
	if err := os.RemoveAll(filepath.Join(dir, "new")); err != nil {
		t.Fatal(err)
	}
	if got := summary(r.next(2)); got != "removed new/a.csv, removed new/b.csv" {
		t.Fatalf("removed directory: %s", got)
	}
	if err := os.Rename(filepath.Join(dir, "sub"), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if got := summary(r.next(3)); got != "created moved/deep/x.csv, removed sub/deep/d.json, removed sub/deep/x.csv" {
		t.Fatalf("renamed directory: %s", got)
	}
	r.none()
}

func TestNotRecursive(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "sub", "x"), "1")
	r := open(t, connectortest.Env("flat", &connectortest.MemCheckpoints{}, nil), map[string]any{"path": dir, "debounce": "20ms"})
	write(t, filepath.Join(dir, "y"), "1")
	if got := summary(r.next(1)); got != "created y" {
		t.Fatalf("got %s", got)
	}
	write(t, filepath.Join(dir, "sub", "z"), "1")
	// A loaded machine may split y's create and write by more than the
	// debounce (a later "modified y"): only events about sub/ would be wrong.
	r.noneAbout("sub")
}

func TestIncludeContent(t *testing.T) {
	dir := t.TempDir()
	r := open(t, connectortest.Env("content", &connectortest.MemCheckpoints{}, nil), map[string]any{
		"path": dir, "debounce": "20ms", "include_content": true, "max_content_bytes": 10, "checksum": true,
	})
	write(t, filepath.Join(dir, "small.json"), `{"a":1}`)
	ev := r.next(1)[0]
	if ct, _ := cloudevent.Attribute(ev, "datacontenttype"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	if string(ev.GetBinaryData()) != `{"a":1}` {
		t.Errorf("data %q", ev.GetBinaryData())
	}
	if sz, _ := cloudevent.Attribute(ev, "filesize"); sz != "7" {
		t.Errorf("filesize %q", sz)
	}
	if _, ok := cloudevent.Attribute(ev, "filemodtime"); !ok {
		t.Error("no filemodtime")
	}
	if sum, _ := cloudevent.Attribute(ev, "filesha256"); len(sum) != 64 {
		t.Errorf("filesha256 %q", sum)
	}
	write(t, filepath.Join(dir, "blob.zzunknown"), "\x00\x01")
	ev = r.next(1)[0]
	if ct, _ := cloudevent.Attribute(ev, "datacontenttype"); ct != "application/octet-stream" {
		t.Errorf("unknown extension: content type %q", ct)
	}
	write(t, filepath.Join(dir, "big.txt"), "more than ten bytes")
	ev = r.next(1)[0]
	if ct, _ := cloudevent.Attribute(ev, "datacontenttype"); ct != "application/json" || !strings.Contains(ev.GetTextData(), `"path":"big.txt"`) {
		t.Errorf("a big file: %s %s", ct, ev.GetTextData())
	}
}

func TestEmitExistingFalse(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "old"), "1")
	r := open(t, connectortest.Env("base", &connectortest.MemCheckpoints{}, nil), map[string]any{"path": dir, "debounce": "20ms", "emit_existing": false})
	r.none()
	write(t, filepath.Join(dir, "new"), "1")
	write(t, filepath.Join(dir, "old"), "12")
	if got := summary(r.next(2)); got != "created new, modified old" {
		t.Fatalf("got %s", got)
	}
}

// A refused event comes again, with the same id, on the same source.
func TestRefusedComesBack(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a"), "1")
	write(t, filepath.Join(dir, "b"), "1")
	r := open(t, connectortest.Env("nack", &connectortest.MemCheckpoints{}, nil), map[string]any{"path": dir, "debounce": "20ms"})
	ctx := context.Background()
	m, err := r.src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Ack(ctx, errors.New("no"))
	evs := r.next(2)
	if got := summary(evs); got != "created a, created b" {
		t.Fatalf("after the refusal: %s", got)
	}
	if evs[0].GetId() != m.Event.GetId() && evs[1].GetId() != m.Event.GetId() {
		t.Fatal("the refused event came back with another id")
	}
	r.none()
}

func TestRootRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "watched")
	write(t, filepath.Join(dir, "a"), "1")
	r := open(t, connectortest.Env("gone", &connectortest.MemCheckpoints{}, nil), map[string]any{"path": dir, "debounce": "20ms"})
	r.next(1)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for err == nil {
		var m *connectors.Message
		if m, err = r.src.Read(ctx); err == nil {
			_ = m.Ack(ctx, nil)
		}
	}
	if !errors.Is(err, connectors.ErrNotConnected) {
		t.Fatalf("read after the directory vanished: %v", err)
	}
	_ = r.src.Close(ctx)
	if err := r.src.Connect(ctx); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("connect: %v", err)
	}
}

func TestSymlinkedRoot(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skip(err)
	}
	write(t, filepath.Join(real, "a"), "1")
	r := open(t, connectortest.Env("link", &connectortest.MemCheckpoints{}, nil), map[string]any{"path": link, "debounce": "20ms"})
	if got := summary(r.next(1)); got != "created a" {
		t.Fatalf("got %s", got)
	}
}

func TestConfigErrors(t *testing.T) {
	spec, _ := connectors.Default.Lookup("directory")
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"no path":          {map[string]any{}, "fields.path: required"},
		"empty path":       {map[string]any{"path": ""}, "fields.path: must not be empty"},
		"bad include":      {map[string]any{"path": "/tmp", "include": []any{"ok", "[bad"}}, "fields.include[1]: \"[bad\": syntax error in pattern"},
		"empty exclude":    {map[string]any{"path": "/tmp", "exclude": []any{""}}, "fields.exclude[0]: empty pattern"},
		"include type":     {map[string]any{"path": "/tmp", "include": "*.csv"}, "fields.include: want a list of strings"},
		"negative":         {map[string]any{"path": "/tmp", "debounce": "-1s"}, "fields.debounce: -1s: must not be negative"},
		"content limit":    {map[string]any{"path": "/tmp", "max_content_bytes": 1 << 30}, "fields.max_content_bytes: 1073741824: must be between 1 and 16777216"},
		"rescan":           {map[string]any{"path": "/tmp", "rescan_interval": "-1m"}, "fields.rescan_interval: -1m0s: must not be negative"},
		"recursive string": {map[string]any{"path": "/tmp", "recursive": "yes"}, "fields.recursive: want a bool"},
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
	// A path that is not a directory is a connect error, saying why.
	file := filepath.Join(t.TempDir(), "f")
	write(t, file, "x")
	src := build(t, connectortest.Env("cfg", &connectortest.MemCheckpoints{}, nil), map[string]any{"path": file})
	if err := src.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("connect to a file: %v", err)
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

// BenchmarkIngest measures how fast a Runner moves file events into a real
// Switchyard router: "scan" finds b.N files already there at start (the
// restart path); "live" has them written while watching (notifications,
// debounce), bounded by how fast the file system creates files.
func BenchmarkIngest(b *testing.B) {
	b.Run("scan", func(b *testing.B) { benchIngest(b, true) })
	b.Run("live", func(b *testing.B) { benchIngest(b, false) })
}

func writeFiles(b *testing.B, dir string) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += 4 {
				write(b, filepath.Join(dir, fmt.Sprintf("file-%08d.json", i)), `{"n":1}`)
			}
		}()
	}
	wg.Wait()
}

func benchIngest(b *testing.B, before bool) {
	dir := b.TempDir()
	if before {
		writeFiles(b, dir)
	}
	sink := &countingSink{Sink: connectortest.RouterSink(b)}
	src := build(b, connectortest.Env("bench", &connectortest.MemCheckpoints{}, nil), map[string]any{"path": dir})
	reg := connectors.NewRegistry()
	_ = reg.Register(connectors.Spec{Kind: "under_test", Summary: "directory", New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }})
	runner, err := connectors.NewRunner(connectors.RunnerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, reg, sink,
		func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "bench", Kind: "under_test"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	runner.Start()
	if !before {
		writeFiles(b, dir)
	}
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
