package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/internal/secrets"
)

// secretRefresh is how long a resolved secret is used before it is looked
// up again (a rotated file takes effect within it); secretRetry, how soon a
// secret that could not be resolved is looked up again.
const (
	secretRefresh = 10 * time.Second
	secretRetry   = time.Second
)

// secretCache keeps a named secret and what attempts derive from it, so
// that an attempt reads a pointer instead of a file or the environment.
type secretCache struct {
	name       string
	res        secrets.Resolver
	ttl        time.Duration // secretRefresh; tests shorten it
	cur        atomic.Pointer[secretState]
	refreshing atomic.Bool
}

// secretState is a secret as resolved at one time.
type secretState struct {
	raw    string
	bearer string   // "Bearer <raw>"
	header []string // {bearer}, shared by every HTTP request
	key    []byte   // Standard Webhooks signing key; nil with keyErr
	keyErr error
	err    error // resolution failed and no value was ever had
	next   time.Time
}

// secretLocked returns the cache of secret name, resolving it on first
// use. Called with t.mu held.
func (t *Targets) secretLocked(name string) *secretCache {
	if s, ok := t.secrets[name]; ok {
		return s
	}
	s := &secretCache{name: name, res: t.out.Secrets, ttl: t.secretTTL}
	s.cur.Store(s.resolve(time.Now(), nil))
	t.secrets[name] = s
	return s
}

// current returns the state in use.
func (s *secretCache) current() *secretState { return s.cur.Load() }

// get returns the state to use at now, refreshing it when due (one caller
// refreshes; the others go on with the state in use).
func (s *secretCache) get(now time.Time) *secretState {
	st := s.cur.Load()
	if now.Before(st.next) || !s.refreshing.CompareAndSwap(false, true) {
		return st
	}
	defer s.refreshing.Store(false)
	st = s.resolve(now, st)
	s.cur.Store(st)
	return st
}

// resolve looks the secret up. A failure keeps the previous value in use
// (a file being replaced, a directory remounting), if there was one.
func (s *secretCache) resolve(now time.Time, prev *secretState) *secretState {
	var v []byte
	err := errors.New("no secret resolver is configured on this server")
	if s.res != nil {
		v, err = s.res.Lookup(s.name)
	}
	if err != nil {
		if prev != nil && prev.err == nil {
			keep := *prev
			keep.next = now.Add(secretRetry)
			return &keep
		}
		return &secretState{err: fmt.Errorf("secret %s: %w", s.name, err), next: now.Add(secretRetry)}
	}
	st := &secretState{raw: string(v), bearer: "Bearer " + string(v), next: now.Add(s.ttl)}
	st.header = []string{st.bearer}
	st.key, st.keyErr = webhookKey(string(v))
	if st.keyErr != nil {
		st.keyErr = fmt.Errorf("secret %s: %w", s.name, st.keyErr)
	}
	return st
}

// scrub replaces the secret in msg.
func (s *secretCache) scrub(msg string) string {
	st := s.cur.Load()
	if st == nil || len(st.raw) < 4 {
		return msg
	}
	return strings.ReplaceAll(msg, st.raw, redaction)
}

// webhookKey decodes a Standard Webhooks secret: "whsec_" and the key in
// base64, 24 to 64 bytes as the specification recommends.
func webhookKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New(`a signing secret is "whsec_" followed by base64, as Standard Webhooks libraries take it`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("the part after whsec_ is not base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("the key is %d bytes; Standard Webhooks keys are 24 to 64 bytes", len(key))
	}
	return key, nil
}

// authorize adds the attempt's credentials to an HTTP request: the bearer
// token, and the Standard Webhooks signature of body (prepare checked that
// both are usable). Without credentials it costs two nil checks.
func (p *prepared) authorize(req *http.Request, a *Attempt, body []byte) {
	if p.bearer != nil {
		req.Header["Authorization"] = p.bearer.current().header
	}
	if p.signer == nil {
		return
	}
	st := p.signer.current()
	id := webhookID(a.Trigger, a.Event)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header["Webhook-Id"] = []string{id}
	req.Header["Webhook-Timestamp"] = []string{ts}
	req.Header["Webhook-Signature"] = []string{"v1," + webhookSignature(st.key, id, ts, body)}
}

// webhookSignature is the Standard Webhooks v1 signature: base64 of the
// HMAC-SHA256 of "id.timestamp.body".
func webhookSignature(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
