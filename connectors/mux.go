package connectors

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
)

// Mux is an http.Handler whose routes push sources register through
// Env.HTTP. Unlike http.ServeMux, registering a pattern again replaces its
// handler, so a source rebuilt under the same name (a restart of the runner)
// takes its endpoint over. Safe for concurrent use.
type Mux struct {
	mu     sync.Mutex
	routes map[string]http.Handler
	cur    atomic.Pointer[http.ServeMux]
}

// NewMux returns an empty Mux.
func NewMux() *Mux {
	m := &Mux{routes: map[string]http.Handler{}}
	m.cur.Store(http.NewServeMux())
	return m
}

// Handle registers or replaces the handler of pattern (http.ServeMux syntax).
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes[pattern] = h
	sm := http.NewServeMux()
	for p, x := range m.routes {
		sm.Handle(p, x)
	}
	m.cur.Store(sm)
}

// ServeHTTP implements http.Handler.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.cur.Load().ServeHTTP(w, r) }

// WriteProblem answers the caller of a push source with RFC 9457 problem
// JSON of the given type. A 503 also carries Retry-After: 1, so that a
// sender's retry comes soon: the source was stopping or busy, nothing was
// stored, and the retry will be accepted once it runs again.
func WriteProblem(w http.ResponseWriter, typ string, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": typ, "title": title, "status": status, "detail": detail})
}
