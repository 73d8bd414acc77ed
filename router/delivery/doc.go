// Package delivery turns one attempt's answer into a decision: acknowledge,
// retry (when), or dead-letter (why). It holds the classification of gRPC
// codes and HTTP statuses, the backoff with full jitter, and the invokers that
// call gRPC and HTTP targets.
package delivery
