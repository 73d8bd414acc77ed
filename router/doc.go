// Package router is Switchyard's engine. It accepts events (Publish), matches
// them against the registered triggers, queues each event for the triggers
// it matched, and delivers every queued event to its trigger's target with
// retries, a cluster-wide concurrency limit, a circuit breaker and the
// dead-letter queue.
//
// Data flow (one Router per process; many processes may share one Redis):
//
//	Publish ─▶ validate ─▶ match (filter.Index) ─▶ admission (max_queue)
//	        ─▶ group commit (MULTI/EXEC) ─▶ ack to the publisher
//	   direct path, every routed event of the call for one trigger:
//	        HSET the bodies + RPUSH the ids into that trigger's queue;
//	        an idle dispatcher's claim rides the same round trip
//	   logged path, events for several triggers: XADD to the ingest log,
//	        then the fan-out loop: ingest log ─▶ trigger queues (pipelined
//	        Lua) ─▶ XACK+XDEL
//	dispatcher per trigger: claim (Lua, lease) ─▶ invoke target (gRPC,
//	        HTTP, or a broker through targets.Publisher) ─▶ complete
//	        (ack / schedule retry / dead-letter, batched Lua)
//	pull trigger: no dispatcher; its consumers' streams claim (pull.go)
//	dedup window (dedup.go): both paths queue a trigger's events with its
//	        (source, id) check in the same atomic step; copies answered
//	        success, counted, not queued
//	trigger change: store (Lua: write, revision, notice) ─▶ every live
//	        instance's watch loop installs it and acknowledges ─▶ answer
//	        (cluster.go: registry of instances; watch.go: exact views)
//	archive (optional, archive.go): the group commit also appends every
//	        accepted event to the archive stream; replay jobs (replay.go)
//	        read it back into the ingest log from a checkpoint in Redis
//
// An ordered trigger (delivery.ordering) queues each event into the lane of
// its key (lanes.go); the store keeps one event of a lane active at a time.
//
// A loop that retries a failed Redis call (fan-out, recording outcomes,
// handing pulled attempts back, waiting for the store's epoch) waits a
// jittered delay between tries (internal/backoff), so instances sharing a
// Redis that failed do not come back in lockstep.
//
// Everything that must survive a crash lives in Redis (package store); the
// process holds only what is in flight, bounded by the triggers' concurrency.
package router
