package store

import (
	"errors"

	"github.com/switchyard-io/switchyard/dlq"
)

var (
	// ErrNotFound means the trigger or dead letter does not exist. It is
	// dlq.ErrNotFound, as the dlq.Store contract asks.
	ErrNotFound = dlq.ErrNotFound
	// ErrExists means a trigger of that name already exists.
	ErrExists = errors.New("already exists")
	// ErrConflict means the trigger changed since the generation the caller expected.
	ErrConflict = errors.New("generation mismatch")
	// ErrNoEpoch means the store has no epoch: it lost its data (Redis
	// restarted without persistence) and the instances have not restored
	// the triggers yet. Retry shortly.
	ErrNoEpoch = errors.New("the store lost its data; the triggers are being restored")
	// ErrFull means Redis refused to store more: it is out of memory
	// (maxmemory with the noeviction policy). Reads, and the steps that
	// settle events already stored, still run (see oom.go).
	ErrFull = errors.New("store full")
)
