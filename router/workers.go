package router

import (
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/internal/panics"
)

// workerIdle is how long an idle attempt worker waits for work before it exits.
const workerIdle = 10 * time.Second

// workers runs attempts on reused goroutines. A goroutine started per attempt
// grew its stack during every gRPC call (stack copying was ~8% of the
// server's CPU at 15,000 deliveries/s); a worker's stack, once grown, stays.
// There are as many workers as attempts ran at once lately: idle ones exit
// after workerIdle, and all of them on close.
type workers struct {
	jobs chan func() // unbuffered: a send succeeds only into an idle worker
	stop chan struct{}
	wg   sync.WaitGroup
	log  *slog.Logger
}

func newWorkers(log *slog.Logger) *workers {
	return &workers{jobs: make(chan func()), stop: make(chan struct{}), log: log}
}

// run runs f on an idle worker, or on a new one. It must not be called
// after close.
func (w *workers) run(f func()) {
	select {
	case w.jobs <- f:
	default:
		w.wg.Add(1)
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	defer w.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		// A job recovers its own panics (see dispatcher.attempt); this
		// keeps the worker alive should one slip through.
		panics.Run(w.log, "router.worker", f)
		idle.Reset(workerIdle)
		select {
		case f = <-w.jobs:
		case <-idle.C:
			return
		case <-w.stop:
			return
		}
	}
}

// close stops the idle workers and waits for every worker to exit (those
// still running finish their job first).
func (w *workers) close() {
	close(w.stop)
	w.wg.Wait()
}
