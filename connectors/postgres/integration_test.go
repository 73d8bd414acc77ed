package postgres_test

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
	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	"github.com/switchyard-io/switchyard/connectors/postgres"
	"github.com/switchyard-io/switchyard/internal/dbtest"
)

// The private cluster (wal_level=logical), started on first use.
var (
	pgOnce sync.Once
	pg     *dbtest.Postgres
	pgErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		if err := pg.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop postgres:", err)
		}
	}
	os.Exit(code)
}

// cluster returns the private cluster's DSN for database postgres.
func cluster(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pg, pgErr = dbtest.StartPostgres() })
	if pgErr != nil {
		t.Fatalf("start a private PostgreSQL with wal_level=logical: %v", pgErr)
	}
	return pg.DSN("postgres")
}

func exec(t testing.TB, sql ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, s := range sql {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func randSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "postgres", env, fields)
}

// prepare connects once so the slot exists before anything is produced
// (changes are captured from the slot's creation).
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

func dropSlot(t testing.TB, slot string) {
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, cluster(t))
		if err != nil {
			return
		}
		defer c.Close(ctx)
		for range 50 { // the slot may still be active for a moment
			if _, err := c.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestConformance(t *testing.T) {
	run := randSuffix()
	var mu sync.Mutex
	seq := map[string]int{}
	table := func(name string) string { return "conf_" + name + "_" + run }
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, env connectors.Env) connectors.Source {
			tbl := table(env.Name)
			exec(t, "CREATE TABLE IF NOT EXISTS "+tbl+" (id serial PRIMARY KEY, n int, note text)")
			slot := "c_" + env.Name + "_" + run
			src := build(t, env, map[string]any{"dsn": cluster(t), "slot": slot, "publication": "p_" + env.Name + "_" + run,
				"tables": []any{"public." + tbl}, "status_interval": "1s"})
			dropSlot(t, slot)
			prepare(t, src)
			return build(t, env, map[string]any{"dsn": cluster(t), "slot": slot, "publication": "p_" + env.Name + "_" + run,
				"tables": []any{"public." + tbl}, "status_interval": "1s"})
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
	spec, _ := connectors.Default.Lookup("postgres")
	cases := map[string]struct {
		fields map[string]any
		want   string
	}{
		"missing dsn":         {map[string]any{}, "fields.dsn: required"},
		"bad dsn":             {map[string]any{"dsn": "postgres://u:secretpw@host:notaport/db"}, "fields.dsn: not a valid"},
		"bad slot":            {map[string]any{"dsn": "postgres://h/db", "slot": "Bad-Slot"}, "fields.slot"},
		"long slot":           {map[string]any{"dsn": "postgres://h/db", "slot": strings.Repeat("a", 64)}, "fields.slot"},
		"bad publication":     {map[string]any{"dsn": "postgres://h/db", "publication": "x y"}, "fields.publication"},
		"bad table":           {map[string]any{"dsn": "postgres://h/db", "tables": []any{"public."}}, "fields.tables[0]"},
		"bad exclude":         {map[string]any{"dsn": "postgres://h/db", "exclude_tables": []any{"a.b.c"}}, "fields.exclude_tables[0]"},
		"not a list":          {map[string]any{"dsn": "postgres://h/db", "tables": "public.t"}, "fields.tables"},
		"bad interval":        {map[string]any{"dsn": "postgres://h/db", "status_interval": "soon"}, "fields.status_interval"},
		"negative interval":   {map[string]any{"dsn": "postgres://h/db", "status_interval": "-1s"}, "fields.status_interval: must be positive"},
		"unknown field":       {map[string]any{"dsn": "postgres://h/db", "slots": "x"}, "fields.slots: unknown field"},
		"interval not string": {map[string]any{"dsn": "postgres://h/db", "status_interval": true}, "fields.status_interval"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := spec.Build("fields", tc.fields)
			if err == nil {
				_, err = spec.New(connectors.Env{Name: "src", Logger: quiet()}, cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	src := build(t, connectors.Env{Name: "Orders-EU", Logger: quiet()}, map[string]any{"dsn": "postgres://u@db.example:5433/shop"}).(*postgres.Source)
	if src.Slot() != "switchyard_orders_eu" || src.Publication() != "switchyard_orders_eu" {
		t.Fatalf("slot %q publication %q", src.Slot(), src.Publication())
	}
}

// collect runs src under a runner into a recording sink.
func collect(t *testing.T, src connectors.Source) (*connectortest.Sink, func()) {
	t.Helper()
	sink := &connectortest.Sink{}
	reg := connectors.NewRegistry()
	if err := reg.Register(connectors.Spec{Kind: "pg", Summary: "under test",
		New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }}); err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRunner(connectors.RunnerConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: quiet()},
		reg, sink, func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "pg", Kind: "pg"}})
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

func data(t *testing.T, ev *pb.CloudEvent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.GetTextData()), &m); err != nil {
		t.Fatalf("event data %q: %v", ev.GetTextData(), err)
	}
	return m
}

func TestRowEvents(t *testing.T) {
	run := randSuffix()
	tbl, skip := "types_"+run, "skipped_"+run
	exec(t,
		"CREATE TABLE "+tbl+` (id int PRIMARY KEY, b bool, i2 smallint, i8 bigint, f8 float8, f4 real, num numeric(20,5), nnan numeric,
			t text, vc varchar(10), j json, jb jsonb, by bytea, u uuid, ts timestamp, tz timestamptz, d date, tm time,
			iv interval, arr int[], tarr text[], inet inet, big text)`,
		"ALTER TABLE "+tbl+" REPLICA IDENTITY FULL",
		"CREATE TABLE "+skip+" (id int PRIMARY KEY)")
	slot := "rows_" + run
	dropSlot(t, slot)
	fields := map[string]any{"dsn": cluster(t), "slot": slot, "exclude_tables": []any{"public." + skip}}
	env := connectors.Env{Name: "rows-" + run, Logger: quiet()}
	prepare(t, build(t, env, fields)) // FOR ALL TABLES
	exec(t,
		"INSERT INTO "+tbl+` VALUES (1, true, -3, 9007199254740993, 1.5, 'NaN', 12345678901234.56789, 'NaN',
			'héllo "q"', 'v', '{"a":[1,2]}', '{"b": null}', '\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
			'2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.5+02', '2024-02-29', '04:05:06', '1 day 2 hours',
			'{1,NULL,3}', '{"a b",c}', '10.0.0.1/8', repeat('x', 10000))`,
		"INSERT INTO "+skip+" VALUES (1)",
		"UPDATE "+tbl+" SET t = 'bye' WHERE id = 1",
		"DELETE FROM "+tbl+" WHERE id = 1",
		"TRUNCATE "+tbl)
	sink, stop := collect(t, build(t, env, fields))
	evs := waitFor(t, sink, 4)
	stop()
	types := []string{"inserted", "updated", "deleted", "truncated"}
	for i, ev := range evs[:4] {
		if err := cloudevent.Validate(ev); err != nil {
			t.Fatalf("invalid event: %v", err)
		}
		if ev.GetType() != "com.switchyard.postgres.row."+types[i] {
			t.Errorf("event %d type %q", i, ev.GetType())
		}
		if s := ev.GetAttributes()["subject"].GetCeString(); s != "public."+tbl {
			t.Errorf("event %d subject %q", i, s)
		}
		if !strings.HasPrefix(ev.GetId(), slot+":") || strings.Count(ev.GetId(), ":") != 2 {
			t.Errorf("event %d id %q", i, ev.GetId())
		}
		if !strings.HasPrefix(ev.GetSource(), "postgres://127.0.0.1:") || !strings.HasSuffix(ev.GetSource(), "/postgres") {
			t.Errorf("source %q", ev.GetSource())
		}
	}
	if len(evs) != 4 {
		t.Errorf("got %d events (the excluded table leaked?)", len(evs))
	}
	ins := data(t, evs[0])
	row := ins["new"].(map[string]any)
	want := map[string]string{
		"b": "true", "i2": "-3", "i8": "9007199254740993", "f8": "1.5", "f4": `"NaN"`, "num": "12345678901234.56789", "nnan": `"NaN"`,
		"t": `"héllo \"q\""`, "vc": `"v"`, "j": `{"a":[1,2]}`, "jb": `{"b":null}`, "by": `"AP8="`,
		"u": `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`, "ts": `"2024-02-29T13:14:15.123456"`, "tz": `"2024-02-29T11:14:15.5Z"`,
		"d": `"2024-02-29"`, "tm": `"04:05:06"`, "iv": `"1 day 02:00:00"`, "arr": "[1,null,3]", "tarr": `["a b","c"]`, "inet": `"10.0.0.1/8"`,
	}
	var env2 struct {
		New map[string]json.RawMessage `json:"new"`
	}
	if err := json.Unmarshal([]byte(evs[0].GetTextData()), &env2); err != nil {
		t.Fatal(err)
	}
	raw := env2.New
	for col, w := range want {
		if got := string(raw[col]); got != w {
			t.Errorf("column %s: got %s, want %s", col, got, w)
		}
	}
	if ins["op"] != "insert" || ins["schema"] != "public" || ins["table"] != tbl || ins["lsn"] == "" || ins["commit_lsn"] == "" {
		t.Errorf("insert data %v", ins)
	}
	if len(row) != 23 {
		t.Errorf("insert has %d columns", len(row))
	}
	upd := data(t, evs[1])
	if upd["old"].(map[string]any)["t"] != `héllo "q"` || upd["new"].(map[string]any)["t"] != "bye" {
		t.Errorf("update data %v", upd)
	}
	// The unchanged TOASTed column comes from the old row (REPLICA IDENTITY FULL).
	if big, _ := upd["new"].(map[string]any)["big"].(string); len(big) != 10000 {
		t.Errorf("update lost the TOASTed column: %d bytes", len(big))
	}
	del := data(t, evs[2])
	if del["old"].(map[string]any)["id"] != float64(1) || del["new"] != nil {
		t.Errorf("delete data %v", del)
	}
	if tr := data(t, evs[3]); tr["op"] != "truncate" {
		t.Errorf("truncate data %v", tr)
	}
}

func TestKeyOnlyOldAndUnchangedToast(t *testing.T) {
	run := randSuffix()
	tbl := "keys_" + run
	exec(t, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, v text, big text)")
	slot := "keys_" + run
	dropSlot(t, slot)
	fields := map[string]any{"dsn": cluster(t), "slot": slot, "publication": "pk_" + run, "tables": []any{tbl}}
	env := connectors.Env{Name: "keys", Logger: quiet()}
	prepare(t, build(t, env, fields))
	exec(t, "INSERT INTO "+tbl+" VALUES (1, 'a', (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 1000)))",
		"UPDATE "+tbl+" SET v = 'b' WHERE id = 1",
		"UPDATE "+tbl+" SET id = 2 WHERE id = 1",
		"DELETE FROM "+tbl+" WHERE id = 2")
	sink, stop := collect(t, build(t, env, fields))
	evs := waitFor(t, sink, 4)
	stop()
	upd := data(t, evs[1])
	if upd["old"] != nil {
		t.Errorf("an update keeping the key has no old row by default: %v", upd["old"])
	}
	if u := upd["unchanged_toast"]; fmt.Sprint(u) != "[big]" {
		t.Errorf("unchanged_toast %v", u)
	}
	if _, ok := upd["new"].(map[string]any)["big"]; ok {
		t.Errorf("the unchanged TOASTed value should be left out")
	}
	key := data(t, evs[2])
	if fmt.Sprint(key["old"]) != "map[id:1]" {
		t.Errorf("key update old %v, want the key only", key["old"])
	}
	if del := data(t, evs[3]); fmt.Sprint(del["old"]) != "map[id:2]" {
		t.Errorf("delete old %v, want the key only", del["old"])
	}
}

// slotLSN is the slot's confirmed flush position.
func slotLSN(t *testing.T, slot string) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var lsn string
	if err := c.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

func lsnLess(t *testing.T, a, b string) bool {
	t.Helper()
	var ah, al, bh, bl uint64
	fmt.Sscanf(a, "%X/%X", &ah, &al)
	fmt.Sscanf(b, "%X/%X", &bh, &bl)
	return ah<<32|al < bh<<32|bl
}

// A transaction is confirmed to PostgreSQL only once all its events are
// acknowledged; until then a new connection gets all of them again.
func TestConfirmsOnlyFullyAckedTransactions(t *testing.T) {
	run := randSuffix()
	tbl := "acks_" + run
	exec(t, "CREATE TABLE "+tbl+" (id int PRIMARY KEY)")
	slot := "acks_" + run
	dropSlot(t, slot)
	fields := map[string]any{"dsn": cluster(t), "slot": slot, "publication": "pa_" + run, "tables": []any{tbl}, "status_interval": "100ms"}
	env := connectors.Env{Name: "acks", Logger: quiet()}
	src := build(t, env, fields)
	prepare(t, src)
	before := slotLSN(t, slot)
	exec(t, "BEGIN; INSERT INTO "+tbl+" VALUES (1), (2), (3); COMMIT")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
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
	time.Sleep(400 * time.Millisecond) // several status intervals
	if got := slotLSN(t, slot); got != before {
		t.Fatalf("the slot moved from %s to %s with a transaction partly acknowledged", before, got)
	}
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Again, with the same ids; this time all acknowledged.
	src = build(t, env, fields)
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
	deadline := time.Now().Add(5 * time.Second)
	for !lsnLess(t, before, slotLSN(t, slot)) {
		if time.Now().After(deadline) {
			t.Fatalf("the slot did not advance past %s once everything was acknowledged", before)
		}
		time.Sleep(50 * time.Millisecond)
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
	_ = src.Close(ctx)
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

// BenchmarkIngest measures rows/s from PostgreSQL into Switchyard (real
// Redis): b.N rows are inserted (100 per transaction), then a runner drains
// the slot into a router.
func BenchmarkIngest(b *testing.B) {
	run := randSuffix()
	tbl := "bench_" + run
	exec(b, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, name text, amount numeric(10,2), at timestamptz DEFAULT now())")
	slot := "bench_" + run
	dropSlot(b, slot)
	fields := map[string]any{"dsn": cluster(b), "slot": slot, "publication": "pb_" + run, "tables": []any{tbl}}
	env := connectors.Env{Name: "bench", Logger: quiet()}
	prepare(b, build(b, env, fields))
	for i := 0; i < b.N; i += 100 {
		exec(b, fmt.Sprintf("INSERT INTO %s (id, name, amount) SELECT g, 'customer ' || g, g * 1.25 FROM generate_series(%d, %d) g", tbl, i, min(i+100, b.N)-1))
	}
	sink := &countingSink{inner: connectortest.RouterSink(b)}
	src := build(b, env, fields)
	reg := connectors.NewRegistry()
	_ = reg.Register(connectors.Spec{Kind: "pg", Summary: "bench", New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }})
	r, err := connectors.NewRunner(connectors.RunnerConfig{Logger: quiet()}, reg, sink,
		func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "bench", Kind: "pg"}})
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

// TestSlotInUseIsReported: a second source on a slot another connection
// reads (a second Switchyard instance with the same source) fails to
// connect saying so, rather than waiting silently; once the slot is free
// it connects.
func TestSlotInUseIsReported(t *testing.T) {
	run := randSuffix()
	slot := "busy_" + run
	dropSlot(t, slot)
	fields := map[string]any{"dsn": cluster(t), "slot": slot, "publication": "pb_" + run}
	first := build(t, connectors.Env{Name: "first", Logger: quiet()}, fields)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := first.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	second := build(t, connectors.Env{Name: "second", Logger: quiet()}, fields)
	err := second.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "replication slot in use by another connection") ||
		!strings.Contains(err.Error(), slot) || !strings.Contains(err.Error(), "another Switchyard instance") {
		t.Fatalf("second connect: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the second connect waited for its whole context")
	}
	_ = second.Close(ctx)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.Connect(ctx); err != nil {
		t.Fatalf("connect once the slot is free: %v", err)
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
