package trigger

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
)

// ToProto converts a spec to its API message. Output-only fields stay zero.
func ToProto(s Spec) *switchyardv1.Trigger {
	t := &switchyardv1.Trigger{
		Name:        s.Name,
		Description: s.Description,
		Filter:      filterToProto(s.Filter),
		Target:      &switchyardv1.Target{},
		Delivery: &switchyardv1.DeliveryPolicy{
			Timeout:        durationOrNil(s.Delivery.Timeout),
			MaxAttempts:    int32(s.Delivery.MaxAttempts),
			InitialBackoff: durationOrNil(s.Delivery.InitialBackoff),
			MaxBackoff:     durationOrNil(s.Delivery.MaxBackoff),
			MaxEventAge:    durationOrNil(s.Delivery.MaxEventAge),
			MaxConcurrency: int32(s.Delivery.MaxConcurrency),
			MaxQueue:       s.Delivery.MaxQueue,

			DeadLetterMaxEntries: s.Delivery.DeadLetterMaxEntries,
			DeadLetterMaxAge:     durationOrNil(s.Delivery.DeadLetterMaxAge),
			DedupWindow:          durationPtr(s.Delivery.DedupWindow),
		},
	}
	if !s.Scope.IsEmpty() {
		t.Scope = &switchyardv1.EventScope{Sources: s.Scope.Sources, Types: s.Scope.Types}
	}
	if o := s.Delivery.Ordering; o != nil {
		t.Delivery.Ordering = &switchyardv1.Ordering{Key: o.Key, OnDead: onDeadToProto(o.OnDead)}
	}
	switch {
	case s.Target.GRPC != "":
		t.Target.Kind = &switchyardv1.Target_Grpc{Grpc: s.Target.GRPC}
	case s.Target.URL != "":
		t.Target.Kind = &switchyardv1.Target_Url{Url: s.Target.URL}
	case s.Target.IsPull():
		t.Target.Kind = &switchyardv1.Target_Pull{Pull: &switchyardv1.PullTarget{}}
	case s.Target.Publish != nil:
		t.Target.Kind = &switchyardv1.Target_Publish{Publish: publishToProto(*s.Target.Publish)}
	}
	if c := s.Target.TLS; c != nil {
		t.Target.Tls = &switchyardv1.TargetTLS{CaFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, ServerName: c.ServerName}
	}
	if a := s.Target.Auth; a != nil {
		t.Target.Auth = &switchyardv1.TargetAuth{BearerSecret: a.BearerSecret, SigningSecret: a.SigningSecret}
	}
	return t
}

// RedactProto returns t as API answers show it: its target URL redacted
// (see Target.Redacted). t itself is not changed; it is returned as it is
// when there is nothing to redact.
func RedactProto(t *switchyardv1.Trigger) *switchyardv1.Trigger {
	u := t.GetTarget().GetUrl()
	if u == "" {
		return t
	}
	r := RedactURL(u)
	if r == u {
		return t
	}
	c := proto.Clone(t).(*switchyardv1.Trigger)
	c.Target.Kind = &switchyardv1.Target_Url{Url: r}
	return c
}

// FromProto converts an API message to a spec. Nil parts become zero values.
func FromProto(t *switchyardv1.Trigger) Spec {
	d := t.GetDelivery()
	return Spec{
		Name:        t.GetName(),
		Description: t.GetDescription(),
		Filter:      filterFromProto(t.GetFilter()),
		Target:      targetFromProto(t.GetTarget()),
		Delivery: Delivery{
			Timeout:        Duration{d.GetTimeout().AsDuration()},
			MaxAttempts:    int(d.GetMaxAttempts()),
			InitialBackoff: Duration{d.GetInitialBackoff().AsDuration()},
			MaxBackoff:     Duration{d.GetMaxBackoff().AsDuration()},
			MaxEventAge:    Duration{d.GetMaxEventAge().AsDuration()},
			MaxConcurrency: int(d.GetMaxConcurrency()),
			MaxQueue:       d.GetMaxQueue(),

			DeadLetterMaxEntries: d.GetDeadLetterMaxEntries(),
			DeadLetterMaxAge:     Duration{d.GetDeadLetterMaxAge().AsDuration()},
			Ordering:             orderingFromProto(d.GetOrdering()),
			DedupWindow:          durationFromPtr(d.GetDedupWindow()),
		},
		Scope: EventScope{Sources: t.GetScope().GetSources(), Types: t.GetScope().GetTypes()},
	}
}

func onDeadToProto(s string) switchyardv1.OnDead {
	switch s {
	case OnDeadContinue:
		return switchyardv1.OnDead_ON_DEAD_CONTINUE
	case OnDeadBlock:
		return switchyardv1.OnDead_ON_DEAD_BLOCK
	}
	return switchyardv1.OnDead_ON_DEAD_UNSPECIFIED
}

// orderingFromProto converts delivery.ordering; an on_dead value this
// version does not know is kept as its name, which Validate refuses.
func orderingFromProto(o *switchyardv1.Ordering) *Ordering {
	if o == nil {
		return nil
	}
	out := &Ordering{Key: o.GetKey()}
	switch v := o.GetOnDead(); v {
	case switchyardv1.OnDead_ON_DEAD_UNSPECIFIED:
	case switchyardv1.OnDead_ON_DEAD_CONTINUE:
		out.OnDead = OnDeadContinue
	case switchyardv1.OnDead_ON_DEAD_BLOCK:
		out.OnDead = OnDeadBlock
	default:
		out.OnDead = v.String()
	}
	return out
}

func targetFromProto(p *switchyardv1.Target) Target {
	t := Target{GRPC: p.GetGrpc(), URL: p.GetUrl()}
	if p.GetPull() != nil {
		t.Pull = &PullTarget{}
	}
	if pt := p.GetPublish(); pt != nil {
		t.Publish = &PublishTarget{Kind: pt.GetKind(), Fields: pt.GetFields().AsMap()}
	}
	if c := p.GetTls(); c != nil {
		t.TLS = &TargetTLS{CAFile: c.GetCaFile(), CertFile: c.GetCertFile(), KeyFile: c.GetKeyFile(), ServerName: c.GetServerName()}
	}
	if a := p.GetAuth(); a != nil {
		t.Auth = &TargetAuth{BearerSecret: a.GetBearerSecret(), SigningSecret: a.GetSigningSecret()}
	}
	return t
}

func durationOrNil(d Duration) *durationpb.Duration {
	if d.Duration == 0 {
		return nil
	}
	return durationpb.New(d.Duration)
}

func filterToProto(s filter.Spec) *switchyardv1.Filter {
	if s.IsEmpty() {
		return nil
	}
	f := &switchyardv1.Filter{
		Attributes: s.Attributes,
		Prefix:     s.Prefix,
		Suffix:     s.Suffix,
		Cesql:      s.CESQL,
		Cel:        s.CEL,
	}
	for _, a := range s.All {
		f.All = append(f.All, orEmpty(filterToProto(a)))
	}
	for _, a := range s.Any {
		f.Any = append(f.Any, orEmpty(filterToProto(a)))
	}
	if s.Not != nil {
		f.Not = orEmpty(filterToProto(*s.Not))
	}
	return f
}

func orEmpty(f *switchyardv1.Filter) *switchyardv1.Filter {
	if f == nil {
		return &switchyardv1.Filter{}
	}
	return f
}

func filterFromProto(f *switchyardv1.Filter) filter.Spec {
	if f == nil {
		return filter.Spec{}
	}
	s := filter.Spec{
		Attributes: f.GetAttributes(),
		Prefix:     f.GetPrefix(),
		Suffix:     f.GetSuffix(),
		CESQL:      f.GetCesql(),
		CEL:        f.GetCel(),
	}
	for _, a := range f.GetAll() {
		s.All = append(s.All, filterFromProto(a))
	}
	for _, a := range f.GetAny() {
		s.Any = append(s.Any, filterFromProto(a))
	}
	if f.GetNot() != nil {
		n := filterFromProto(f.GetNot())
		s.Not = &n
	}
	return s
}

// publishToProto converts a publish target; a field value that a
// google.protobuf.Struct cannot hold (none that decoding produces) is left
// out, and Validate then reports it missing or the problem of its absence.
func publishToProto(p PublishTarget) *switchyardv1.PublishTarget {
	fields := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range p.Fields {
		if pv, err := structpb.NewValue(v); err == nil {
			fields.Fields[k] = pv
		}
	}
	return &switchyardv1.PublishTarget{Kind: p.Kind, Fields: fields}
}
