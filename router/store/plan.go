package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// PlanPut decides what storing t does when old is the stored trigger of
// its name (nil: none) at time now: ErrExists, ErrNotFound or ErrConflict
// when mode or expectedGen refuse it, else the trigger as it would be
// stored (generation and times set) and whether that creates or changes
// it. When nothing changes, Trigger is old. PutTrigger writes what it
// decides; a dry run (PreviewPut) only reports it, so the two cannot
// disagree.
func PlanPut(old, t *switchyardv1.Trigger, mode PutMode, expectedGen int64, now time.Time) (PutResult, error) {
	switch {
	case mode == PutCreate && old != nil:
		return PutResult{}, fmt.Errorf("trigger %q: %w", t.GetName(), ErrExists)
	case mode == PutUpdate && old == nil:
		return PutResult{}, fmt.Errorf("trigger %q: %w", t.GetName(), ErrNotFound)
	case expectedGen > 0 && (old == nil || old.GetGeneration() != expectedGen):
		return PutResult{}, fmt.Errorf("trigger %q: expected generation %d: %w", t.GetName(), expectedGen, ErrConflict)
	}
	nt := proto.Clone(t).(*switchyardv1.Trigger)
	ts := timestamppb.New(now.UTC())
	if old == nil {
		nt.Generation, nt.CreateTime, nt.UpdateTime = 1, ts, ts
		return PutResult{Trigger: nt, Created: true, Changed: true}, nil
	}
	nt.Generation, nt.CreateTime, nt.UpdateTime = old.GetGeneration(), old.GetCreateTime(), old.GetUpdateTime()
	if proto.Equal(old, nt) {
		return PutResult{Trigger: old}, nil
	}
	nt.Generation = old.GetGeneration() + 1
	nt.UpdateTime = ts
	return PutResult{Trigger: nt, Changed: true}, nil
}

// PreviewPut answers what PutTrigger(ctx, t, mode, expectedGen) would do
// now, and returns the trigger stored now (nil when none), writing
// nothing and announcing nothing. A concurrent change may of course make
// the real put differ.
func (s *Store) PreviewPut(ctx context.Context, t *switchyardv1.Trigger, mode PutMode, expectedGen int64) (PutResult, *switchyardv1.Trigger, error) {
	old, err := s.GetTrigger(ctx, t.GetName())
	switch {
	case errors.Is(err, ErrNotFound):
		old = nil
	case err != nil:
		return PutResult{}, nil, err
	}
	res, err := PlanPut(old, t, mode, expectedGen, time.Now())
	return res, old, err
}
