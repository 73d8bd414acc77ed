// Package server runs one Switchyard instance: it connects to Redis (or
// starts the embedded store), builds the router, and serves the HTTP ingest
// endpoint and the gRPC API (EventService, PullService, TriggerService,
// DeadLetterService, SourceService, TokenService, AuditService, health, and
// reflection while authentication is off). Every call is authenticated and
// checked against a deny-by-default permission table (auth/authgrpc,
// auth/authhttp); the handlers then decide on what the call names (the
// events' scope, the triggers' scope: authz.go), and admin actions are
// audited (audit.go). Without authentication the listeners stay on
// loopback (security.go). It also owns the error catalogue that turns
// router errors into RFC 9457 problem JSON and gRPC statuses with details.
//
// cmd/switchyard only wires: its `serve` command (package cli) turns flags
// and the configuration file into a Config and calls Run.
package server
