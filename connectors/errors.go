package connectors

import "errors"

var (
	// ErrNotConnected means the connection is gone: the Runner closes and
	// reconnects the source.
	ErrNotConnected = errors.New("not connected")
	// ErrEndOfInput means the source has nothing more, ever: the Runner
	// stops it after the pending acks.
	ErrEndOfInput = errors.New("end of input")
	// ErrUnknownKind means no connector is registered under the kind.
	ErrUnknownKind = errors.New("unknown connector kind")
)
