package router

import (
	"errors"
	"fmt"

	"github.com/switchyard-io/switchyard/internal/tlsfiles"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// endpoint is a trigger version's target in the terms of the delivery
// layer, built once per version: attempts pass the same *delivery.Endpoint,
// under which the invoker keeps its connection and cached credentials.
type endpoint struct {
	t    *trigger.Trigger // the version it was built for
	grpc string           // host:port of a gRPC target ("" for HTTP)
	ep   *delivery.Endpoint
}

// endpoint returns the endpoint of t, building it when t is a version the
// dispatcher has not seen.
func (d *dispatcher) endpoint(t *trigger.Trigger) *endpoint {
	if e := d.ep.Load(); e != nil && e.t == t {
		return e
	}
	e := newEndpoint(t)
	d.ep.Store(e)
	return e
}

func newEndpoint(t *trigger.Trigger) *endpoint {
	tg := t.Spec.Target
	e := &endpoint{t: t, ep: &delivery.Endpoint{Display: tg.Redacted()}}
	if p := tg.Publish; p != nil {
		e.ep.Publish = delivery.NewPublish(p.Kind, p.Fields)
		return e
	}
	if tg.GRPC != "" {
		e.grpc = tg.Address()
	}
	if tg.Secure() {
		e.ep.TLS = &delivery.TLS{}
		if c := tg.TLS; c != nil {
			*e.ep.TLS = delivery.TLS{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, ServerName: c.ServerName}
		}
	}
	if a := tg.Auth; a != nil {
		e.ep.BearerSecret, e.ep.SigningSecret = a.BearerSecret, a.SigningSecret
	}
	return e
}

// TriggerPolicy returns what the API must refuse in a trigger being applied
// on this server (see trigger.CompileWith): targets the egress guard
// forbids, plaintext targets when TLS is required, secrets the server does
// not hold, TLS files that do not load. Triggers already stored are not
// checked against it; their attempts are.
func (r *Router) TriggerPolicy() trigger.Policy {
	o := r.cfg.Outbound
	p := trigger.Policy{RequireTLS: o.RequireTLS, CheckTLS: checkTLSFiles, MaxDedupWindow: r.cfg.MaxDedupWindow}
	if o.Guard != nil {
		p.CheckAddress = o.Guard.CheckLiteral
	}
	p.CheckSecret = func(name string) error {
		if o.Secrets == nil {
			return errors.New("this server holds no secrets (configure a secrets directory or SWITCHYARD_SECRET_* variables)")
		}
		if _, err := o.Secrets.Lookup(name); err != nil {
			return fmt.Errorf("not available on this server: %w", err)
		}
		return nil
	}
	return p
}

// checkTLSFiles loads the files a trigger's TLS settings name.
func checkTLSFiles(c trigger.TargetTLS) error {
	var errs []error
	if c.CAFile != "" {
		if _, err := tlsfiles.NewCAPool(c.CAFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.CertFile != "" {
		if _, err := tlsfiles.NewReloader(c.CertFile, c.KeyFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
