// Package backoff is the one place that decides how long a Switchyard loop
// waits before it tries a failed call again: the router's loops that retry
// Redis (reading the ingest log, fanning out, recording outcomes, handing
// pulled attempts back, waiting for the store's epoch), the connectors
// runner (connecting a source, publishing a batch), connectors that wait
// for something another process holds (a PostgreSQL replication slot), the
// SDK's pull consumer reconnecting, and the restarts of a loop that panicked.
//
// # Why jitter
//
// Any number of instances share one Redis. When it restarts or fails over,
// every instance sees the error at the same moment; a plain doubling delay
// would make all of them retry at the same moments too, each wave hitting
// the store (or a connector's broker) at once. Next draws every delay at
// random, so the retries of instances that failed together spread over the
// whole interval and do not stay aligned.
//
// # The schedule
//
// Next(prev, lo, hi) is "decorrelated jitter": the next delay is drawn
// uniformly from [lo, min(hi, 3·prev)] (3·lo when there was no previous
// delay). The delay grows by half on average per failure in a row, never
// exceeds hi, and never falls below lo; because each draw depends on the
// previous draw, two loops that drew the same delay once do not follow the
// same schedule afterwards. The state is the previous delay itself, which
// every caller keeps anyway to log it ("retry_in"): a loop resets by
// setting it back to zero.
//
// # Why not a library
//
// github.com/cenkalti/backoff (v5 is already in the module graph) was
// considered: its ExponentialBackOff randomises around an interval that the
// maximum caps, so a delay may exceed the maximum by half (a runner's
// MaxBackoff would no longer bound anything), and its Retry helper owns the
// whole loop, which ours cannot give up: between tries they update health
// and status, pause on pushback and log. The schedule is a few lines; the
// test holds it to its bounds and shows the spread.
//
// This is not the delivery policy's backoff (router/delivery.Backoff):
// retries of an event to its target follow the trigger's own
// initial_backoff and max_backoff with full jitter, scheduled in Redis.
package backoff
