// Package connectors is the contract between Switchyard and its sources of
// events — databases, object stores, streams, webhooks — and the runner that
// drives them.
//
// A connector is a small pull interface (Source: connect, read one message
// with an ack function, close) registered with a Spec (name, summary, typed
// fields with defaults and docs, the CloudEvent it emits). The Runner owns
// everything else: reconnecting with capped, jittered backoff
// (internal/backoff: instances sharing a Redis or a source system do not
// retry in lockstep), batching reads into atomic publishes, pausing while
// Switchyard pushes back, acknowledging the source only once the events are
// durable, metrics and a graceful stop.
//
// Each connector lives in its own package under connectors/ and registers
// itself in init(); connectors/all imports every built-in one. Only
// cmd/switchyard imports connectors/all (and the tests that need every
// connector registered). connectors/connectortest is the conformance suite
// every connector passes; connectors/internal holds what connectors share
// (wrap: building events from foreign messages; sqljson: column values).
package connectors
