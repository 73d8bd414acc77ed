package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/internal/secrets"
	"github.com/switchyard-io/switchyard/internal/tlsfiles"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
)

// Outbound is the server-wide part of how Targets reaches targets. The
// zero value is today's behaviour: any address, plaintext allowed, system
// roots for TLS, no client certificate, no secrets.
type Outbound struct {
	// Guard checks every address a target connection goes to (nil: none
	// is checked). A refused target's attempts end dead at once with
	// reason TARGET_FORBIDDEN; nothing connects. With a guard, HTTP targets
	// are reached directly, never through an HTTP(S)_PROXY, which would
	// make the proxy's address the one checked.
	Guard *egress.Guard
	// RequireTLS makes attempts to plaintext targets (grpc host:port,
	// http://) end dead with reason TARGET_FORBIDDEN, for triggers stored
	// before it was set; the API refuses new ones.
	RequireTLS bool
	// CAFile is a PEM bundle trusted for targets' certificates instead of
	// the system roots, unless a trigger names its own.
	CAFile string
	// CertFile and KeyFile are a client certificate presented to TLS
	// targets that ask for one (mTLS), unless a trigger names its own.
	CertFile, KeyFile string
	// Secrets resolves the secrets named by triggers' target.auth (nil:
	// none; attempts of a trigger naming one fail and are retried).
	Secrets secrets.Resolver
}

// Validate checks the settings and loads the files once, so that a bad
// file is reported at start-up.
func (o Outbound) Validate() error {
	var errs []error
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, errors.New("target TLS: the client certificate and key go together"))
	}
	if o.CAFile != "" {
		if _, err := tlsfiles.NewCAPool(o.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("target TLS: %w", err))
		}
	}
	if o.CertFile != "" && o.KeyFile != "" {
		if _, err := tlsfiles.NewReloader(o.CertFile, o.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("target TLS: %w", err))
		}
	}
	return errors.Join(errs...)
}

// TLS is a trigger's TLS settings for its target; empty fields take the
// Outbound defaults.
type TLS struct {
	CAFile, CertFile, KeyFile string
	// ServerName is checked in the target's certificate and sent as SNI
	// (default: the target's host).
	ServerName string
}

// Endpoint is what an attempt needs beyond its target's address: transport
// security, credentials, and how to show the target. The router builds one
// per trigger version and passes the same pointer with every attempt;
// Targets keeps what it derives from it (connection, TLS configuration,
// cached secrets) inside, so an attempt costs one pointer load to find it.
// It must not be changed once used.
type Endpoint struct {
	// TLS secures the connection: set for grpcs:// targets (may be empty:
	// the defaults) and optionally for https:// ones; nil for plaintext.
	TLS *TLS
	// BearerSecret names the secret sent as "authorization: Bearer ...".
	BearerSecret string
	// SigningSecret names the Standard Webhooks secret that signs HTTP
	// deliveries.
	SigningSecret string
	// Display is the target as logs and dead letters may show it (redacted).
	Display string
	// Publish is set for a broker target (see publish.go); the fields
	// above then do not apply.
	Publish *Publish

	prep atomic.Pointer[prepared]
}

// prepared is what Targets derived from an Endpoint.
type prepared struct {
	owner  *Targets
	fail   *Result     // set: every attempt ends with it (forbidden plaintext)
	gc     *grpcConn   // gRPC targets
	client *httpClient // HTTP targets
	bearer *secretCache
	signer *secretCache
	scrub  *strings.Replacer // credentials in the URL, for failure messages
}

// forbiddenResult is the result of an attempt that may not be made.
func forbiddenResult(msg string) Result {
	return Result{Verdict: DeadNow, Reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_TARGET_FORBIDDEN, Code: "TARGET_FORBIDDEN", Message: msg}
}

// prepare returns what the attempt's endpoint needs, derived once per
// endpoint, or the result the attempt ends with before it starts.
func (t *Targets) prepare(a *Attempt, now time.Time) (*prepared, *Result) {
	ep := a.Endpoint
	var p *prepared
	if ep != nil {
		p = ep.prep.Load()
	}
	if p == nil || p.owner != t {
		if ep == nil {
			ep = &Endpoint{} // tests and callers without settings: plaintext or https defaults
		}
		var err error
		if p, err = t.build(a, ep); err != nil {
			// Unreadable TLS files: a configuration the operator can
			// fix (the files are read again by the next attempt), so the
			// event is retried, and the breaker holds the queue meanwhile.
			return nil, &Result{Verdict: Retry, Health: true, Code: "TLS_CONFIG", Message: err.Error()}
		}
		if ep == a.Endpoint {
			ep.prep.Store(p)
		}
	}
	if p.fail != nil {
		return nil, p.fail
	}
	// A missing or malformed secret is the operator's to fix: until then
	// attempts are retried, the breaker holds the queue, nothing is lost.
	if p.bearer != nil {
		if err := p.bearer.get(now).err; err != nil {
			return nil, &Result{Verdict: Retry, Health: true, Code: "SECRET_UNAVAILABLE", Message: err.Error()}
		}
	}
	if p.signer != nil {
		st := p.signer.get(now)
		if err := errors.Join(st.err, st.keyErr); err != nil {
			return nil, &Result{Verdict: Retry, Health: true, Code: "SECRET_UNAVAILABLE", Message: err.Error()}
		}
	}
	return p, nil
}

// build derives the prepared state of an endpoint.
func (t *Targets) build(a *Attempt, ep *Endpoint) (*prepared, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &prepared{owner: t}
	secure := ep.TLS != nil
	if a.URL != "" {
		secure = strings.HasPrefix(strings.ToLower(a.URL), "https://")
	}
	if t.out.RequireTLS && !secure {
		f := forbiddenResult("this server requires TLS to targets, and this target is plaintext")
		p.fail = &f
		return p, nil
	}
	var prof *tlsProfile
	if secure {
		settings := TLS{}
		if ep.TLS != nil {
			settings = *ep.TLS
		}
		var err error
		if prof, err = t.profileLocked(settings); err != nil {
			return nil, err
		}
	}
	if ep.BearerSecret != "" {
		p.bearer = t.secretLocked(ep.BearerSecret)
	}
	if ep.SigningSecret != "" {
		p.signer = t.secretLocked(ep.SigningSecret)
	}
	if a.GRPC != "" {
		gc, err := t.grpcConnLocked(a.GRPC, prof, p.bearer)
		if err != nil {
			return nil, err
		}
		p.gc = gc
	} else {
		p.client = t.httpClientLocked(prof)
		p.scrub = urlScrubber(a.URL, ep.Display)
	}
	return p, nil
}

// urlScrubber replaces the URL and the credentials in it (userinfo, query
// values) in failure messages: transport errors quote the URL, and a
// target's error page may echo the request. Values shorter than four bytes
// are left, or every "1" in a message would go.
func urlScrubber(raw, display string) *strings.Replacer {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.NewReplacer(raw, display)
	}
	if display == "" {
		display = u.Scheme + "://" + u.Host
	}
	pairs := []string{raw, display}
	add := func(v string) {
		if len(v) >= 4 {
			pairs = append(pairs, v, redaction)
		}
	}
	if u.User != nil {
		add(u.User.Username())
		pw, _ := u.User.Password()
		add(pw)
	}
	for _, p := range strings.Split(u.RawQuery, "&") {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			v = k
		}
		add(v)
		if dec, err := url.QueryUnescape(v); err == nil && dec != v {
			add(dec)
		}
	}
	return strings.NewReplacer(pairs...)
}

// redaction replaces credentials in failure messages.
const redaction = "REDACTED"

// scrubbed returns msg without the credentials of p's target.
func (p *prepared) scrubbed(msg string) string {
	if p == nil || msg == "" {
		return msg
	}
	if p.scrub != nil {
		msg = p.scrub.Replace(msg)
	}
	for _, s := range []*secretCache{p.bearer, p.signer} {
		if s != nil {
			msg = s.scrub(msg)
		}
	}
	return msg
}

// afterFailure finishes the result of a failed attempt: a gRPC connection
// the egress guard refused is a forbidden target, and no credential stays
// in the message.
func (p *prepared) afterFailure(r Result) Result {
	if p.gc != nil && r.Code == "UNAVAILABLE" {
		if fe := p.gc.forbidden.Load(); fe != nil {
			return forbiddenResult(fe.Error())
		}
	}
	r.Message = p.scrubbed(r.Message)
	return r
}

// httpFailure classifies an HTTP request that got no answer.
func (p *prepared) httpFailure(ctx context.Context, err error) Result {
	var fe *egress.ForbiddenError
	if errors.As(err, &fe) {
		return forbiddenResult(fe.Error())
	}
	code := "TRANSPORT"
	if errors.Is(context.Cause(ctx), errDeadline) {
		code = "DEADLINE_EXCEEDED"
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Op + ": " + ue.Err.Error() // the URL is in the dead letter already, redacted
	}
	return Result{Verdict: Retry, Health: true, Code: code, Message: msg}
}

// webhookID is the Standard Webhooks message id of an event for a trigger:
// the same for every attempt and replay, so receivers can deduplicate, and
// free of the event's own characters (headers carry it).
func webhookID(trigger string, ev *pb.CloudEvent) string {
	h := sha256.New()
	h.Write([]byte(trigger))
	h.Write([]byte{0})
	h.Write([]byte(ev.GetSource()))
	h.Write([]byte{0})
	h.Write([]byte(ev.GetId()))
	return "sy_" + hex.EncodeToString(h.Sum(nil)[:16])
}
