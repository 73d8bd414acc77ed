package server

import (
	"context"

	"github.com/switchyard-io/switchyard/auth"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// maxBlockedLanesShown bounds the blocked lanes one trigger's stats list.
const maxBlockedLanesShown = 100

// SkipLane unblocks a lane of an ordered trigger stopped by a dead letter
// (see router.SkipLane). Operators only (deadletters.write), within their
// trigger scope; a trigger out of scope is NOT_FOUND.
func (s *triggerService) SkipLane(ctx context.Context, req *switchyardv1.SkipLaneRequest) (*switchyardv1.SkipLaneResponse, error) {
	if err := checkTriggerName("name", req.GetName()); err != nil {
		return nil, err
	}
	if len(req.GetKey()) > store.MaxLaneKeyBytes {
		return nil, invalidField("key", "at most %d bytes (a longer key's lane is named by the \"#<sha256>\" trigger stats shows), got %d", store.MaxLaneKeyBytes, len(req.GetKey()))
	}
	if err := allowTriggers(ctx, auth.PermDeadLettersWrite, req.GetName()); err != nil {
		return nil, err
	}
	if _, err := s.r.Store().GetTrigger(ctx, req.GetName()); err != nil {
		return nil, StatusFor(err)
	}
	if err := s.r.SkipLane(ctx, req.GetName(), req.GetKey()); err != nil {
		return nil, StatusFor(err)
	}
	noteDetail(ctx, "key %q", req.GetKey())
	return &switchyardv1.SkipLaneResponse{}, nil
}

// laneStats adds an ordered trigger's lanes to its stats: lanes active and
// blocked, the blocked ones (at most maxBlockedLanesShown), and the events
// waiting behind their lane's first, which count as undelivered.
func (s *triggerService) laneStats(ctx context.Context, st *switchyardv1.TriggerStats, t *trigger.Trigger) error {
	if t == nil || t.Spec.Delivery.Ordering == nil {
		return nil
	}
	ls, err := s.r.Store().LaneStats(ctx, st.GetName(), maxBlockedLanesShown)
	if err != nil {
		return err
	}
	st.LanesActive, st.LanesBlocked, st.LaneWaiting = ls.Active, ls.Blocked, ls.Behind
	st.Undelivered += ls.Behind
	for _, b := range ls.BlockedLanes {
		st.BlockedLanes = append(st.BlockedLanes, &switchyardv1.BlockedLane{Key: store.LaneKey(b.Lane), DeadLetterId: b.Entry})
	}
	return nil
}
