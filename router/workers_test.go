package router

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestWorkersRunEveryJobAndStop(t *testing.T) {
	w := newWorkers(nil)
	var ran atomic.Int64
	// Jobs one after another: later ones reuse the idle worker.
	for range 100 {
		done := make(chan struct{})
		w.run(func() { ran.Add(1); close(done) })
		<-done
	}
	// Jobs at once: none waits for another (this would hang otherwise).
	block := make(chan struct{})
	var started sync.WaitGroup
	started.Add(20)
	for range 20 {
		w.run(func() { started.Done(); <-block; ran.Add(1) })
	}
	started.Wait()
	close(block)
	w.close() // returns only once every worker exited
	if got := ran.Load(); got != 120 {
		t.Fatalf("ran %d jobs, want 120", got)
	}
}
