package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/dbtest"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

// mysqlCrash is the mysql source's crash test (see
// TestConnectorCrashLosesNothing) against a private MariaDB with the binlog
// on: 500 rows inserted (five transactions of one row at a time) while it
// reads them; the checkpointed binlog position only covers transactions
// whose events were durable, so the restarted source reads the rest again.
func mysqlCrash(t *testing.T) crashCase {
	testenv.Real(t)
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
	const total = 500
	return crashCase{
		prefix: testenv.PrefixT(t),
		sources: fmt.Sprintf(`
  - name: mycdc
    kind: mysql
    fields:
      addr: %s
      user: %s
      password: "%s"
      tables: [test.orders]
      start_position: "%s:%d"
`, db.Addr(), dbtest.MariaDBUser, dbtest.MariaDBPassword, file, pos),
		filter: "{attributes: {type: com.switchyard.mysql.row.inserted, subject: test.orders}}",
		total:  total,
		feed: func() <-chan error {
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
			return inserted
		},
	}
}
