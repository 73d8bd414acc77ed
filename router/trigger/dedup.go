package trigger

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

// MaxDedupWindow is the longest dedup window any server accepts: a trigger
// remembers the (source, id) of every event it queued within its window,
// so the window bounds that memory. A server may allow less
// (Policy.MaxDedupWindow).
const MaxDedupWindow = 24 * time.Hour

// DedupWindowOr returns the trigger's dedup window: its own when set (0:
// off), else serverDefault.
func (d Delivery) DedupWindowOr(serverDefault time.Duration) time.Duration {
	if d.DedupWindow != nil {
		return d.DedupWindow.Duration
	}
	return serverDefault
}

// validateDedup checks the dedup window against the limits of every server.
func (d Delivery) validateDedup() FieldErrors {
	if d.DedupWindow == nil {
		return nil
	}
	switch w := d.DedupWindow.Duration; {
	case w < 0:
		return FieldErrors{{Path: "delivery.dedup_window", Msg: "must not be negative (0 turns deduplication off), got " + w.String()}}
	case w > MaxDedupWindow:
		return FieldErrors{{Path: "delivery.dedup_window", Msg: "must be at most " + MaxDedupWindow.String() + ", got " + w.String()}}
	}
	return nil
}

// checkDelivery applies p to a delivery policy that passed validate.
func (p Policy) checkDelivery(d Delivery) FieldErrors {
	if p.MaxDedupWindow > 0 && d.DedupWindow != nil && d.DedupWindow.Duration > p.MaxDedupWindow {
		return FieldErrors{{Path: "delivery.dedup_window", Msg: "this server allows at most " + p.MaxDedupWindow.String() + " (serve --max-dedup-window), got " + d.DedupWindow.Duration.String()}}
	}
	return nil
}

// durationPtr converts a field whose zero differs from unset (nil: unset).
func durationPtr(d *Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return durationpb.New(d.Duration)
}

// durationFromPtr is durationPtr's inverse.
func durationFromPtr(d *durationpb.Duration) *Duration {
	if d == nil {
		return nil
	}
	return &Duration{d.AsDuration()}
}
