// Package sdk is the Go client of Switchyard for publishers, consumers and
// operators: it publishes CloudEvents to the bus (EventService), consumes
// pull triggers (Subscribe, over PullService: reconnecting with jittered
// backoff) and manages triggers (TriggerService), mapping the server's
// errors to typed Go errors.
//
// Publishers and tools import it; function authors import the sibling
// package github.com/switchyard-io/switchyard/sdk/function instead, which
// does not depend on this one.
//
//	c, err := sdk.New(sdk.Config{Address: "switchyard:9090"})
//	...
//	defer c.Close()
//	err = c.Publish(ctx, ev)
//	var pb *sdk.PushbackError
//	if errors.As(err, &pb) {
//		// a trigger's queue is full: retry after pb.RetryAfter
//	}
//
// A server with authentication on wants a token: set [Config.Token] to an
// API key (`switchyard token create`), and [Config.TLS] to reach it over
// TLS. The token is never sent unencrypted beyond loopback unless
// [Config.AllowPlaintextToken] says so. A call refused for its credentials
// fails with UNAUTHENTICATED, one outside the key's permissions or scope
// with PERMISSION_DENIED (check with status.Code).
//
// Events are sdk-go [event.Event] values, sent in the CloudEvents protobuf
// format with their data byte-exact. A call returns nil only once Switchyard
// has made every event in it durable. Publishing is at-least-once: a call
// retried after a timeout or UNAVAILABLE may deliver an event twice, which
// functions detect with the idempotency key (source and id).
//
// The wrappers apply [Config.Timeout] to each call and return the errors of
// errors.go. Everything else in the API (UpdateTrigger, the dead-letter
// queue, API keys, the audit log, ...) is reachable through the generated
// clients returned by [Client.Events], [Client.Triggers], [Client.Pulls],
// [Client.DeadLetters], [Client.Sources], [Client.Tokens] and
// [Client.Audit], which return plain gRPC status errors.
package sdk
