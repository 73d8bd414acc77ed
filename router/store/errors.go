package store

import "errors"

var (
	// ErrNotFound means the trigger or dead letter does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a trigger of that name already exists.
	ErrExists = errors.New("already exists")
	// ErrConflict means the trigger changed since the generation the caller expected.
	ErrConflict = errors.New("generation mismatch")
)
