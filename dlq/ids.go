package dlq

import (
	"strconv"
	"strings"
	"time"
)

// Entry ids are stream ids, "<unix ms>-<sequence>", both parts decimal.

// NextID returns the smallest entry id after id (for exclusive paging); an
// id that is not well-formed is returned as it is.
func NextID(id string) string {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return id
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return id
	}
	return ms + "-" + strconv.FormatUint(n+1, 10)
}

// ValidEntryID reports whether id has the form of an entry id.
func ValidEntryID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, e1 := strconv.ParseUint(ms, 10, 64)
	_, e2 := strconv.ParseUint(seq, 10, 64)
	return e1 == nil && e2 == nil
}

// EntryTime returns the time an entry died (the time part of its id), zero
// when id is not an entry id.
func EntryTime(id string) time.Time {
	if i := strings.IndexByte(id, '-'); i > 0 {
		if ms, err := strconv.ParseInt(id[:i], 10, 64); err == nil {
			return time.UnixMilli(ms)
		}
	}
	return time.Time{}
}

// ReplayedID is the queue id a replayed dead letter gets: derived from the
// entry id (and the trigger it died in), so replaying the same entry twice
// queues it once. It starts with "r" so that an event id's time still reads
// from it (store.IDTime).
func ReplayedID(trigger, entryID string) string { return "r" + entryID + "@" + trigger }

// Cursor is a position in a listing that spans triggers: Trigger's entries
// from Next (inclusive). The zero Cursor is the start.
type Cursor struct{ Trigger, Next string }
