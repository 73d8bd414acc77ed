// Package store is Switchyard's state in Redis: triggers, the ingest log and,
// per trigger, a delivery queue with leases, scheduled retries, a circuit
// breaker and a dead-letter queue.
//
// Every step that must be atomic is one Lua script whose keys share a Redis
// Cluster hash slot: config keys are tagged {cfg}, the ingest log {in}, and
// each trigger's keys {t:<name>}. ARCHITECTURE.md draws the layout and which
// step touches what. The package speaks go-redis v9 directly (not Watermill):
// Watermill's Redis Streams subscriber reads one message at a time and has no
// notion of leases, per-trigger concurrency or atomic dead-lettering.
//
// An ordered trigger's queue also holds lanes, one per ordering key, of which
// only the first event is ever ready, in flight or scheduled (lanes.go).
//
// The same code runs on a real Redis and on the embedded miniredis store.
package store
