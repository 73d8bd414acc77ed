// Package panics keeps a panic in a background goroutine from ending the
// process. Go ends the whole process when any goroutine panics without
// recovering, and Switchyard's loops handle input from the network, the
// store and the functions: one bad value would take every trigger, every
// connection and every attempt in flight down with it.
//
// Every goroutine that the router, the delivery layer, the connectors
// runner and the server start runs its body under Catch, Run or Loop: the
// panic is recovered, counted in switchyard_panics_total{where}, and logged
// with the goroutine's stack; then the caller either restarts the loop
// (Loop, with a backoff so a panic on every pass does not spin) or stops the
// piece cleanly (the function given to Catch). A recovered panic leaves the
// store as it was: whatever the goroutine held in memory (an attempt, a
// batch of outcomes) is redone from Redis once its lease expires.
//
// Tests inject panics through Hook: code calls Hook(where) at points worth
// testing, and SetHook installs a function that may panic there.
package panics
