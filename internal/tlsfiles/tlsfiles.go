package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is how often, at most, files are looked at again.
const DefaultCheckInterval = time.Second

// MaxFileBytes bounds a certificate, key or CA file.
const MaxFileBytes = 1 << 20

// Option configures a Reloader or a CAPool.
type Option func(*watch)

// WithCheckInterval sets how often, at most, the files are looked at again
// (DefaultCheckInterval by default; tests use less).
func WithCheckInterval(d time.Duration) Option {
	return func(w *watch) {
		if d > 0 {
			w.interval = d
		}
	}
}

// watch notices changes to a set of files, checking at most once per
// interval, and installs their new contents through load. It compares
// contents rather than modification times: an in-place rewrite of a file
// of the same size within one tick of the file system's clock would leave
// both the size and the time unchanged.
type watch struct {
	files    []string
	interval time.Duration
	load     func(contents [][]byte) error // parses and installs

	next atomic.Int64 // unix nanoseconds of the next check
	mu   sync.Mutex   // one check at a time
	last [][]byte     // contents in service
	err  atomic.Pointer[error]
}

func newWatch(load func([][]byte) error, opts []Option, files ...string) (*watch, error) {
	w := &watch{files: files, interval: DefaultCheckInterval, load: load}
	for _, o := range opts {
		o(w)
	}
	contents, err := w.read()
	if err != nil {
		return nil, err
	}
	if err := load(contents); err != nil {
		return nil, err
	}
	w.last = contents
	w.next.Store(time.Now().Add(w.interval).UnixNano())
	return w, nil
}

func (w *watch) read() ([][]byte, error) {
	out := make([][]byte, len(w.files))
	for i, f := range w.files {
		b, err := readFile(f)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// maybeReload checks the files if the interval passed; only one caller
// checks, the others go on with what is loaded.
func (w *watch) maybeReload() {
	now := time.Now().UnixNano()
	next := w.next.Load()
	if now < next || !w.next.CompareAndSwap(next, now+int64(w.interval)) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	contents, err := w.read()
	if err != nil {
		w.fail(err)
		return
	}
	changed := false
	for i, b := range contents {
		if !bytes.Equal(b, w.last[i]) {
			changed = true
		}
	}
	if !changed {
		w.err.Store(nil) // back to the files in service
		return
	}
	if err := w.load(contents); err != nil {
		w.fail(err) // the next check reads the files again
		return
	}
	w.last = contents
	w.err.Store(nil)
}

func (w *watch) fail(err error) { w.err.Store(&err) }

func (w *watch) lastErr() error {
	if p := w.err.Load(); p != nil {
		return *p
	}
	return nil
}

// readFile reads a file of at most MaxFileBytes.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, MaxFileBytes)
	}
	return b, nil
}

// Reloader serves a certificate and key pair from files, reloading them
// when they change (see the package documentation). Safe for concurrent
// use.
type Reloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
	w                 *watch
}

// NewReloader loads the PEM certificate chain in certFile and its private
// key in keyFile.
func NewReloader(certFile, keyFile string, opts ...Option) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	w, err := newWatch(r.load, opts, certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s, key %s: %w", certFile, keyFile, err)
	}
	r.w = w
	return r, nil
}

func (r *Reloader) load(files [][]byte) error {
	c, err := tls.X509KeyPair(files[0], files[1])
	if err != nil {
		return err
	}
	r.cert.Store(&c)
	return nil
}

// Certificate returns the current certificate.
func (r *Reloader) Certificate() *tls.Certificate {
	r.w.maybeReload()
	return r.cert.Load()
}

// GetCertificate fits tls.Config.GetCertificate (servers).
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// GetClientCertificate fits tls.Config.GetClientCertificate (clients).
// It presents the certificate whatever CAs the server asks for: the
// server decides whether it trusts it.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// Err returns why the latest change of the files could not be loaded, or
// nil when the files in service are the latest. Like a use, it looks at
// the files when the check interval has passed.
func (r *Reloader) Err() error {
	r.w.maybeReload()
	return r.w.lastErr()
}

// CAPool serves a pool of CA certificates from a PEM bundle file,
// reloading it when it changes. Safe for concurrent use.
type CAPool struct {
	file string
	cur  atomic.Pointer[caSet]
	w    *watch
}

// caSet is one version of a bundle: its pool, and its certificates.
type caSet struct {
	pool  *x509.CertPool
	certs []*x509.Certificate
}

// NewCAPool loads the PEM CA certificates in file; a file without any
// certificate is an error.
func NewCAPool(file string, opts ...Option) (*CAPool, error) {
	p := &CAPool{file: file}
	w, err := newWatch(p.load, opts, file)
	if err != nil {
		return nil, fmt.Errorf("CA bundle %s: %w", file, err)
	}
	p.w = w
	return p, nil
}

func (p *CAPool) load(files [][]byte) error {
	b := files[0]
	set := &caSet{pool: x509.NewCertPool()}
	n := 0
	for len(b) > 0 {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		set.pool.AddCert(c)
		set.certs = append(set.certs, c)
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate found")
	}
	p.cur.Store(set)
	return nil
}

// Pool returns the current pool. Do not modify it.
func (p *CAPool) Pool() *x509.CertPool {
	p.w.maybeReload()
	return p.cur.Load().pool
}

// Certificates returns the current bundle's certificates, in file order
// (to tell whether a verified chain ends at one of them). Do not modify
// them.
func (p *CAPool) Certificates() []*x509.Certificate {
	p.w.maybeReload()
	return p.cur.Load().certs
}

// Err returns why the latest change of the file could not be loaded, or
// nil. Like a use, it looks at the file when the check interval has passed.
func (p *CAPool) Err() error {
	p.w.maybeReload()
	return p.w.lastErr()
}
