package store

import "errors"

var (
	// ErrNotFound means the trigger or dead letter does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a trigger of that name already exists.
	ErrExists = errors.New("already exists")
	// ErrConflict means the trigger changed since the generation the caller expected.
	ErrConflict = errors.New("generation mismatch")
	// ErrNoEpoch means the store has no epoch: it lost its data (Redis
	// restarted without persistence) and the instances have not restored
	// the triggers yet. Retry shortly.
	ErrNoEpoch = errors.New("the store lost its data; the triggers are being restored")
)
