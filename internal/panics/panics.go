package panics

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard-io/switchyard/internal/backoff"
)

// total counts recovered panics by where they happened. It is process-wide,
// as a panic is: every router registers it in its registry (Collector).
var total = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "switchyard_panics_total",
	Help: "Panics recovered in background goroutines, by where they happened (the goroutine was restarted or stopped cleanly).",
}, []string{"where"})

// Collector returns the switchyard_panics_total counter, for a registry.
func Collector() prometheus.Collector { return total }

// Count returns how many panics were recovered at where.
func Count(where string) float64 {
	m := &dto.Metric{}
	_ = total.WithLabelValues(where).Write(m)
	return m.GetCounter().GetValue()
}

// Catch recovers a panic of the goroutine it is deferred in: it counts it,
// logs it with the goroutine's stack (log may be nil: slog.Default), and
// calls then with the panic value (then may be nil). It must be deferred
// directly ("defer panics.Catch(log, where, then)"); called otherwise it
// recovers nothing.
func Catch(log *slog.Logger, where string, then func(v any)) {
	v := recover()
	if v == nil {
		return
	}
	Record(log, where, v)
	if then != nil {
		then(v)
	}
}

// Record counts and logs a panic value that the caller recovered itself
// (when it must look at the value before deciding to recover, as an HTTP
// handler does with http.ErrAbortHandler).
func Record(log *slog.Logger, where string, v any) {
	RecordContext(context.Background(), log, where, v)
}

// RecordContext is Record for a panic while serving a call: the log line
// carries what ctx holds for the logger (request id, trace).
func RecordContext(ctx context.Context, log *slog.Logger, where string, v any) {
	total.WithLabelValues(where).Inc()
	if log == nil {
		log = slog.Default()
	}
	log.ErrorContext(ctx, "panic recovered", "where", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}

// Run calls fn and reports whether it panicked (the panic recovered,
// counted and logged as Catch does).
func Run(log *slog.Logger, where string, fn func()) (panicked bool) {
	defer Catch(log, where, func(any) { panicked = true })
	fn()
	return false
}

// Backoff bounds of Loop's restarts.
const (
	firstRestart = 100 * time.Millisecond
	maxRestart   = 30 * time.Second
	// calmAfter is how long a loop must run without panicking for its
	// next restart to start again from the shortest delay.
	calmAfter = time.Minute
)

// Loop runs fn(ctx) until it returns normally or ctx is done. When fn
// panics, Loop recovers, counts and logs the panic and runs fn again after
// a delay that starts between 100 and 300 ms and grows with each panic in a
// row (up to 30 s, drawn at random by internal/backoff), so a loop that
// panics on every pass costs little while whatever made it panic lasts.
func Loop(ctx context.Context, log *slog.Logger, where string, fn func(context.Context)) {
	wait := time.Duration(0)
	for {
		start := time.Now()
		if !Run(log, where, func() { fn(ctx) }) {
			return
		}
		if time.Since(start) > calmAfter {
			wait = 0
		}
		wait = backoff.Next(wait, firstRestart, maxRestart)
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

var hook atomic.Pointer[func(where string)]

// Hook calls the test hook installed by SetHook, if any, with where. Code
// calls it at the points where tests inject panics; without a hook it costs
// one atomic load.
func Hook(where string) {
	if h := hook.Load(); h != nil {
		(*h)(where)
	}
}

// SetHook installs h as the test hook (nil removes it) and returns a
// function restoring the previous one. For tests only.
func SetHook(h func(where string)) (restore func()) {
	var p *func(string)
	if h != nil {
		p = &h
	}
	old := hook.Swap(p)
	return func() { hook.Store(old) }
}
