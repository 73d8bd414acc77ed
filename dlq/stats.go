package dlq

import (
	"context"
	"time"
)

// QueueStats are one trigger's dead-letter figures.
type QueueStats struct {
	Trigger string
	Counts
	// Oldest is when the oldest entry held died (zero when none, or when
	// it could not be read).
	Oldest time.Time
}

// Stats reads the figures of each named trigger's queue, in order. A
// trigger without a queue reports zeros.
func Stats(ctx context.Context, st Reader, triggers []string) ([]QueueStats, error) {
	out := make([]QueueStats, 0, len(triggers))
	for _, n := range triggers {
		c, err := st.DLQCounts(ctx, n)
		if err != nil {
			return nil, err
		}
		q := QueueStats{Trigger: n, Counts: c}
		if entries, err := st.ListDLQ(ctx, n, "-", 1); err == nil && len(entries) == 1 {
			q.Oldest = EntryTime(entries[0].ID)
		}
		out = append(out, q)
	}
	return out, nil
}
