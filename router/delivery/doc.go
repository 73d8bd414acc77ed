// Package delivery turns one attempt's answer into a decision: acknowledge,
// retry (when), or dead-letter (why). It holds the classification of gRPC
// codes, HTTP statuses and broker failures, the backoff with full jitter,
// and the invokers that carry an attempt: gRPC (a message on the function's
// InvokeStream, or a unary Invoke), HTTP, and broker targets (Targets: one
// targets.Publisher per kind and settings, shared by the triggers aimed at
// it), each with its endpoint's TLS, credentials and egress guard.
package delivery
