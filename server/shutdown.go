package server

import (
	"context"
	"time"
)

// delayShutdown waits ShutdownDelay (or until ctx ends) once the server
// reports unready, still serving: a load balancer polling /readyz or the
// gRPC health service takes a few probes to notice, and requests it sends
// meanwhile are answered instead of refused.
func (s *Server) delayShutdown(ctx context.Context) {
	if s.cfg.ShutdownDelay <= 0 {
		return
	}
	s.log.Info("unready; shutting down after the delay", "delay", s.cfg.ShutdownDelay.String())
	t := time.NewTimer(s.cfg.ShutdownDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
