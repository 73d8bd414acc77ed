package delivery

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
	"github.com/switchyard-io/switchyard/targets"
)

// Broker targets: a trigger whose target is `publish: {kind: …}` has its
// attempts written to a broker by a targets.Publisher of that kind. One
// publisher serves every trigger aimed at the same kind, fields and secret
// values (a rotated secret makes a new one), and is closed once no trigger
// uses it and no attempt runs on it: the router tells Targets when a
// trigger's target changes or the trigger goes (ForgetTrigger).

// Publish is a trigger version's broker target, built once per version by
// the router (NewPublish) and carried by its Endpoint.
type Publish struct {
	// Spec is the kind's registered spec, Config its fields as validated.
	Spec   targets.Spec
	Config targets.Config
	// Err is set when the stored target does not validate in this program
	// (a kind it does not register, fields a newer version refuses):
	// attempts are retried with it until the program or trigger is fixed.
	Err error
	key string // kind and fields, without secret values
}

// NewPublish validates a publish target's fields against its kind's spec
// in targets.Default.
func NewPublish(kind string, fields map[string]any) *Publish {
	spec, ok := targets.Default.Lookup(kind)
	if !ok {
		return &Publish{Err: fmt.Errorf("target kind %q is not registered in this program", kind)}
	}
	c, problems := spec.Build(fields)
	if len(problems) > 0 {
		return &Publish{Spec: spec, Err: fmt.Errorf("target.publish.%s: %s", problems[0].Field, problems[0].Msg)}
	}
	b, _ := json.Marshal(c.Map()) // typed values of the kinds' field types: always encode; keys sorted
	return &Publish{Spec: spec, Config: c, key: kind + "\x00" + string(b)}
}

// TargetForgetter is implemented by invokers that keep state per trigger
// target (Targets: broker publishers). The router calls ForgetTrigger when
// a trigger's target changes (gone false) or the trigger is deleted (gone
// true); a trigger created again under the same name is announced with
// gone false.
type TargetForgetter interface {
	ForgetTrigger(name string, gone bool)
}

// pubEntry is one shared publisher.
type pubEntry struct {
	key      string
	users    map[string]bool // triggers whose latest attempt used it
	inflight int
	build    sync.Mutex // held while the publisher is built
	pub      targets.Publisher
	scrub    []*secretCache
	// forbidden is set when the egress guard refused the publisher's
	// latest dial, cleared when a dial succeeds: clients that retry dials
	// themselves (franz-go, nats.go) report a timeout or "no servers", not
	// the refusal.
	forbidden atomic.Pointer[egress.ForbiddenError]
}

// publishers holds the shared publishers of a Targets.
type publishers struct {
	mu        sync.Mutex
	entries   map[string]*pubEntry
	byTrigger map[string]*pubEntry
	gone      map[string]bool
	closing   sync.WaitGroup
	closed    bool
}

// acquire returns the entry for key, counting an attempt of trigger in
// flight on it; release must follow.
func (ps *publishers) acquire(trigger, key string) (*pubEntry, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, errors.New("invoker closed")
	}
	if ps.entries == nil {
		ps.entries, ps.byTrigger, ps.gone = map[string]*pubEntry{}, map[string]*pubEntry{}, map[string]bool{}
	}
	e := ps.entries[key]
	if e == nil {
		e = &pubEntry{key: key, users: map[string]bool{}}
		ps.entries[key] = e
	}
	e.inflight++
	if old := ps.byTrigger[trigger]; old != e && !ps.gone[trigger] {
		if old != nil {
			delete(old.users, trigger)
			ps.maybeCloseLocked(old)
		}
		ps.byTrigger[trigger] = e
		e.users[trigger] = true
	}
	return e, nil
}

// release ends an attempt on e.
func (ps *publishers) release(e *pubEntry) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	e.inflight--
	ps.maybeCloseLocked(e)
}

// forget drops trigger's use of its publisher.
func (ps *publishers) forget(trigger string, gone bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.entries == nil {
		return
	}
	e, used := ps.byTrigger[trigger]
	switch {
	case gone && used:
		ps.gone[trigger] = true
	case !gone:
		delete(ps.gone, trigger)
	}
	if used {
		delete(ps.byTrigger, trigger)
		delete(e.users, trigger)
		ps.maybeCloseLocked(e)
	}
}

// maybeCloseLocked closes e once no trigger uses it and no attempt runs on
// it. Called with ps.mu held; the close runs in a goroutine Close waits for.
func (ps *publishers) maybeCloseLocked(e *pubEntry) {
	if len(e.users) > 0 || e.inflight > 0 || ps.entries[e.key] != e {
		return
	}
	delete(ps.entries, e.key)
	ps.closing.Add(1)
	go func() {
		defer ps.closing.Done()
		e.build.Lock() // a build in progress finishes first
		defer e.build.Unlock()
		if e.pub != nil {
			_ = e.pub.Close()
		}
	}()
}

// closeAll closes every publisher (the router has no attempt running).
func (ps *publishers) closeAll() {
	ps.mu.Lock()
	ps.closed = true
	for k, e := range ps.entries {
		delete(ps.entries, k)
		ps.closing.Add(1)
		go func() {
			defer ps.closing.Done()
			e.build.Lock()
			defer e.build.Unlock()
			if e.pub != nil {
				_ = e.pub.Close()
			}
		}()
	}
	ps.mu.Unlock()
	ps.closing.Wait()
}

// ForgetTrigger implements TargetForgetter.
func (t *Targets) ForgetTrigger(name string, gone bool) { t.pubs.forget(name, gone) }

// invokePublish makes an attempt on a broker target.
func (t *Targets) invokePublish(ctx context.Context, a *Attempt, pe *Publish) Result {
	if pe.Err != nil {
		return Result{Verdict: Retry, Health: true, Code: targets.Misconfigured.String(), Message: pe.Err.Error()}
	}
	if t.out.RequireTLS && (pe.Spec.Secure == nil || !pe.Spec.Secure(pe.Config)) {
		return forbiddenResult("this server requires TLS to targets, and this target is plaintext")
	}
	ctx, cancel := context.WithTimeoutCause(ctx, a.Timeout, errDeadline)
	defer cancel()
	// The secrets' current values are part of the publisher's identity: a
	// rotated password makes a new publisher, and the old one closes once
	// its last attempt ends.
	now := time.Now()
	names := pe.Spec.SecretNames(pe.Config)
	caches := make([]*secretCache, 0, len(names))
	values := map[string]string{}
	h := sha256.New()
	for _, n := range names {
		t.mu.Lock()
		sc := t.secretLocked(n.HostPort)
		t.mu.Unlock()
		st := sc.get(now)
		if st.err != nil {
			return Result{Verdict: Retry, Health: true, Code: "SECRET_UNAVAILABLE", Message: st.err.Error()}
		}
		caches = append(caches, sc)
		values[n.HostPort] = st.raw
		h.Write([]byte(n.HostPort + "\x00" + st.raw + "\x00"))
	}
	key := pe.key + "\x00" + hex.EncodeToString(h.Sum(nil))
	e, err := t.pubs.acquire(a.Trigger, key)
	if err != nil {
		return Result{Verdict: Retry, Code: "CANCELLED", Message: err.Error()}
	}
	defer t.pubs.release(e)
	if err := t.buildPublisher(ctx, e, pe, values, caches); err != nil {
		return t.publishFailure(ctx, e, err, caches)
	}
	if err := e.pub.Publish(ctx, a.Event); err != nil {
		return t.publishFailure(ctx, e, err, caches)
	}
	return Result{Verdict: Ack, Code: "OK"}
}

// buildPublisher builds e's publisher unless it has one. A failed build
// leaves none, so the next attempt tries again.
func (t *Targets) buildPublisher(ctx context.Context, e *pubEntry, pe *Publish, values map[string]string, caches []*secretCache) error {
	e.build.Lock()
	defer e.build.Unlock()
	if e.pub != nil {
		return nil
	}
	guard := t.out.Guard // nil dials plainly
	env := targets.Env{
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := guard.DialContext(ctx, network, address)
			var fe *egress.ForbiddenError
			if errors.As(err, &fe) {
				e.forbidden.Store(fe)
			} else if err == nil {
				e.forbidden.Store(nil)
			}
			return c, err
		},
		Secret: func(name string) (string, error) {
			v, ok := values[name]
			if !ok {
				return "", fmt.Errorf("secret %s is not a field of this target", name)
			}
			return v, nil
		},
		TLS:    t.brokerTLS,
		Logger: t.log.With(slog.String("target", pe.Spec.Display(pe.Config))),
	}
	pub, err := pe.Spec.New(ctx, pe.Config, env)
	if err != nil {
		return err
	}
	e.pub, e.scrub = pub, caches
	return nil
}

// brokerTLS is the TLS configuration of a broker connection: the server's
// target CA and client certificate (Outbound), reloaded when they change.
func (t *Targets) brokerTLS(host string) *tls.Config {
	t.mu.Lock()
	prof, err := t.profileLocked(TLS{})
	t.mu.Unlock()
	if err != nil {
		// The defaults were loaded at start-up (Outbound.Validate); a file
		// gone since fails the handshake, which is retried.
		return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return nil, err
		}}
	}
	return prof.config(host, nil)
}

// publishFailure turns a failed publish into a Result.
func (t *Targets) publishFailure(ctx context.Context, e *pubEntry, err error, caches []*secretCache) Result {
	msg := err.Error()
	for _, sc := range caches {
		msg = sc.scrub(msg)
	}
	var fe *egress.ForbiddenError
	if errors.As(err, &fe) {
		return forbiddenResult(fe.Error())
	}
	if fe := e.forbidden.Load(); fe != nil {
		return forbiddenResult(fe.Error())
	}
	if strings.Contains(msg, egress.ErrForbidden.Error()) || strings.HasPrefix(msg, "egress: ") || strings.Contains(msg, ": egress: ") {
		// A client that stringified the guard's refusal on its way up.
		return forbiddenResult(msg)
	}
	f := targets.FailureOf(err)
	if errors.Is(context.Cause(ctx), errDeadline) && f != targets.Duplicate {
		f = targets.Timeout
	}
	v, health := ClassifyPublish(f)
	r := Result{Verdict: v, Health: health, Code: f.String(), Message: msg}
	if v == DeadNow {
		r.Reason = switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE
	}
	return r
}
