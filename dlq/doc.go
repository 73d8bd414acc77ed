// Package dlq is Switchyard's dead-letter domain: what a dead letter is, how
// long one is kept (Policy), how one is built from an event's attempt
// history (letter.go), and the operations on a trigger's dead-letter queue
// that the API offers: listing in pages, replaying (Replayer), purging,
// statistics and the periodic retention trim.
//
// The package is a contract and a leaf. dlq.go holds the types and the
// Store interface; the operations beside it speak only that interface.
// router/store implements it on Redis (and the embedded store), keeping the
// Lua scripts that must stay atomic with a trigger's queue (dead-lettering
// an attempt, moving an entry back into the queue, trimming with counted
// evictions). The router writes dead letters and runs the retention trim;
// the server's DeadLetterService is a thin adapter that checks the caller
// and the request's fields and calls into this package; the CLI is a client
// of that service.
//
// dlqtest holds a conformance suite every Store implementation runs.
package dlq
