package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Schemes: how a request proves it comes from the holder of the secret.
const (
	schemeStandard = "standard" // Standard Webhooks (standardwebhooks.com)
	schemeGitHub   = "github"   // GitHub's X-Hub-Signature-256
	schemeStripe   = "stripe"   // Stripe's Stripe-Signature
	schemeHMAC     = "hmac"     // an HMAC of the body in a configurable header
)

// Headers the schemes read.
const (
	hdrWebhookID        = "webhook-id"
	hdrWebhookTimestamp = "webhook-timestamp"
	hdrWebhookSignature = "webhook-signature"
	hdrGitHubSignature  = "X-Hub-Signature-256"
	hdrGitHubDelivery   = "X-GitHub-Delivery"
	hdrStripeSignature  = "Stripe-Signature"
)

// Bounds on the headers read. Go's server bounds all headers of a request
// together (1 MiB by default); these keep each one to what its purpose needs,
// so a request costs little before it is refused.
const (
	// maxSignatureHeader leaves room for several signatures while a sender
	// rotates its secret.
	maxSignatureHeader = 4 << 10
	// maxIDHeader bounds the delivery id and subject headers.
	maxIDHeader = 1 << 10
	// maxTimestamp bounds a timestamp header: 19 digits hold any int64.
	maxTimestamp = 19
)

// standardSecretPrefix starts a Standard Webhooks secret; base64 follows.
const standardSecretPrefix = "whsec_"

// refusal is why a request is refused. Its detail is shown to the sender,
// so it names what is wrong with the request and never what was expected.
type refusal struct {
	status        int
	title, detail string
}

func unauthorized(title, format string, args ...any) *refusal {
	return &refusal{status: http.StatusUnauthorized, title: title, detail: fmt.Sprintf(format, args...)}
}

// verified is what a verified request proves about itself.
type verified struct {
	// id is the delivery id, when the scheme signs one ("" otherwise).
	id string
	// ts is the signed timestamp, when the scheme signs one (zero otherwise).
	ts time.Time
}

// verifier checks one request's signature. It is pure: the time is given.
type verifier interface {
	verify(h http.Header, body []byte, now time.Time) (verified, *refusal)
}

// header returns the first value of name, refusing one longer than limit.
func header(h http.Header, name string, limit int) (string, *refusal) {
	v := h.Get(name)
	if len(v) > limit {
		return "", &refusal{status: http.StatusRequestHeaderFieldsTooLarge, title: "Header too large",
			detail: fmt.Sprintf("the %s header exceeds %d bytes", name, limit)}
	}
	return v, nil
}

// required is header for a header that must be present.
func required(h http.Header, name string, limit int) (string, *refusal) {
	v, r := header(h, name, limit)
	if r == nil && v == "" {
		r = unauthorized("Missing header", "the %s header is required", name)
	}
	return v, r
}

// parseTimestamp reads Unix seconds written as a canonical decimal (no sign,
// no leading zero), the only form the signing side produces, so the bytes
// signed and the number checked cannot differ.
func parseTimestamp(s string) (int64, error) {
	if s == "" || len(s) > maxTimestamp || (s[0] == '0' && len(s) > 1) {
		return 0, errors.New("not Unix seconds")
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not Unix seconds")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// fresh refuses a timestamp further than tolerance from now, either way.
func fresh(name string, ts int64, now time.Time, tolerance time.Duration) *refusal {
	tol := int64(tolerance / time.Second)
	// ts ≤ MaxInt64 and now is a real clock: the difference cannot overflow.
	switch diff := now.Unix() - ts; {
	case diff > tol:
		return unauthorized("Stale timestamp", "the %s header is %d s old; at most %d s are accepted", name, diff, tol)
	case -diff > tol:
		return unauthorized("Timestamp in the future", "the %s header is %d s ahead of this server's clock; at most %d s are accepted", name, -diff, tol)
	}
	return nil
}

// anyEqual compares each candidate with want in constant time.
func anyEqual(candidates [][]byte, want []byte) bool {
	ok := false
	for _, c := range candidates {
		// No early exit: the time taken does not say which one matched.
		if hmac.Equal(c, want) {
			ok = true
		}
	}
	return ok
}

// standardVerifier implements Standard Webhooks' symmetric scheme (v1):
// HMAC-SHA256 over "id.timestamp.body", base64, in a space-separated list.
type standardVerifier struct {
	key       []byte
	tolerance time.Duration
}

// standardKey decodes a Standard Webhooks secret: `whsec_` + base64 of the
// key; without the prefix, the secret's own bytes are the key.
func standardKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, standardSecretPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return nil, errors.New("whsec_ must be followed by the base64 of the key")
		}
	}
	if len(key) == 0 {
		return nil, errors.New("the key after whsec_ is empty")
	}
	return key, nil
}

// parseStandardSignatures returns the v1 signatures of a webhook-signature
// header (space-separated `version,base64` entries). Entries of other
// versions (v1a, asymmetric) are skipped; an error means no v1 entry decodes.
func parseStandardSignatures(h string) ([][]byte, error) {
	var sigs [][]byte
	for _, entry := range strings.Fields(h) {
		version, b64, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return nil, errors.New("no v1,<base64> signature")
	}
	return sigs, nil
}

func (v standardVerifier) verify(h http.Header, body []byte, now time.Time) (verified, *refusal) {
	id, r := required(h, hdrWebhookID, maxIDHeader)
	if r != nil {
		return verified{}, r
	}
	tsText, r := required(h, hdrWebhookTimestamp, maxTimestamp)
	if r != nil {
		return verified{}, r
	}
	sigText, r := required(h, hdrWebhookSignature, maxSignatureHeader)
	if r != nil {
		return verified{}, r
	}
	ts, err := parseTimestamp(tsText)
	if err != nil {
		return verified{}, &refusal{status: http.StatusBadRequest, title: "Malformed header", detail: "the " + hdrWebhookTimestamp + " header is not Unix seconds"}
	}
	if r := fresh(hdrWebhookTimestamp, ts, now, v.tolerance); r != nil {
		return verified{}, r
	}
	sigs, err := parseStandardSignatures(sigText)
	if err != nil {
		return verified{}, &refusal{status: http.StatusBadRequest, title: "Malformed header", detail: "the " + hdrWebhookSignature + " header has " + err.Error()}
	}
	mac := hmac.New(sha256.New, v.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(tsText))
	mac.Write([]byte{'.'})
	mac.Write(body)
	if !anyEqual(sigs, mac.Sum(nil)) {
		return verified{}, unauthorized("Bad signature", "no signature in the %s header matches the request", hdrWebhookSignature)
	}
	return verified{id: id, ts: time.Unix(ts, 0)}, nil
}

// stripeVerifier implements Stripe's scheme: HMAC-SHA256 over
// "timestamp.body", hex, in `t=…,v1=…[,v1=…]`. The key is the secret's bytes
// as given (Stripe's whsec_ secrets are used whole, not decoded).
type stripeVerifier struct {
	key       []byte
	tolerance time.Duration
}

// parseStripeSignature reads a Stripe-Signature header: comma-separated
// `key=value` items with exactly one `t` (Unix seconds) and at least one
// `v1` (hex). Other keys (v0, future schemes) are skipped, as are v1 values
// that are not hex. It returns the timestamp as written and as a number.
func parseStripeSignature(h string) (tsText string, ts int64, sigs [][]byte, err error) {
	seenT := false
	for _, item := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return "", 0, nil, errors.New("an item is not key=value")
		}
		switch k {
		case "t":
			if seenT {
				return "", 0, nil, errors.New("t appears twice")
			}
			seenT = true
			if ts, err = parseTimestamp(v); err != nil {
				return "", 0, nil, errors.New("t is not Unix seconds")
			}
			tsText = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	if !seenT {
		return "", 0, nil, errors.New("t is missing")
	}
	if len(sigs) == 0 {
		return "", 0, nil, errors.New("no v1=<hex> signature")
	}
	return tsText, ts, sigs, nil
}

func (v stripeVerifier) verify(h http.Header, body []byte, now time.Time) (verified, *refusal) {
	text, r := required(h, hdrStripeSignature, maxSignatureHeader)
	if r != nil {
		return verified{}, r
	}
	tsText, ts, sigs, err := parseStripeSignature(text)
	if err != nil {
		return verified{}, &refusal{status: http.StatusBadRequest, title: "Malformed header", detail: "the " + hdrStripeSignature + " header: " + err.Error()}
	}
	if r := fresh(hdrStripeSignature+" t", ts, now, v.tolerance); r != nil {
		return verified{}, r
	}
	mac := hmac.New(sha256.New, v.key)
	mac.Write([]byte(tsText))
	mac.Write([]byte{'.'})
	mac.Write(body)
	if !anyEqual(sigs, mac.Sum(nil)) {
		return verified{}, unauthorized("Bad signature", "no v1 signature in the %s header matches the request", hdrStripeSignature)
	}
	return verified{ts: time.Unix(ts, 0)}, nil
}

// hmacVerifier checks an HMAC of the body alone, hex after a fixed prefix in
// one header: GitHub's X-Hub-Signature-256 and the generic `hmac` scheme.
// Nothing but the body is signed: no timestamp, no delivery id.
type hmacVerifier struct {
	key     []byte
	header  string
	prefix  string
	newHash func() hash.Hash
}

func (v hmacVerifier) verify(h http.Header, body []byte, _ time.Time) (verified, *refusal) {
	text, r := required(h, v.header, maxSignatureHeader)
	if r != nil {
		return verified{}, r
	}
	got, ok := strings.CutPrefix(strings.TrimSpace(text), v.prefix)
	if !ok {
		return verified{}, unauthorized("Bad signature", "the %s header does not start with %q", v.header, v.prefix)
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return verified{}, unauthorized("Bad signature", "the %s header does not hold a hex digest after %q", v.header, v.prefix)
	}
	mac := hmac.New(v.newHash, v.key)
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return verified{}, unauthorized("Bad signature", "the %s header does not match the body", v.header)
	}
	return verified{}, nil
}
