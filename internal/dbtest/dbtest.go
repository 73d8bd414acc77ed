// Package dbtest starts private database servers for tests that need
// features the machine's shared servers do not have: a PostgreSQL cluster
// with wal_level=logical (for logical replication) and a MariaDB server with
// the binary log in ROW format and full row metadata (for binlog
// replication). Each server runs in its own temporary directory on a free
// loopback port, is started once per test binary (TestMain) and is stopped
// by its process id. Started as root, the servers run as the postgres and
// mysql OS users, as those servers require.
package dbtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresBin is where the PostgreSQL server binaries are looked up
// (POSTGRES_BIN overrides it).
func PostgresBin() string {
	if d := os.Getenv("POSTGRES_BIN"); d != "" {
		return d
	}
	return "/usr/lib/postgresql/15/bin"
}

// server is one database process.
type server struct {
	cmd  *exec.Cmd
	dir  string
	log  string
	done chan struct{}
}

// stop signals the process by its pid, waits up to 15s (then kills it) and
// removes its directory.
func (s *server) stop(sig syscall.Signal) error {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return os.RemoveAll(s.dir)
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *server) logs() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// credential returns the process credential of the OS user name when
// running as root (servers refuse to run as root), else nil (run as is).
func credential(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("OS user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// tempDir makes a private directory owned by cred's user.
func tempDir(pattern string, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

func command(cred *syscall.Credential, logFile *os.File, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	// The server dies with the test binary even if it crashes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

func (s *server) start(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	return nil
}

// Postgres is a private PostgreSQL cluster with logical replication.
type Postgres struct {
	srv  *server
	Port int
}

// StartPostgres initialises a cluster in a temporary directory and starts
// it with wal_level=logical, trust authentication for the postgres user on
// 127.0.0.1 and a free port; it returns once the server accepts
// connections.
func StartPostgres() (*Postgres, error) {
	cred, err := credential("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("sy-pg-", cred)
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, log: filepath.Join(dir, "server.log")}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	if cred != nil {
		_ = logFile.Chown(int(cred.Uid), int(cred.Gid))
	}
	data := filepath.Join(dir, "data")
	initdb := command(cred, logFile, filepath.Join(PostgresBin(), "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	if err := initdb.Run(); err != nil {
		out := s.logs()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := command(cred, logFile, filepath.Join(PostgresBin(), "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "wal_level=logical",
		"-c", "max_replication_slots=40", "-c", "max_wal_senders=40", "-c", "max_connections=100",
		"-c", "shared_buffers=32MB", "-c", "fsync=off", "-c", "full_page_writes=off")
	if err := s.start(cmd); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p := &Postgres{srv: s, Port: port}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgconn.Connect(ctx, p.DSN("postgres"))
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			return p, nil
		}
		if s.exited() || time.Now().After(deadline) {
			out := s.logs()
			_ = s.stop(syscall.SIGINT)
			return nil, fmt.Errorf("postgres did not start: %w\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DSN is a connection string for database db as the postgres superuser.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// Exec runs statements in database db as the postgres superuser.
func (p *Postgres) Exec(db string, stmts ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.DSN(db))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%.80s: %w", s, err)
		}
	}
	return nil
}

// Stop shuts the cluster down (fast shutdown, SIGINT to its pid) and
// removes its directory.
func (p *Postgres) Stop() error {
	if p == nil {
		return nil
	}
	return p.srv.stop(syscall.SIGINT)
}

// MariaDB is a private MariaDB server with the binary log on (ROW format,
// full row metadata).
type MariaDB struct {
	srv  *server
	Port int
}

// StartMariaDB installs a data directory in a temporary directory and starts
// mariadbd on a free loopback port with log_bin, binlog_format=ROW and
// binlog_row_metadata=FULL; root has an empty password over TCP. A database
// named test is created. It returns once the server accepts connections.
func StartMariaDB() (*MariaDB, error) {
	cred, err := credential("mysql")
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("sy-maria-", cred)
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, log: filepath.Join(dir, "server.log")}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	if cred != nil {
		_ = logFile.Chown(int(cred.Uid), int(cred.Gid))
	}
	data := filepath.Join(dir, "data")
	osUser := "mysql"
	if cred == nil {
		u, _ := user.Current()
		osUser = u.Username
	}
	install := command(nil, logFile, "mariadb-install-db", "--no-defaults", "--user="+osUser, "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if err := install.Run(); err != nil {
		out := s.logs()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := command(nil, logFile, "mariadbd", "--no-defaults", "--user="+osUser, "--datadir="+data,
		"--port="+strconv.Itoa(port), "--socket="+filepath.Join(dir, "sock"), "--bind-address=127.0.0.1",
		"--pid-file="+filepath.Join(dir, "mariadbd.pid"), "--log-error="+filepath.Join(dir, "error.log"),
		"--log-bin="+filepath.Join(dir, "binlog"), "--binlog-format=ROW", "--binlog-row-metadata=FULL", "--server-id=1",
		"--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0",
		"--max-connections=200", "--skip-name-resolve=0")
	if err := s.start(cmd); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	m := &MariaDB{srv: s, Port: port}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := client.ConnectWithTimeout(m.Addr(), "root", "", "", 2*time.Second)
		if err == nil {
			_, err = c.Execute("CREATE DATABASE IF NOT EXISTS test")
			_ = c.Close()
			if err == nil {
				return m, nil
			}
		}
		if s.exited() || time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			out := s.logs() + string(b)
			_ = s.stop(syscall.SIGTERM)
			return nil, fmt.Errorf("mariadbd did not start: %w\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Addr is the server's host:port.
func (m *MariaDB) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)) }

// User and Password are the account tests connect with.
const (
	MariaDBUser     = "root"
	MariaDBPassword = ""
)

// Stop shuts the server down (SIGTERM to its pid) and removes its
// directory.
func (m *MariaDB) Stop() error {
	if m == nil {
		return nil
	}
	return m.srv.stop(syscall.SIGTERM)
}

// Exec runs statements on the server as root (in database db when not "").
func (m *MariaDB) Exec(db string, stmts ...string) error {
	c, err := client.ConnectWithTimeout(m.Addr(), MariaDBUser, MariaDBPassword, db, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	var errs []error
	for _, s := range stmts {
		if _, err := c.Execute(s); err != nil {
			errs = append(errs, fmt.Errorf("%.80s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}
