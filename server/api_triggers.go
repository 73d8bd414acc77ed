package server

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/auth"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

type triggerService struct {
	switchyardv1.UnimplementedTriggerServiceServer
	r *router.Router
	// maxTestEvents bounds the events of one TestFilter (a batch's bound).
	maxTestEvents int
}

// normalize validates t, against the server's policy too (egress guard,
// TLS, secrets), and returns it with defaults applied.
func normalize(t *switchyardv1.Trigger, pol trigger.Policy) (*switchyardv1.Trigger, error) {
	if t == nil {
		return nil, invalidField("trigger", "required")
	}
	compiled, err := trigger.CompileWith(trigger.FromProto(t), pol)
	if err != nil {
		return nil, StatusFor(err)
	}
	return trigger.ToProto(compiled.Spec), nil
}

// put stores the trigger and returns once every live instance serves it,
// or names those that lag (see router.PutTrigger). A dry run goes through
// the very same checks (validation, defaults, the server's policy,
// authorization, the caller's scope, the stored trigger) and stops short
// of the store's write: it returns what would be stored and the trigger
// stored now, writes nothing and tells no instance.
func (s *triggerService) put(ctx context.Context, t *switchyardv1.Trigger, mode store.PutMode, gen int64, dryRun bool) (res store.PutResult, previous *switchyardv1.Trigger, lagging []string, err error) {
	if err := allowNewTrigger(ctx, t.GetName(), mode == store.PutUpdate); err != nil {
		return store.PutResult{}, nil, nil, err
	}
	nt, err := normalize(t, s.r.TriggerPolicy())
	if err != nil {
		return store.PutResult{}, nil, nil, err
	}
	if err := scopeTrigger(ctx, nt, auth.PermTriggersWrite); err != nil {
		return store.PutResult{}, nil, nil, err
	}
	if mode != store.PutUpdate {
		// Triggers are capped per server and, for a caller scoped to
		// trigger-name prefixes (a tenant), per scope; the reservation
		// holds until this create is stored and installed (a dry run
		// checks the caps the same way and lets go at once).
		var scopes []string
		if id := caller(ctx); id != nil {
			scopes = id.Scope.Triggers
		}
		release, err := s.r.ReserveTrigger(nt.GetName(), scopes)
		if err != nil {
			return store.PutResult{}, nil, nil, StatusFor(err)
		}
		defer release()
	}
	if dryRun {
		res, previous, err = s.r.Store().PreviewPut(ctx, nt, mode, gen)
		if err != nil {
			return res, nil, nil, StatusFor(err)
		}
		noteDetail(ctx, "dry run: %s, nothing stored", dryRunOutcome(res))
		return res, previous, nil, nil
	}
	res, lagging, err = s.r.PutTrigger(ctx, nt, mode, gen)
	if err != nil {
		return res, nil, nil, StatusFor(err)
	}
	return res, nil, lagging, nil
}

// dryRunOutcome says what a previewed put would do, for the audit record.
func dryRunOutcome(res store.PutResult) string {
	switch {
	case res.Created:
		return "would create it"
	case res.Changed:
		return fmt.Sprintf("would replace it (generation %d)", res.Trigger.GetGeneration())
	}
	return "unchanged"
}

func (s *triggerService) CreateTrigger(ctx context.Context, req *switchyardv1.CreateTriggerRequest) (*switchyardv1.CreateTriggerResponse, error) {
	res, _, lagging, err := s.put(ctx, req.GetTrigger(), store.PutCreate, 0, req.GetDryRun())
	if err != nil {
		return nil, err
	}
	return &switchyardv1.CreateTriggerResponse{Trigger: trigger.RedactProto(res.Trigger), LaggingInstances: lagging, DryRun: req.GetDryRun()}, nil
}

func (s *triggerService) ApplyTrigger(ctx context.Context, req *switchyardv1.ApplyTriggerRequest) (*switchyardv1.ApplyTriggerResponse, error) {
	res, previous, lagging, err := s.put(ctx, req.GetTrigger(), store.PutApply, 0, req.GetDryRun())
	if err != nil {
		return nil, err
	}
	return &switchyardv1.ApplyTriggerResponse{Trigger: trigger.RedactProto(res.Trigger), Created: res.Created, Changed: res.Changed,
		LaggingInstances: lagging, DryRun: req.GetDryRun(), Previous: trigger.RedactProto(previous)}, nil
}

func (s *triggerService) UpdateTrigger(ctx context.Context, req *switchyardv1.UpdateTriggerRequest) (*switchyardv1.UpdateTriggerResponse, error) {
	res, previous, lagging, err := s.put(ctx, req.GetTrigger(), store.PutUpdate, req.GetExpectedGeneration(), req.GetDryRun())
	if err != nil {
		return nil, err
	}
	return &switchyardv1.UpdateTriggerResponse{Trigger: trigger.RedactProto(res.Trigger), LaggingInstances: lagging,
		DryRun: req.GetDryRun(), Previous: trigger.RedactProto(previous)}, nil
}

func (s *triggerService) GetTrigger(ctx context.Context, req *switchyardv1.GetTriggerRequest) (*switchyardv1.GetTriggerResponse, error) {
	if err := checkTriggerName("name", req.GetName()); err != nil {
		return nil, err
	}
	if err := allowTriggers(ctx, auth.PermTriggersRead, req.GetName()); err != nil {
		return nil, err
	}
	t, err := s.r.Store().GetTrigger(ctx, req.GetName())
	if err != nil {
		return nil, StatusFor(err)
	}
	return &switchyardv1.GetTriggerResponse{Trigger: trigger.RedactProto(t)}, nil
}

func (s *triggerService) ListTriggers(ctx context.Context, _ *switchyardv1.ListTriggersRequest) (*switchyardv1.ListTriggersResponse, error) {
	ts, _, err := s.r.Store().ListTriggers(ctx)
	if err != nil {
		return nil, StatusFor(err)
	}
	id := caller(ctx)
	ts = slices.DeleteFunc(ts, func(t *switchyardv1.Trigger) bool { return !id.CanSeeTrigger(t.GetName()) })
	for i, t := range ts {
		ts[i] = trigger.RedactProto(t)
	}
	return &switchyardv1.ListTriggersResponse{Triggers: ts}, nil
}

func (s *triggerService) DeleteTrigger(ctx context.Context, req *switchyardv1.DeleteTriggerRequest) (*switchyardv1.DeleteTriggerResponse, error) {
	if err := checkTriggerName("name", req.GetName()); err != nil {
		return nil, err
	}
	if err := allowTriggers(ctx, auth.PermTriggersWrite, req.GetName()); err != nil {
		return nil, err
	}
	kept, lagging, err := s.r.DeleteTrigger(ctx, req.GetName(), req.GetPurge())
	if err != nil {
		return nil, StatusFor(err)
	}
	return &switchyardv1.DeleteTriggerResponse{KeptEvents: kept, LaggingInstances: lagging}, nil
}

func (s *triggerService) GetTriggerStats(ctx context.Context, req *switchyardv1.GetTriggerStatsRequest) (*switchyardv1.GetTriggerStatsResponse, error) {
	var names []string
	if req.GetName() != "" {
		if err := checkTriggerName("name", req.GetName()); err != nil {
			return nil, err
		}
		if err := allowTriggers(ctx, auth.PermTriggersRead, req.GetName()); err != nil {
			return nil, err
		}
		if _, err := s.r.Store().GetTrigger(ctx, req.GetName()); err != nil {
			return nil, StatusFor(err)
		}
		names = []string{req.GetName()}
	} else {
		ts, _, err := s.r.Store().ListTriggers(ctx)
		if err != nil {
			return nil, StatusFor(err)
		}
		for _, t := range ts {
			names = append(names, t.GetName())
		}
		names = visibleTriggers(ctx, names)
	}
	// Events accepted into the ingest log and not yet fanned out count as
	// undelivered, as admission counts them.
	admitted, err := s.r.Store().Admitted(ctx)
	if err != nil {
		return nil, StatusFor(err)
	}
	out := &switchyardv1.GetTriggerStatsResponse{}
	now := time.Now()
	for _, n := range names {
		qs, err := s.r.Store().Stats(ctx, n)
		if err != nil {
			return nil, StatusFor(err)
		}
		st := triggerStats(n, qs, admitted[n], s.r.Trigger(n), now)
		if err := s.laneStats(ctx, st, s.r.Trigger(n)); err != nil {
			return nil, StatusFor(err)
		}
		if w := s.r.DedupWindow(n); w > 0 {
			st.DedupWindow = durationpb.New(w)
		}
		if st.Delayed, err = s.r.Store().Waiting(ctx, n, now); err != nil {
			return nil, StatusFor(err)
		}
		st.RetriesScheduled = max(0, st.RetriesScheduled-st.Delayed)
		if t := s.r.Trigger(n); t != nil && t.Spec.Target.IsPull() {
			consumers, err := s.r.Store().CountConsumers(ctx, n, now)
			if err != nil {
				return nil, StatusFor(err)
			}
			st.Consumers, st.Leased = int32(consumers), qs.InFlight
		}
		out.Stats = append(out.Stats, st)
	}
	return out, nil
}

func triggerStats(name string, qs store.QueueStats, unfanned int64, t *trigger.Trigger, now time.Time) *switchyardv1.TriggerStats {
	c := func(k string) int64 { return parseInt(qs.Counters[k]) }
	st := &switchyardv1.TriggerStats{
		Name: name, Queued: qs.Ready, InFlight: qs.InFlight, RetriesScheduled: qs.Delayed, DeadLetters: qs.DeadLetters,
		Undelivered: qs.Ready + qs.InFlight + qs.Delayed + max(unfanned, 0),
		Delivered:   c("delivered"), FailedAttempts: c("failed"), DeadLettered: c("dead"), DeadLettersEvicted: c("dlq_evicted"),
		Enqueued: c("enqueued"), Duplicates: c("duplicates"), ConsecutiveFailures: c("cb_fail"), Breaker: switchyardv1.BreakerState_BREAKER_STATE_CLOSED,
	}
	if t != nil {
		st.MaxConcurrency = int32(t.Spec.Delivery.MaxConcurrency)
		st.MaxQueue = t.Spec.Delivery.MaxQueue
	}
	switch store.BreakerState(qs.Counters["cb_state"]) {
	case store.BreakerOpen:
		st.Breaker = switchyardv1.BreakerState_BREAKER_STATE_OPEN
		st.BreakerRetryTime = timestamppb.New(time.UnixMilli(c("cb_until")))
	case store.BreakerHalfOpen:
		st.Breaker = switchyardv1.BreakerState_BREAKER_STATE_HALF_OPEN
	}
	if qs.OldestReady != "" {
		if born := store.IDTime(qs.OldestReady); !born.IsZero() {
			st.OldestAge = durationpb.New(now.Sub(born))
		}
	}
	return st
}
