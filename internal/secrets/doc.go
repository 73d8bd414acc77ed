// Package secrets resolves named secrets that live on the server, so that a
// trigger can refer to a credential (a bearer token, a webhook signing key)
// by name without the value ever passing through the API, the store or a
// dead letter.
//
// A [Resolver] maps a name to its current value. [Env] reads environment
// variables (SWITCHYARD_SECRET_<NAME>), [Dir] reads one file per secret in
// a directory (a mounted Kubernetes secret, a Docker secret), and [Chain]
// tries several in turn. Resolvers read at every call: callers that sit on
// a hot path cache the value and look again now and then, so that a
// rotated file takes effect without a restart.
package secrets
