package dlq

import "errors"

// ErrNotFound means the dead letter (or trigger) does not exist. The
// store's own not-found error is this one, so errors.Is holds either way.
var ErrNotFound = errors.New("not found")

// CorruptError means a stored dead letter cannot be decoded: its story or
// its event is not the protobuf message it should be. The API answers it
// as data loss.
type CorruptError struct {
	Trigger, ID string
	// Event is true when the event is corrupt, false for the story.
	Event bool
	Err   error
}

func (e *CorruptError) Error() string {
	if e.Event {
		return "dead letter " + e.Trigger + "/" + e.ID + ": event is corrupt: " + e.Err.Error()
	}
	return "dead letter " + e.Trigger + "/" + e.ID + " is corrupt: " + e.Err.Error()
}

func (e *CorruptError) Unwrap() error { return e.Err }

// WaitError means a replay stopped while waiting for its rate: Err is the
// rate limiter's error (the context ended, or its deadline comes before the
// next chunk is allowed). Nothing of the chunk waited for was replayed.
type WaitError struct{ Err error }

func (e *WaitError) Error() string { return e.Err.Error() }

func (e *WaitError) Unwrap() error { return e.Err }
