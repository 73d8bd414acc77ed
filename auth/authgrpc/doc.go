// Package authgrpc authenticates gRPC calls with an auth.Verifier: unary and
// stream server interceptors that read the bearer token from the
// "authorization" metadata and the client certificate from the connection,
// put the caller's auth.Identity in the context (auth.FromContext), and check
// the permission a Policy gives the method before the handler runs.
//
// The policy is deny-by-default: a method missing from it is refused with
// PERMISSION_DENIED, so a service added later cannot be left open by
// forgetting it; CheckCoverage finds such methods at start-up. The coarse
// check here does not replace the handler's own: a handler that acts on a
// trigger still calls Identity.AllowTrigger with its name, and a listing
// filters with Identity.CanSeeTrigger.
//
// Errors become statuses through Status: UNAUTHENTICATED with the reason,
// PERMISSION_DENIED with an ErrorInfo (reason PERMISSION_DENIED, domain
// switchyard.io, metadata permission/field/value) and, when a field is
// named, a BadRequest field violation, UNAVAILABLE when the key store did
// not answer.
package authgrpc
