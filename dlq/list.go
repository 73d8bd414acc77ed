package dlq

import (
	"context"
	"fmt"
	"time"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// Page sizes of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// ListRequest asks for a page of dead letters across triggers.
type ListRequest struct {
	// Triggers are the queues to list, in the order listed (sorted, for a
	// stable paging).
	Triggers []string
	// After is where the previous page stopped (zero: the start).
	// Triggers sorting before After.Trigger are skipped.
	After Cursor
	// Since skips entries that died before it (zero: none skipped). A
	// cursor into a trigger takes precedence over it for that trigger.
	Since time.Time
	// Reason keeps only the dead letters of this reason (0: all).
	Reason switchyardv1.DeadLetterReason
	// Size is the page size (0: DefaultPageSize).
	Size int
}

// ListPage is a page of dead letters, decoded (Decode), and where the next
// page starts (zero when this one is the last).
type ListPage struct {
	Letters []*switchyardv1.DeadLetter
	Next    Cursor
}

// List returns one page of dead letters. A page is full when it holds Size
// letters; entries filtered out by Reason do not count, so a page may read
// more than Size entries of a trigger (Size+1 at a time). A corrupt entry
// ends the listing with a *CorruptError.
func List(ctx context.Context, st Reader, req ListRequest) (ListPage, error) {
	size := req.Size
	if size <= 0 {
		size = DefaultPageSize
	}
	start := "-"
	if !req.Since.IsZero() {
		start = fmt.Sprintf("%d-0", req.Since.UnixMilli())
	}
	var out ListPage
	for _, name := range req.Triggers {
		if req.After.Trigger != "" && name < req.After.Trigger {
			continue
		}
		from := start
		if req.After.Trigger == name {
			from = req.After.Next
		}
		for {
			entries, err := st.ListDLQ(ctx, name, from, size+1)
			if err != nil {
				return ListPage{}, err
			}
			for _, e := range entries {
				if len(out.Letters) == size {
					out.Next = Cursor{name, e.ID}
					return out, nil
				}
				dl, err := Decode(name, e)
				if err != nil {
					return ListPage{}, err
				}
				if req.Reason != 0 && dl.GetReason() != req.Reason {
					continue
				}
				out.Letters = append(out.Letters, dl)
			}
			if len(entries) < size+1 {
				break
			}
			from = NextID(entries[len(entries)-1].ID)
		}
	}
	return out, nil
}

// Get returns one dead letter, decoded, or an error matching ErrNotFound
// (or a *CorruptError).
func Get(ctx context.Context, st Reader, trigger, id string) (*switchyardv1.DeadLetter, error) {
	e, err := st.GetDLQ(ctx, trigger, id)
	if err != nil {
		return nil, err
	}
	return Decode(trigger, e)
}

// Entries returns the ids of trigger's entries present now, oldest first:
// those up to the newest entry when called, read in pages of MaxPageSize,
// so entries added meanwhile (a replayed event dying again) are not
// included.
func Entries(ctx context.Context, st Reader, trigger string) ([]string, error) {
	last, err := st.LastDLQID(ctx, trigger)
	if err != nil {
		return nil, err
	}
	var ids []string
	next := "-"
	for last != "" {
		entries, err := st.ListDLQ(ctx, trigger, next, MaxPageSize)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			ids = append(ids, e.ID)
			if e.ID == last {
				return ids, nil
			}
		}
		if len(entries) < MaxPageSize {
			break
		}
		next = NextID(entries[len(entries)-1].ID)
	}
	return ids, nil
}
