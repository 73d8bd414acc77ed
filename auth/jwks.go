package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSKeys bounds the keys taken from one JWKS; providers publish a
// handful (current, next, previous).
const maxJWKSKeys = 100

// minRSABits refuses RSA keys too short to trust.
const minRSABits = 2048

// keySet is one parsed JWKS: the public keys usable for signatures.
type keySet struct {
	keys []verKey
}

type verKey struct {
	kid string
	alg string // the JWK's "alg", "" when it names none
	key crypto.PublicKey
}

// parseJWKS keeps the keys of raw that can verify one of algs: public
// asymmetric signature keys of sound size. Keys it cannot use (symmetric,
// private, encryption-only, unknown types, weak) are skipped and logged
// (when log is set); a document without any usable key is an error.
func parseJWKS(raw []byte, algs []string, log *slog.Logger) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %v", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("the JWKS holds %d keys, more than %d", len(doc.Keys), maxJWKSKeys)
	}
	skip := func(i int, kid, why string) {
		if log != nil {
			log.Warn("JWKS key skipped", "index", i, "kid", kid, "reason", why)
		}
	}
	ks := &keySet{}
	for i, kr := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(kr); err != nil {
			skip(i, "", "unsupported or malformed key: "+err.Error())
			continue
		}
		if _, symmetric := k.Key.([]byte); symmetric {
			// HMAC keys would let whoever reads the JWKS sign tokens.
			skip(i, k.KeyID, "symmetric keys are never used")
			continue
		}
		if !k.IsPublic() {
			skip(i, k.KeyID, "the JWKS holds private key material; only public keys belong there")
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			skip(i, k.KeyID, "key use is not sig")
			continue
		}
		if k.Algorithm != "" && !slices.Contains(algs, k.Algorithm) {
			skip(i, k.KeyID, "key algorithm not accepted: "+k.Algorithm)
			continue
		}
		if why := weakKey(k.Key); why != "" {
			skip(i, k.KeyID, why)
			continue
		}
		ks.keys = append(ks.keys, verKey{kid: k.KeyID, alg: k.Algorithm, key: k.Key})
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("the JWKS holds no usable signature key")
	}
	return ks, nil
}

// weakKey says why a public key is refused, or "".
func weakKey(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Sprintf("RSA key of %d bits, fewer than %d", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Sprintf("key type %T is not supported", k)
	}
	return ""
}

// fits reports whether key can verify alg: the algorithm family matches the
// key type (and curve), and the JWK, if it names an algorithm, names this
// one. go-jose checks the family too; checking here first means a token can
// never steer a key into an algorithm it was not published for.
func (k verKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pk := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pk.Curve == elliptic.P256()
		case "ES384":
			return pk.Curve == elliptic.P384()
		case "ES512":
			return pk.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// find returns the key for a token's kid and alg. A token without kid is
// verified only when exactly one key fits its algorithm.
func (ks *keySet) find(kid, alg string) (crypto.PublicKey, bool) {
	if ks == nil {
		return nil, false
	}
	var found crypto.PublicKey
	n := 0
	for _, k := range ks.keys {
		if (kid != "" && k.kid != kid) || !k.fits(alg) {
			continue
		}
		if kid != "" {
			return k.key, true
		}
		found = k.key
		n++
	}
	return found, n == 1
}

// jwksSource holds the current key set, from a URL or a file, and renews it:
// periodically (URL), when the file changes (file), and when a token names a
// key it does not know, at most once per MinRefreshInterval.
type jwksSource struct {
	cfg    JWTConfig
	log    *slog.Logger
	client *http.Client
	file   *watchedFile

	cur atomic.Pointer[keySet]
	gen atomic.Uint64 // incremented after each fetch attempt

	mu          sync.Mutex // one fetch at a time
	lastAttempt time.Time

	stop context.CancelFunc
	wg   sync.WaitGroup
}

func newJWKSSource(cfg JWTConfig, log *slog.Logger) (*jwksSource, error) {
	s := &jwksSource{cfg: cfg, log: log}
	if cfg.JWKSFile != "" {
		s.file = newWatchedFile(cfg.JWKSFile, time.Second)
		raw, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, FieldErrors{{Path: "jwt.jwks_file", Msg: err.Error()}}
		}
		ks, err := parseJWKS(raw, cfg.Algorithms, log)
		if err != nil {
			return nil, FieldErrors{{Path: "jwt.jwks_file", Msg: err.Error()}}
		}
		s.cur.Store(ks)
		s.lastAttempt = time.Now()
		return s, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pool, err := loadCertPool(cfg.CAFile)
		if err != nil {
			return nil, FieldErrors{{Path: "jwt.ca_file", Msg: err.Error()}}
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	tr.MaxResponseHeaderBytes = 64 << 10
	s.client = &http.Client{
		Transport: tr,
		Timeout:   cfg.FetchTimeout.Duration,
		// The configured URL is the JWKS; a redirect could lead anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(1)
	go s.refreshLoop(ctx)
	return s, nil
}

// close stops the refresh loop and waits for it.
func (s *jwksSource) close() {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
}

// refreshLoop fetches at once, then every RefreshInterval; after a failure
// it tries again after MinRefreshInterval, until a fetch succeeds.
func (s *jwksSource) refreshLoop(ctx context.Context) {
	defer s.wg.Done()
	wait := time.Duration(0)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.refresh(ctx, false); err != nil && ctx.Err() == nil {
			s.log.Warn("JWKS fetch failed; keeping the keys fetched before", "url", s.cfg.JWKSURL, "err", err)
			wait = s.cfg.MinRefreshInterval.Duration
		} else {
			wait = s.cfg.RefreshInterval.Duration
		}
		t.Reset(wait)
	}
}

// key returns the key that verifies a token with this kid and alg. When it
// is not known, the set is renewed first (rate-limited, shared by concurrent
// callers).
func (s *jwksSource) key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	if s.file != nil && s.file.changed() {
		_ = s.refresh(ctx, true)
	}
	if k, ok := s.cur.Load().find(kid, alg); ok {
		return k, nil
	}
	seen := s.gen.Load()
	if s.renewed(ctx, seen) {
		if k, ok := s.cur.Load().find(kid, alg); ok {
			return k, nil
		}
	}
	if kid == "" {
		return nil, unauthenticated(MethodJWT, "token names no key id (kid) and no single key fits its algorithm")
	}
	return nil, unauthenticated(MethodJWT, "token signed by an unknown key")
}

// renewed fetches the set again unless another caller did so since seen, or
// the last attempt was less than MinRefreshInterval ago. It reports whether
// a newer attempt than seen was made.
func (s *jwksSource) renewed(ctx context.Context, seen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen.Load() != seen {
		return true
	}
	if time.Since(s.lastAttempt) < s.cfg.MinRefreshInterval.Duration {
		return false
	}
	if err := s.refreshLocked(ctx); err != nil {
		s.log.Warn("JWKS refresh for an unknown key failed", "source", s.where(), "err", err)
	}
	return true
}

// refresh fetches (or reads) the set; force ignores MinRefreshInterval.
func (s *jwksSource) refresh(ctx context.Context, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !force && time.Since(s.lastAttempt) < s.cfg.MinRefreshInterval.Duration && s.cur.Load() != nil {
		return nil
	}
	return s.refreshLocked(ctx)
}

func (s *jwksSource) refreshLocked(ctx context.Context) error {
	s.lastAttempt = time.Now()
	defer s.gen.Add(1)
	var raw []byte
	var err error
	if s.file != nil {
		raw, err = readBounded(s.cfg.JWKSFile, s.cfg.MaxJWKSBytes)
	} else {
		// The fetch is detached from the request that asked for it: other
		// requests wait for the same fetch.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.FetchTimeout.Duration)
		defer cancel()
		raw, err = s.fetch(fctx)
	}
	if err != nil {
		return err
	}
	ks, err := parseJWKS(raw, s.cfg.Algorithms, s.log)
	if err != nil {
		return err
	}
	s.cur.Store(ks)
	return nil
}

func (s *jwksSource) where() string {
	if s.file != nil {
		return s.cfg.JWKSFile
	}
	return s.cfg.JWKSURL
}

func (s *jwksSource) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: status %d (redirects are not followed)", s.cfg.JWKSURL, resp.StatusCode)
	}
	if resp.ContentLength > s.cfg.MaxJWKSBytes {
		return nil, fmt.Errorf("the JWKS is %d bytes, more than %d", resp.ContentLength, s.cfg.MaxJWKSBytes)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > s.cfg.MaxJWKSBytes {
		return nil, fmt.Errorf("the JWKS is larger than %d bytes", s.cfg.MaxJWKSBytes)
	}
	return raw, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return raw, nil
}
