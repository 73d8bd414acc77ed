package router

import (
	"fmt"
	"time"
)

// Lines that repeat per event (an attempt failed, an event dead-lettered, a
// reply refused) or per batch of a trigger (its outcomes not recorded, its
// claim failing) go through r.logLimit: per trigger, kind and reason a few
// lines, then one every ten seconds, and a summary of what was suppressed
// (flushSuppressed, from the sweep loop). A target failing every attempt at
// 10,000 events a second would otherwise write as many lines.

// logAllowed reports whether a line of this trigger, kind and reason may be
// logged now (msg is what the summary line says it suppressed).
func (r *Router) logAllowed(trigger, kind, reason, msg string) bool {
	return r.logLimit.Allow(trigger+"\x00"+kind+"\x00"+reason, time.Now(), "trigger", trigger, "reason", reason, "like", msg)
}

// flushSuppressed logs a summary line per key whose lines were suppressed.
func (r *Router) flushSuppressed() {
	for _, s := range r.logLimit.Flush(time.Now()) {
		r.log.Warn(fmt.Sprintf("%d similar lines suppressed", s.Count), append(s.Attrs, "suppressed", s.Count)...)
	}
}
