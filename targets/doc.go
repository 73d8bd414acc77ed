// Package targets is the contract of broker targets: a trigger whose target
// is `publish: {kind: …}` writes each of its events to a message broker or a
// database table instead of invoking a function. Each kind lives in its own
// package under targets/ (amqp, natsjs, redisstreams, sql, kafka) and
// registers a [Spec] here: its typed, documented fields (the connectors'
// [connectors.Field], so sources and targets are described alike), how it
// writes an event, and a constructor of [Publisher]s. targets/all imports
// every built-in kind; docs/targets/<kind>.md is generated from the specs.
//
// # The contract a kind implements
//
// A Publisher writes one event in its transport's CloudEvents binding (or,
// for transports without one, a documented layout that Switchyard's source
// connector for the same system reads back with every attribute and the data
// byte for byte) and returns nil only once the broker confirmed it: a
// publisher confirm, a JetStream PubAck, the XADD reply, a committed INSERT,
// a produce acknowledged by every in-sync replica. Any other answer is an
// error, and an error that says why is an [*Error] whose [Failure] the
// delivery layer classifies (router/delivery/classify.go): unreachable
// brokers and timeouts are retried, refusals that cannot pass on a retry
// (authorization, an unknown exchange or subject, a constraint violation)
// are dead-lettered with the broker's message. A Publisher is shared by every
// trigger aimed at the same address with the same credentials and is safe for
// concurrent use; the delivery layer closes it once no trigger uses it.
//
// # Secrets and the egress guard
//
// Fields never hold credentials: a field of type [connectors.TypeSecretName]
// names a secret the server holds (internal/secrets), resolved through
// [Env.Secret] when the publisher is built, and address fields refuse
// userinfo. Every connection a publisher opens goes through [Env.Dial] (the
// egress guard's DialContext when the server configures one), so a trigger
// cannot aim a broker client at an address the server forbids.
package targets
