// Package authhttp authenticates HTTP requests with an auth.Verifier: a
// middleware that reads the bearer token of the Authorization header and
// the client certificate of the TLS connection, puts the caller's
// auth.Identity in the request's context (auth.FromContext), and checks the
// permission a Policy gives the request's path before the handler runs.
//
// The policy is deny-by-default: a path it does not cover is refused with
// 403 (401 without credentials), so a handler added to the mux later cannot
// be left open by forgetting it. Handlers still make their own decisions on
// what they act on (Identity.AllowPublish for each event of a publish).
//
// Refusals are RFC 9457 problem documents, shaped like the server's:
// 401 with WWW-Authenticate: Bearer, 403 naming the attribute or field out
// of scope, 503 with Retry-After when the key store did not answer. A
// server with its own error catalogue sets Policy.OnError.
package authhttp
