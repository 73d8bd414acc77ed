// Package server runs one Switchyard instance: it connects to Redis (or
// starts the embedded store), builds the router, and serves the HTTP ingest
// endpoint and the gRPC API (EventService, TriggerService, DeadLetterService,
// health and reflection). It also owns the error catalogue that turns router
// errors into RFC 9457 problem JSON and gRPC statuses with details.
//
// cmd/switchyard only parses flags into a Config and calls Run.
package server
