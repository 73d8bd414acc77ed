package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/dbtest"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestMySQLSourceCrashLosesNothing runs a mysql source in `switchyard serve`
// against a private MariaDB with the binlog on, inserts 500 rows (one
// transaction each) while it reads them, SIGKILLs the server mid-stream,
// restarts it and checks that every row's event reached the function: the
// checkpointed binlog position only covers transactions whose events were
// durable, so the restarted source reads the rest again.
func TestMySQLSourceCrashLosesNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	db, err := dbtest.StartMariaDB()
	require.NoError(t, err, "a private MariaDB with the binlog on")
	t.Cleanup(func() { _ = db.Stop() })
	require.NoError(t, db.Exec("test", "CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(50), amount DECIMAL(10,2))"))
	// Start where the binlog is now, so every row below is read whenever
	// the source first connects.
	conn, err := client.Connect(db.Addr(), dbtest.MariaDBUser, dbtest.MariaDBPassword, "")
	require.NoError(t, err)
	res, err := conn.Execute("SHOW MASTER STATUS")
	require.NoError(t, err)
	file, _ := res.GetString(0, 0)
	pos, _ := res.GetUint(0, 1)
	_ = conn.Close()

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: mycdc
    kind: mysql
    fields:
      addr: %s
      user: %s
      password: "%s"
      tables: [test.orders]
      start_position: "%s:%d"
`, db.Addr(), dbtest.MariaDBUser, dbtest.MariaDBPassword, file, pos)), 0o600))
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: mysql-crash
filter: {attributes: {type: com.switchyard.mysql.row.inserted, subject: test.orders}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))

	const total = 500
	inserted := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 5 {
			stmts := make([]string, 5)
			for j := range stmts {
				stmts[j] = fmt.Sprintf("INSERT INTO orders VALUES (%d, 'customer %d', %d.50)", i+j, i+j, i+j)
			}
			if err := db.Exec("test", stmts...); err != nil {
				inserted <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		inserted <- nil
	}()
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.kill()
	atKill := c.unique()
	require.NoError(t, <-inserted)
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")

	b := startServe(t, args...)
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d rows delivered after the restart (have %d)", total, c.unique())
	t.Logf("mysql crash test: %d rows inserted, %d delivered before SIGKILL, %d delivered in all, %d duplicates",
		total, atKill, c.unique(), c.duplicates())
	b.stop(t)
}
