// Package router is Switchyard's engine. It accepts events (Publish), matches
// them against the registered triggers, writes them to the ingest log, fans
// them out to each matching trigger's queue, and delivers every queued event
// to its trigger's target with retries, a cluster-wide concurrency limit, a
// circuit breaker and the dead-letter queue.
//
// Data flow (one Router per process; many processes may share one Redis):
//
//	Publish ─▶ validate ─▶ match (filter.Index) ─▶ admission (max_queue)
//	        ─▶ ingest log (group commit, MULTI/EXEC) ─▶ ack to the publisher
//	fan-out loop: ingest log ─▶ trigger queues (pipelined Lua) ─▶ XACK+XDEL
//	dispatcher per trigger: claim (Lua, lease) ─▶ invoke target ─▶ complete
//	        (ack / schedule retry / dead-letter, batched Lua)
//	trigger change: store (Lua: write, revision, notice) ─▶ every live
//	        instance's watch loop installs it and acknowledges ─▶ answer
//	        (cluster.go: registry of instances; watch.go: exact views)
//
// An ordered trigger (delivery.ordering) queues each event into the lane of
// its key (lanes.go); the store keeps one event of a lane active at a time.
//
// Everything that must survive a crash lives in Redis (package store); the
// process holds only what is in flight, bounded by the triggers' concurrency.
package router
