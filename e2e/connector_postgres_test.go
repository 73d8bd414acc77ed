package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/dbtest"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestPostgresSourceCrashLosesNothing runs a postgres source in `switchyard
// serve` against a private cluster with wal_level=logical, inserts 500 rows
// (one transaction each) while it streams them, SIGKILLs the server
// mid-stream, restarts it and checks that every row's event reached the
// function: the slot's confirmed position only covers transactions whose
// events were durable, so PostgreSQL resends the rest.
func TestPostgresSourceCrashLosesNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	pg, err := dbtest.StartPostgres()
	require.NoError(t, err, "a private PostgreSQL with wal_level=logical")
	t.Cleanup(func() { _ = pg.Stop() })
	// The slot exists before anything is written, so every row is captured
	// (the source would create it on its first connect).
	require.NoError(t, pg.Exec("postgres",
		"CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric(10,2))",
		"SELECT pg_create_logical_replication_slot('switchyard_pgcdc', 'pgoutput')"))

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: pgcdc
    kind: postgres
    fields:
      dsn: %s
      tables: [public.orders]
      status_interval: 1s
`, pg.DSN("postgres"))), 0o600))
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: pg-crash
filter: {attributes: {type: com.switchyard.postgres.row.inserted, subject: public.orders}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))

	// Insert in the background, paced, so that the kill lands mid-stream.
	const total = 500
	inserted := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 5 {
			stmts := make([]string, 5)
			for j := range stmts {
				stmts[j] = fmt.Sprintf("INSERT INTO orders VALUES (%d, 'customer %d', %d.50)", i+j, i+j, i+j)
			}
			if err := pg.Exec("postgres", stmts...); err != nil {
				inserted <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		inserted <- nil
	}()
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.Kill()
	atKill := c.unique()
	require.NoError(t, <-inserted)
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")

	b := startServe(t, args...)
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d rows delivered after the restart (have %d)", total, c.unique())
	t.Logf("postgres crash test: %d rows inserted, %d delivered before SIGKILL, %d delivered in all, %d duplicates",
		total, atKill, c.unique(), c.duplicates())
	b.stop(t)
}
