package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/store"
)

// PutTrigger stores trigger t (validated, defaults applied) as
// store.PutTrigger does, installs it in this instance's view, and returns
// once every live instance serves the change (so a publish on any of them
// routes by it), or after Config.TriggerSyncTimeout: lagging then names the
// instances that had not confirmed it, sorted. The change is stored either
// way; the laggards install it when they can. An unchanged trigger waits
// for the current version, which holds it.
func (r *Router) PutTrigger(ctx context.Context, t *switchyardv1.Trigger, mode store.PutMode, expectedGen int64) (res store.PutResult, lagging []string, err error) {
	err = r.whileRestoring(ctx, func() (err error) {
		res, err = r.store.PutTrigger(ctx, t, mode, expectedGen)
		return err
	})
	if err != nil {
		return res, nil, err
	}
	if res.Changed {
		ct, err := compile(res.Trigger)
		if err != nil {
			return res, nil, err
		}
		v := res.Change.Version
		r.install(v.Epoch, 0, localChange{name: ct.Name(), t: ct, at: v.Rev})
	}
	return res, r.sync(ctx, t.GetName(), res.Change), nil
}

// DeleteTrigger removes a trigger as store.DeleteTrigger does, drops it from
// this instance's view and waits as PutTrigger does.
func (r *Router) DeleteTrigger(ctx context.Context, name string, purge bool) (kept int64, lagging []string, err error) {
	var ch store.Change
	err = r.whileRestoring(ctx, func() (err error) {
		kept, ch, err = r.store.DeleteTrigger(ctx, name, purge)
		return err
	})
	if err != nil {
		return kept, nil, err
	}
	r.install(ch.Version.Epoch, 0, localChange{name: name, at: ch.Version.Rev})
	return kept, r.sync(ctx, name, ch), nil
}

// sync waits for the change to be live on every instance, and logs those
// that lag.
func (r *Router) sync(ctx context.Context, name string, ch store.Change) []string {
	lagging := r.cluster.wait(ctx, ch)
	if len(lagging) > 0 {
		r.log.Warn("trigger change not confirmed by every instance in time; they apply it when they can",
			"trigger", name, "epoch", ch.Version.Epoch, "revision", ch.Version.Rev, "lagging", lagging, "timeout", r.cfg.TriggerSyncTimeout)
	}
	return lagging
}

// whileRestoring runs fn, and runs it again while it fails with
// store.ErrNoEpoch (the store lost its data and this instance's watch loop,
// told at once, is restoring the triggers), up to TriggerSyncTimeout; past
// it the error is ErrUnavailable.
func (r *Router) whileRestoring(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(r.cfg.TriggerSyncTimeout)
	var wait time.Duration
	for {
		err := fn()
		if !errors.Is(err, store.ErrNoEpoch) {
			return err
		}
		select {
		case r.watchKick <- struct{}{}:
		default:
		}
		wait = nextBackoff(wait)
		if time.Now().Add(wait).After(deadline) || !backoffSleep(ctx, wait) {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
}
