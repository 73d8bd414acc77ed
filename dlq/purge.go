package dlq

import (
	"context"
	"time"
)

// PurgeRequest names the dead letters of a trigger to delete: exactly one
// of IDs (entry ids), Before (those that died before it) and All.
type PurgeRequest struct {
	Trigger string
	IDs     []string
	Before  time.Time
	All     bool
}

// Purge deletes what req names and returns how many entries it deleted.
// Purged entries are not counted as evicted. With no mode set it deletes
// nothing.
func Purge(ctx context.Context, st Purger, req PurgeRequest) (int64, error) {
	switch {
	case req.All:
		return st.PurgeDLQAll(ctx, req.Trigger)
	case !req.Before.IsZero():
		return st.PurgeDLQBefore(ctx, req.Trigger, req.Before)
	case len(req.IDs) > 0:
		return st.PurgeDLQ(ctx, req.Trigger, req.IDs)
	}
	return 0, nil
}
