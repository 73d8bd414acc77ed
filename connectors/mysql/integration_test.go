package mysql_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	"github.com/switchyard-io/switchyard/connectors/mysql"
	"github.com/switchyard-io/switchyard/internal/dbtest"
)

// The private MariaDB (binlog on, ROW format, full metadata), started on
// first use.
var (
	dbOnce sync.Once
	db     *dbtest.MariaDB
	dbErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if db != nil {
		if err := db.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop mariadb:", err)
		}
	}
	os.Exit(code)
}

func server(t testing.TB) *dbtest.MariaDB {
	t.Helper()
	dbOnce.Do(func() { db, dbErr = dbtest.StartMariaDB() })
	if dbErr != nil {
		t.Fatalf("start a private MariaDB with the binlog on: %v", dbErr)
	}
	return db
}

func exec(t testing.TB, stmts ...string) {
	t.Helper()
	if err := server(t).Exec("test", stmts...); err != nil {
		t.Fatal(err)
	}
}

func randSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func fields(extra map[string]any) map[string]any {
	f := map[string]any{"addr": db.Addr(), "user": dbtest.MariaDBUser, "password": dbtest.MariaDBPassword}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "mysql", env, fields)
}

// prepare connects once so the start position is saved before anything is
// produced.
func prepare(t testing.TB, src connectors.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func env(name string, cp connectors.Checkpoints) connectors.Env {
	return connectors.Env{Name: name, Logger: quiet(), Checkpoints: cp}
}

func TestConformance(t *testing.T) {
	server(t)
	run := randSuffix()
	var mu sync.Mutex
	seq := map[string]int{}
	table := func(name string) string { return "conf_" + name + "_" + run }
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, e connectors.Env) connectors.Source {
			exec(t, "CREATE TABLE IF NOT EXISTS "+table(e.Name)+" (id INT AUTO_INCREMENT PRIMARY KEY, n INT, note VARCHAR(50))")
			f := fields(map[string]any{"tables": []any{"test." + table(e.Name)}, "server_id": 100})
			prepare(t, build(t, e, f))
			return build(t, e, f)
		},
		Produce: func(t *testing.T, name string, _ *connectortest.Mux, n int) {
			mu.Lock()
			first := seq[name]
			seq[name] += n
			mu.Unlock()
			stmts := make([]string, n)
			for i := range n {
				stmts[i] = fmt.Sprintf("INSERT INTO %s (n, note) VALUES (%d, 'row %d')", table(name), first+i, first+i)
			}
			exec(t, stmts...)
		},
	})
}

func TestConfigErrors(t *testing.T) {
	spec, _ := connectors.Default.Lookup("mysql")
	base := func(extra map[string]any) map[string]any {
		f := map[string]any{"addr": "127.0.0.1:3306", "user": "cdc", "password": "secretpw"}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"missing addr":   {map[string]any{"user": "u"}, "fields.addr: required"},
		"missing user":   {map[string]any{"addr": "h:1"}, "fields.user: required"},
		"bad addr":       {base(map[string]any{"addr": "localhost"}), "fields.addr"},
		"bad port":       {base(map[string]any{"addr": "h:99999"}), "fields.addr"},
		"bad flavor":     {base(map[string]any{"flavor": "oracle"}), "fields.flavor"},
		"bad server id":  {base(map[string]any{"server_id": -5}), "fields.server_id"},
		"huge server id": {base(map[string]any{"server_id": 1 << 33}), "fields.server_id"},
		"bad table":      {base(map[string]any{"tables": []any{"nodot"}}), "fields.tables[0]"},
		"bad pattern":    {base(map[string]any{"tables": []any{"db.[a"}}), "fields.tables[0]"},
		"bad exclude":    {base(map[string]any{"exclude_tables": []any{"a.b.c"}}), "fields.exclude_tables[0]"},
		"bad start":      {base(map[string]any{"start_position": "yesterday"}), "fields.start_position"},
		"bad start pos":  {base(map[string]any{"start_position": "binlog.000001:x"}), "fields.start_position"},
		"bad gtid":       {base(map[string]any{"start_position": "gtid:zzz"}), "fields.start_position"},
		"unknown field":  {base(map[string]any{"host": "x"}), "fields.host: unknown field"},
		"wrong type":     {base(map[string]any{"server_id": "one"}), "fields.server_id"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := spec.Build("fields", tc.fields)
			if err == nil {
				_, err = spec.New(env("src", &connectortest.MemCheckpoints{}), cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
	// Good ones.
	for _, start := range []string{"", "end", "gtid", "gtid:0-1-100", "binlog.000001:4"} {
		cfg, err := spec.Build("fields", base(map[string]any{"start_position": start, "tables": []any{"shop.*"}}))
		if err == nil {
			_, err = spec.New(env("src", &connectortest.MemCheckpoints{}), cfg)
		}
		if err != nil {
			t.Errorf("start_position %q: %v", start, err)
		}
	}
}

func TestDefaultServerID(t *testing.T) {
	a := build(t, env("orders", &connectortest.MemCheckpoints{}), map[string]any{"addr": "h:3306", "user": "u"}).(*mysql.Source)
	b := build(t, env("orders", &connectortest.MemCheckpoints{}), map[string]any{"addr": "h:3306", "user": "u"}).(*mysql.Source)
	c := build(t, env("invoices", &connectortest.MemCheckpoints{}), map[string]any{"addr": "h:3306", "user": "u"}).(*mysql.Source)
	if a.ServerID() != b.ServerID() || a.ServerID() == c.ServerID() || a.ServerID() < 1_000_000_000 {
		t.Fatalf("server ids %d %d %d", a.ServerID(), b.ServerID(), c.ServerID())
	}
}

// collect runs src under a runner into a recording sink.
func collect(t *testing.T, src connectors.Source) (*connectortest.Sink, func()) {
	t.Helper()
	sink := &connectortest.Sink{}
	reg := connectors.NewRegistry()
	if err := reg.Register(connectors.Spec{Kind: "my", Summary: "under test",
		New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }}); err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRunner(connectors.RunnerConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: quiet()},
		reg, sink, func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "my", Kind: "my"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := r.Stop(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return sink, stop
}

func waitFor(t *testing.T, sink *connectortest.Sink, n int) []*pb.CloudEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs := sink.Events()
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d events, want %d", len(evs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func rawData(t *testing.T, ev *pb.CloudEvent) (map[string]any, map[string]json.RawMessage, map[string]json.RawMessage) {
	t.Helper()
	var m map[string]any
	var raw struct {
		New map[string]json.RawMessage `json:"new"`
		Old map[string]json.RawMessage `json:"old"`
	}
	if err := json.Unmarshal([]byte(ev.GetTextData()), &m); err != nil {
		t.Fatalf("data %q: %v", ev.GetTextData(), err)
	}
	_ = json.Unmarshal([]byte(ev.GetTextData()), &raw)
	return m, raw.New, raw.Old
}

const typesTable = ` (id INT PRIMARY KEY, ti TINYINT UNSIGNED, si SMALLINT, bi BIGINT UNSIGNED, neg BIGINT,
	dec1 DECIMAL(20,5), f FLOAT, d DOUBLE, vc VARCHAR(20), tx TEXT, bl BLOB, vb VARBINARY(8), js JSON,
	en ENUM('small','medium','large'), st SET('a','b','c'), dt DATE, dtm DATETIME(6), ts TIMESTAMP NULL, tm TIME, yr YEAR, bt BIT(8), nul INT)`

const typesRow = `(1, 250, -7, 18446744073709551615, -9, 123456789012345.12345, 1.5, 2.25, 'héllo "q"', 'long text',
	x'00ff', x'0102', '{"a": [1, 2]}', 'medium', 'a,c', '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15',
	'04:05:06', 2024, b'101', NULL)`

var typesWant = map[string]string{
	"id": "1", "ti": "250", "si": "-7", "bi": "18446744073709551615", "neg": "-9", "dec1": "123456789012345.12345",
	"f": "1.5", "d": "2.25", "vc": `"héllo \"q\""`, "tx": `"long text"`, "bl": `"AP8="`, "vb": `"AQI="`,
	"en": `"medium"`, "st": `"a,c"`, "dt": `"2024-02-29"`, "dtm": `"2024-02-29 13:14:15.123456"`,
	"tm": `"04:05:06"`, "yr": "2024", "bt": "5", "nul": "null",
}

func TestRowEvents(t *testing.T) {
	server(t)
	run := randSuffix()
	tbl, skip := "types_"+run, "skip_"+run
	exec(t, "CREATE TABLE "+tbl+typesTable, "CREATE TABLE "+skip+" (id INT PRIMARY KEY)")
	cp := &connectortest.MemCheckpoints{}
	f := fields(map[string]any{"tables": []any{"test.*_" + run}, "exclude_tables": []any{"test.skip_*"}})
	prepare(t, build(t, env("rows", cp), f))
	exec(t, "INSERT INTO "+tbl+" VALUES "+typesRow,
		"INSERT INTO "+skip+" VALUES (1)",
		"UPDATE "+tbl+" SET vc = 'bye', en = 'large' WHERE id = 1",
		"DELETE FROM "+tbl+" WHERE id = 1")
	sink, stop := collect(t, build(t, env("rows", cp), f))
	evs := waitFor(t, sink, 3)
	time.Sleep(200 * time.Millisecond)
	stop()
	if n := len(sink.Events()); n != 3 {
		t.Fatalf("got %d events, want 3 (the excluded table leaked?)", n)
	}
	types := []string{"inserted", "updated", "deleted"}
	for i, ev := range evs {
		if err := cloudevent.Validate(ev); err != nil {
			t.Fatalf("invalid event: %v", err)
		}
		if ev.GetType() != "com.switchyard.mysql.row."+types[i] {
			t.Errorf("event %d type %q", i, ev.GetType())
		}
		if s := ev.GetAttributes()["subject"].GetCeString(); s != "test."+tbl {
			t.Errorf("subject %q", s)
		}
		if ev.GetSource() != "mysql://"+db.Addr() {
			t.Errorf("source %q", ev.GetSource())
		}
		if !strings.HasPrefix(ev.GetId(), "binlog.") || strings.Count(ev.GetId(), ":") != 2 {
			t.Errorf("id %q", ev.GetId())
		}
		if ts := ev.GetAttributes()["time"].GetCeTimestamp().AsTime(); time.Since(ts) > time.Minute {
			t.Errorf("time %v", ts)
		}
	}
	m, newRow, _ := rawData(t, evs[0])
	if m["db"] != "test" || m["table"] != tbl || m["op"] != "insert" || m["gtid"] == nil || m["position"] == nil {
		t.Errorf("insert data %v", m)
	}
	for col, want := range typesWant {
		if got := string(newRow[col]); got != want {
			t.Errorf("column %s: got %s, want %s", col, got, want)
		}
	}
	// MariaDB's JSON is a LONGTEXT: a string.
	var js string
	if err := json.Unmarshal(newRow["js"], &js); err != nil || !json.Valid([]byte(js)) {
		t.Errorf("js column %s", newRow["js"])
	}
	if ts := string(newRow["ts"]); !strings.HasPrefix(ts, `"2024-02-29 `) {
		t.Errorf("timestamp %s", ts)
	}
	_, newRow, oldRow := rawData(t, evs[1])
	if string(oldRow["vc"]) != `"héllo \"q\""` || string(newRow["vc"]) != `"bye"` || string(newRow["en"]) != `"large"` || string(oldRow["en"]) != `"medium"` {
		t.Errorf("update old %s new %s", oldRow["vc"], newRow["vc"])
	}
	if m, newRow, oldRow := rawData(t, evs[2]); newRow != nil || string(oldRow["id"]) != "1" || m["op"] != "delete" {
		t.Errorf("delete data %v", m)
	}
}

// Without binlog_row_metadata=FULL, column names and kinds come from
// information_schema, read once per table.
func TestWithoutFullMetadata(t *testing.T) {
	server(t)
	run := randSuffix()
	tbl := "minimal_" + run
	exec(t, "CREATE TABLE "+tbl+typesTable)
	cp := &connectortest.MemCheckpoints{}
	f := fields(map[string]any{"tables": []any{"test." + tbl}})
	prepare(t, build(t, env("minimal", cp), f))
	exec(t, "SET GLOBAL binlog_row_metadata = MINIMAL")
	defer exec(t, "SET GLOBAL binlog_row_metadata = FULL")
	exec(t, "INSERT INTO "+tbl+" VALUES "+typesRow, "INSERT INTO "+tbl+" (id) VALUES (2)")
	src := build(t, env("minimal", cp), f).(*mysql.Source)
	var lookups atomic.Int32
	mysql.SetSchemaQueryHook(src, func() { lookups.Add(1) })
	sink, stop := collect(t, src)
	evs := waitFor(t, sink, 2)
	stop()
	_, newRow, _ := rawData(t, evs[0])
	for col, want := range typesWant {
		if got := string(newRow[col]); got != want {
			t.Errorf("column %s: got %s, want %s", col, got, want)
		}
	}
	if n := lookups.Load(); n != 1 {
		t.Errorf("information_schema read %d times, want once", n)
	}
}

// The position is checkpointed only past transactions whose every event
// was acknowledged; a new source resumes there and gets the same ids.
func TestCheckpointsOnlyAckedTransactions(t *testing.T) {
	server(t)
	run := randSuffix()
	tbl := "acks_" + run
	exec(t, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	cp := &connectortest.MemCheckpoints{}
	f := fields(map[string]any{"tables": []any{"test." + tbl}})
	src := build(t, env("acks", cp), f)
	prepare(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before, _ := cp.Get(ctx, "binlog_position")
	exec(t, "INSERT INTO "+tbl+" VALUES (1), (2), (3)")
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	var msgs []*connectors.Message
	for range 3 {
		m, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Event.GetId())
		msgs = append(msgs, m)
	}
	_ = msgs[0].Ack(ctx, nil)
	_ = msgs[1].Ack(ctx, nil)
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := cp.Get(ctx, "binlog_position"); string(got) != string(before) {
		t.Fatalf("the checkpoint moved from %s to %s with a transaction partly acknowledged", before, got)
	}
	src = build(t, env("acks", cp), f)
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Event.GetId() != ids[i] {
			t.Fatalf("redelivered id %q, want %q", m.Event.GetId(), ids[i])
		}
		_ = m.Ack(ctx, nil)
	}
	// A negative acknowledgement makes Read ask for a reconnect.
	exec(t, "INSERT INTO "+tbl+" VALUES (4)")
	m, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Ack(ctx, fmt.Errorf("refused"))
	if _, err := src.Read(ctx); err == nil || !strings.Contains(err.Error(), connectors.ErrNotConnected.Error()) {
		t.Fatalf("Read after a nack: %v, want ErrNotConnected", err)
	}
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := cp.Get(ctx, "binlog_position")
	if string(after) == string(before) {
		t.Fatalf("the checkpoint did not move once the transaction was acknowledged")
	}
	// Row 4 comes again.
	src = build(t, env("acks", cp), f)
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	if m, err := src.Read(ctx); err != nil || !strings.Contains(m.Event.GetTextData(), `"id":4`) {
		t.Fatalf("after the nack: %v %v", m, err)
	}
}

// In GTID mode the checkpoint holds the GTID set and the source resumes by
// it.
func TestGTIDMode(t *testing.T) {
	server(t)
	run := randSuffix()
	tbl := "gtid_" + run
	exec(t, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	cp := &connectortest.MemCheckpoints{}
	f := fields(map[string]any{"tables": []any{"test." + tbl}, "start_position": "gtid"})
	prepare(t, build(t, env("gtid", cp), f))
	exec(t, "INSERT INTO "+tbl+" VALUES (1)", "INSERT INTO "+tbl+" VALUES (2)")
	sink, stop := collect(t, build(t, env("gtid", cp), f))
	evs := waitFor(t, sink, 2)
	stop()
	saved, _ := cp.Get(context.Background(), "binlog_position")
	if !strings.Contains(string(saved), `"gtid":"0-1-`) {
		t.Fatalf("checkpoint %s has no GTID", saved)
	}
	exec(t, "INSERT INTO "+tbl+" VALUES (3)")
	sink2, stop2 := collect(t, build(t, env("gtid", cp), f))
	evs2 := waitFor(t, sink2, 1)
	stop2()
	if len(evs2) != 1 || !strings.Contains(evs2[0].GetTextData(), `"id":3`) || evs2[0].GetId() == evs[1].GetId() {
		t.Fatalf("after resuming by GTID: %v", evs2)
	}
}

// countingSink counts events the inner sink accepted.
type countingSink struct {
	inner connectors.Sink
	n     atomic.Int64
}

func (c *countingSink) Publish(ctx context.Context, evs []*pb.CloudEvent) error {
	err := c.inner.Publish(ctx, evs)
	if err == nil {
		c.n.Add(int64(len(evs)))
	}
	return err
}

// BenchmarkIngest measures rows/s from MariaDB's binlog into Switchyard
// (real Redis): b.N rows are inserted (100 per statement), then a runner
// drains the binlog into a router.
func BenchmarkIngest(b *testing.B) {
	server(b)
	run := randSuffix()
	tbl := "bench_" + run
	exec(b, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, name VARCHAR(50), amount DECIMAL(10,2), at DATETIME DEFAULT CURRENT_TIMESTAMP)")
	cp := &connectortest.MemCheckpoints{}
	f := fields(map[string]any{"tables": []any{"test." + tbl}})
	prepare(b, build(b, env("bench", cp), f))
	for i := 0; i < b.N; i += 100 {
		vals := make([]string, 0, 100)
		for j := i; j < min(i+100, b.N); j++ {
			vals = append(vals, fmt.Sprintf("(%d, 'customer %d', %d.25)", j, j, j))
		}
		exec(b, "INSERT INTO "+tbl+" (id, name, amount) VALUES "+strings.Join(vals, ","))
	}
	sink := &countingSink{inner: connectortest.RouterSink(b)}
	src := build(b, env("bench", cp), f)
	reg := connectors.NewRegistry()
	_ = reg.Register(connectors.Spec{Kind: "my", Summary: "bench", New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }})
	r, err := connectors.NewRunner(connectors.RunnerConfig{Logger: quiet()}, reg, sink,
		func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "bench", Kind: "my"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	r.Start()
	deadline := time.Now().Add(5 * time.Minute)
	for sink.n.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d events after 5 minutes", sink.n.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = r.Stop(context.Background())
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
