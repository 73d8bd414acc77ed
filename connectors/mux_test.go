package connectors_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchyard-io/switchyard/connectors"
)

func TestWriteProblem(t *testing.T) {
	for name, c := range map[string]struct {
		status     int
		retryAfter string
	}{
		"refused":     {http.StatusUnauthorized, ""},
		"unavailable": {http.StatusServiceUnavailable, "1"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			connectors.WriteProblem(rec, "/problems/example", c.status, "Title", "what happened")
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d", rec.Code, c.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if got := rec.Header().Get("Retry-After"); got != c.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, c.retryAfter)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"type": "/problems/example", "title": "Title", "status": float64(c.status), "detail": "what happened"}
			for k, v := range want {
				if body[k] != v {
					t.Errorf("%s = %v, want %v", k, body[k], v)
				}
			}
		})
	}
}
