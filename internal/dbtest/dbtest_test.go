package dbtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgresAndMariaDB(t *testing.T) {
	pg, err := StartPostgres()
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	c, err := pgx.Connect(context.Background(), pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var level string
	if err := c.QueryRow(context.Background(), "SHOW wal_level").Scan(&level); err != nil || level != "logical" {
		t.Fatalf("wal_level %q, %v", level, err)
	}
	c.Close(context.Background())

	m, err := StartMariaDB()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if err := m.Exec("test", "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
}
