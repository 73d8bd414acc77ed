package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// BootstrapSubject is the subject of the bootstrap admin identity.
const BootstrapSubject = "bootstrap-admin"

// maxAdminTokenFile bounds what is read from the admin token file.
const maxAdminTokenFile = 4096

// readAdminToken reads the token from path: the file's content without
// surrounding white space.
func readAdminToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxAdminTokenFile+1))
	if err != nil {
		return "", err
	}
	if len(raw) > maxAdminTokenFile {
		return "", fmt.Errorf("%s is larger than %d bytes; it should hold one token", path, maxAdminTokenFile)
	}
	tok := strings.TrimSpace(string(raw))
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s holds more than one word; it should hold one token", path)
	}
	return tok, nil
}

// adminToken matches the bootstrap admin token. Only its SHA-256 is kept,
// and comparisons are between hashes of equal length in constant time, so
// neither the token's content nor its length leaks through timing.
type adminToken struct {
	log  *slog.Logger
	file *watchedFile // nil when the token comes from the environment

	mu   sync.Mutex
	hash [sha256.Size]byte
	have bool
}

func newAdminToken(token, path string, log *slog.Logger) (*adminToken, error) {
	a := &adminToken{log: log}
	switch {
	case token != "":
		a.set(token)
	case path != "":
		a.file = newWatchedFile(path, time.Second)
		tok, err := readAdminToken(path)
		if err != nil {
			return nil, FieldErrors{{Path: "admin_token_file", Msg: err.Error()}}
		}
		if len(tok) < MinAdminTokenLength {
			return nil, FieldErrors{{Path: "admin_token_file", Msg: fmt.Sprintf("the admin token needs at least %d characters", MinAdminTokenLength)}}
		}
		a.set(tok)
	}
	return a, nil
}

func (a *adminToken) set(tok string) {
	a.hash, a.have = sha256.Sum256([]byte(tok)), true
}

// reload reads the file again when it changed. A file that cannot be read,
// or holds too short a token, turns the bootstrap token off: deleting the
// file is how an operator retires it.
func (a *adminToken) reload() {
	if a.file == nil || !a.file.changed() {
		return
	}
	tok, err := readAdminToken(a.file.path)
	if err == nil && len(tok) < MinAdminTokenLength {
		err = fmt.Errorf("the admin token needs at least %d characters", MinAdminTokenLength)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if a.have {
			a.log.Warn("bootstrap admin token turned off: its file is unusable", "file", a.file.path, "err", err)
		}
		a.hash, a.have = [sha256.Size]byte{}, false
		return
	}
	a.set(tok)
	a.log.Info("bootstrap admin token reloaded", "file", a.file.path)
}

// match reports whether token is the bootstrap admin token.
func (a *adminToken) match(token string) bool {
	if a == nil {
		return false
	}
	a.reload()
	got := sha256.Sum256([]byte(token))
	a.mu.Lock()
	want, have := a.hash, a.have
	a.mu.Unlock()
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1 && have
}

// watchedFile notices when a file changes (its modification time, size or
// existence), looking at most once per interval and only when asked: no
// goroutine, and a Kubernetes secret swapped by symlink is noticed too,
// since Stat follows the link.
type watchedFile struct {
	path  string
	every time.Duration

	mu      sync.Mutex
	checked time.Time
	stamp   fileStamp
}

type fileStamp struct {
	exists bool
	mod    int64 // unix ns
	size   int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{exists: true, mod: fi.ModTime().UnixNano(), size: fi.Size()}
}

func newWatchedFile(path string, every time.Duration) *watchedFile {
	return &watchedFile{path: path, every: every, checked: time.Now(), stamp: stampOf(path)}
}

// changed reports whether the file changed since the last time it did (or
// since newWatchedFile).
func (w *watchedFile) changed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if now.Sub(w.checked) < w.every {
		return false
	}
	w.checked = now
	st := stampOf(w.path)
	if st == w.stamp {
		return false
	}
	w.stamp = st
	return true
}

// force makes the next changed call look at the file whatever the interval.
func (w *watchedFile) force() {
	w.mu.Lock()
	w.checked = time.Time{}
	w.mu.Unlock()
}
