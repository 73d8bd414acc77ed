package function

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of WebhookVerifier.
const (
	// DefaultWebhookTolerance is how far a webhook-timestamp may be from
	// the receiver's clock, either way, as Standard Webhooks recommends.
	DefaultWebhookTolerance = 5 * time.Minute
	// DefaultWebhookMaxBody bounds the body a WebhookVerifier reads.
	DefaultWebhookMaxBody = 16 << 20
)

// Errors of WebhookVerifier.Verify. Each failure wraps
// ErrWebhookUnverified.
var (
	// ErrWebhookUnverified: the request does not carry a valid signature.
	ErrWebhookUnverified = errors.New("webhook not verified")
	errWebhookHeaders    = fmt.Errorf("%w: webhook-id, webhook-timestamp and webhook-signature are required", ErrWebhookUnverified)
	errWebhookTimestamp  = fmt.Errorf("%w: webhook-timestamp is not a number of seconds", ErrWebhookUnverified)
	errWebhookStale      = fmt.Errorf("%w: webhook-timestamp is outside the tolerance", ErrWebhookUnverified)
	errWebhookSignature  = fmt.Errorf("%w: no signature matches", ErrWebhookUnverified)
)

// WebhookVerifier checks Standard Webhooks signatures
// (https://www.standardwebhooks.com), the format Switchyard signs HTTP
// deliveries in when a trigger names a target.auth.signing_secret: headers
// webhook-id, webhook-timestamp (Unix seconds) and webhook-signature (a
// space-separated list of "v1,<base64 HMAC-SHA256 of id.timestamp.body>").
// Use it as net/http middleware (Middleware) or call Verify. Safe for
// concurrent use.
//
// It does not remember ids: a receiver that must not act twice on a
// replayed request within the tolerance deduplicates on webhook-id, which
// Switchyard keeps the same across the attempts of an event (and which is
// distinct per trigger and event).
type WebhookVerifier struct {
	keys [][]byte
	// Tolerance bounds the distance between webhook-timestamp and now
	// (DefaultWebhookTolerance when zero).
	Tolerance time.Duration
	// MaxBody bounds the body Middleware reads (DefaultWebhookMaxBody when
	// zero); a longer body is answered 413.
	MaxBody int64
	// Now is the clock (time.Now when nil); tests set it.
	Now func() time.Time
}

// NewWebhookVerifier returns a verifier accepting signatures made with any
// of secrets, each in the Standard Webhooks form "whsec_" + base64 (give
// the old and the new secret while rotating).
func NewWebhookVerifier(secrets ...string) (*WebhookVerifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("function: NewWebhookVerifier needs at least one secret")
	}
	v := &WebhookVerifier{}
	for i, s := range secrets {
		b64, ok := strings.CutPrefix(s, "whsec_")
		if !ok {
			return nil, fmt.Errorf("function: webhook secret %d does not start with whsec_", i+1)
		}
		k, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(k) == 0 {
			return nil, fmt.Errorf("function: webhook secret %d is not whsec_ followed by base64", i+1)
		}
		v.keys = append(v.keys, k)
	}
	return v, nil
}

// Verify checks the signature headers of a request against its body. The
// error wraps ErrWebhookUnverified and says which check failed, never
// the expected signature.
func (v *WebhookVerifier) Verify(h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errWebhookHeaders
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errWebhookTimestamp
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultWebhookTolerance
	}
	// Compared in seconds: a timestamp far from now must not overflow a
	// time.Duration into "close".
	if d := now().Unix() - secs; d > int64(tol/time.Second) || d < -int64(tol/time.Second) {
		return errWebhookStale
	}
	for _, k := range v.keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(ts))
		m.Write([]byte{'.'})
		m.Write(body)
		want := m.Sum(nil)
		for _, s := range strings.Fields(sigs) {
			b64, ok := strings.CutPrefix(s, "v1,")
			if !ok {
				continue // another scheme (v1a: asymmetric), or garbage
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return errWebhookSignature
}

// Middleware returns next behind signature verification: a request whose
// signature does not verify is answered 401 (Switchyard dead-letters the
// event: credentials are a configuration matter), a body beyond MaxBody
// 413, and next sees the body it was sent.
func (v *WebhookVerifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := v.MaxBody
		if limit <= 0 {
			limit = DefaultWebhookMaxBody
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if err := v.Verify(r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}
